"""`kconvnext.train(dataset, model, **overrides)`: one training run, end to end.

The CLI's `train` command is a thin layer over this function. It resolves the recipe, picks the
distribution strategy, loads data through kconvnext.data, builds and compiles a plain keras.Model,
runs keras' fit (or, under MultiWorkerMirroredStrategy, our own strategy.run loop, see
multiworker.py) and leaves a self-describing run folder:

    run.json  recipe.yaml  state.json  skipped_files.txt
    checkpoints/last.keras  checkpoints/best.keras
    logs/training.csv  logs/tensorboard/  plots/curves.png  plots/confusion_matrix.png
"""
import dataclasses
import functools
import math
import time
from pathlib import Path

import keras

from kconvnext.data.epochs import batches_per_epoch, fast_forward, first_batches
from kconvnext.data.sources import DATASETS
from kconvnext.models import get_spec
from kconvnext.models.registry import unknown_name_error
from kconvnext.run_folder import RunFolder
from kconvnext.training.budget import apply_plan, plan_from_state
from kconvnext.training.config import merge
from kconvnext.training.distribute import is_chief, resolve_precision, select_strategy, tensorflow_backend
from kconvnext.training.errors import TrainingDiverged
from kconvnext.training.fit_loop import fit, make_budget_guard
from kconvnext.training.model_setup import (build_model, compile_model, loss_label_smoothing, match_loss_smoothing,
                                             schedule_for)
from kconvnext.training.preflight import check_start, estimate_line
from kconvnext.training.recipes import load_recipe
from kconvnext.training.reports import finish, write_reports
from kconvnext.training.resume import check_resume_compatible, epochs_in_checkpoint, load_checkpoint, resume_decision
from kconvnext.training.run_setup import (default_run_dir, load_data, measure_budget, normalize_overrides,
                                          run_info, write_run_files)
from kconvnext.training.selection import selected_on
from kconvnext.training.signals import sigterm_as_interrupt
from kconvnext.training.summary import end_summary, start_summary

__all__ = ["DATASETS", "TrainResult", "TrainingDiverged", "train"]


@dataclasses.dataclass
class TrainResult:
    run_dir: Path
    model: object
    config: object
    history: list
    epochs_completed: int
    best_accuracy: float = None
    best_epoch: int = None
    best_weights: str = None
    train_images_per_sec: float = None
    params: int = 0
    seconds: float = 0.0
    report: dict = None
    budget_plan: object = None  # a budget.BudgetPlan when the recipe set budget_minutes
    selected_on: str = None  # what best_accuracy was measured on (selection.selected_on); None: no selection


def train(dataset, model, *, recipe=None, output=None, data_dir=None, resume=None, data=None,
          verbose=1, print_fn=print, overrides=None, callbacks=None, started=None, **kwargs):
    """Train `model` (a registered name) on `dataset` with its recipe; returns a TrainResult.

    recipe: file or shipped recipe name (default: recipes/<dataset>_<family>.yaml).
    overrides / **kwargs: recipe values, e.g. epochs=2, batch_size=16, augment={"mixup_alpha": 0}.
    resume: None = automatic when the run folder has a checkpoint; True = required; False = start over.
    data: a DataBundle (skips kconvnext.data.load; tests, notebooks), or a function returning one,
        called after the strategy is set up (multi-worker needs that before any tensor exists).
    callbacks: extra keras callbacks, run after ours (single-worker fit only).
    started: time.time() from which budget_minutes counts (default: this call; the CLI passes its
        process start, timing.process_start_time(), so a budget covers the whole command).
    Raises TrainingDiverged on a NaN/inf loss (the last good checkpoint is kept).
    """
    started = time.time() if started is None else float(started)
    spec = get_spec(model)
    if data is None and dataset not in DATASETS:
        raise unknown_name_error("dataset", dataset, DATASETS)
    user_overrides = merge(normalize_overrides(overrides), normalize_overrides(kwargs))
    config, recipe_path = load_recipe(recipe, dataset=dataset, family=spec.family, overrides=user_overrides)
    run_dir = Path(output) if output else default_run_dir(dataset, model)
    check_start(model, spec.family, dataset, config, data_dir)  # before any data is read or written
    if config.linear_probe:
        return _train_probe(dataset, model, spec, config, recipe_path, user_overrides, run_dir, data_dir,
                            data, verbose, print_fn, started)
    last_ckpt = RunFolder(run_dir).last_checkpoint
    strategy, strategy_kind = select_strategy(config.strategy, config.cpu_devices)
    decide = functools.partial(resume_decision, run_dir, resume, config, print_fn)
    if strategy_kind == "multiworker":  # the chief's view of the run folder, on every worker
        from kconvnext.training.multiworker import chief_decides

        resume, state = chief_decides(strategy, decide)
    else:
        resume, state = decide()
    plan = plan_from_state(state) if config.budget_minutes else None
    if plan is not None:
        config = apply_plan(config, plan)  # the budget was measured once, when the run started
    initial_epoch = int(state.get("completed_epochs", 0))
    mid_epoch = 0  # batches of epoch initial_epoch + 1 that a Ctrl-C checkpoint has trained on

    precision = resolve_precision(config.mixed_precision)
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        # Same recipe + seed -> same initial weights and data order (tf.data ops seeded off it).
        keras.utils.set_random_seed(config.seed)
        if callable(data):
            data = data()
        bundle = data if data is not None else load_data(dataset, config, data_dir, run_dir, config.seed, print_fn,
                                                                  model_name=model)
        loss_smoothing = loss_label_smoothing(config, bundle)  # 0 when the targets carry the smoothing
        steps = batches_per_epoch(bundle.train, bundle.train_count, config.batch_size)
        train_ds = bundle.train
        if config.budget_minutes and plan is None:
            with strategy.scope():
                plan = measure_budget(model, config, bundle, steps, started)
            state["budget_plan"] = dataclasses.asdict(plan)
            config = apply_plan(config, plan)
            keras.utils.set_random_seed(config.seed)  # the real model starts as an unbudgeted run would
        if plan is not None and plan.steps_per_epoch < steps:
            steps = plan.steps_per_epoch
            train_ds = first_batches(train_ds, steps)
        run_dir.mkdir(parents=True, exist_ok=True)
        with strategy.scope():
            if resume:
                net = load_checkpoint(last_ckpt, strategy, strategy_kind)
                # A resumed run may be given more epochs: stretch the schedule to the new end. (The
                # public setter: a LossScaleOptimizer, mixed_float16, passes it to the optimizer it
                # wraps, whose schedule is the one applied; its own _learning_rate is never read.)
                net.optimizer.learning_rate = schedule_for(config, steps)
                if match_loss_smoothing(net, model, config, steps, bundle.num_classes, loss_smoothing):
                    print_fn(f"note: the checkpoint's loss is recompiled to label smoothing {loss_smoothing:g} "
                             "(the training targets carry the recipe's); its optimizer state is kept.")
                initial_epoch, mid_epoch = epochs_in_checkpoint(net, steps, state, initial_epoch, print_fn)
                if mid_epoch and not tensorflow_backend():
                    print_fn(f"note: on the {keras.backend.backend()} backend a mid-epoch checkpoint resumes at the "
                             f"start of epoch {initial_epoch + 1} ({mid_epoch} batch(es) are trained again).")
                    mid_epoch = 0
            else:
                net = build_model(model, config, bundle.num_classes, bundle.normalization)
                compile_model(net, model, config, steps, bundle.num_classes, loss_smoothing)
        fast_forward(bundle.train, initial_epoch)  # (train_ds shares its iterator seeds)
        params = int(sum(int(math.prod(v.shape)) for v in net.trainable_variables))
        write_run_files(run_dir, config, recipe_path, user_overrides, bundle)
        info = run_info(dataset, model, config, bundle, recipe_path, precision,
                         {"params": params, "strategy": strategy_kind, "epochs": config.epochs,
                          "steps_per_epoch": steps, "budget_plan": state.get("budget_plan")}, data_dir)
        RunFolder(run_dir).update_info(info)
        if verbose:
            print_fn(start_summary(
                model_name=model, family=spec.family, params=params, config=config,
                recipe_path=recipe_path, overrides=user_overrides, bundle=bundle, run_dir=run_dir,
                strategy_kind=strategy_kind, replicas=strategy.num_replicas_in_sync,
                precision=precision, initial_epoch=initial_epoch, steps=steps))
            if plan is not None:
                print_fn(plan.describe())
            estimate = estimate_line(config, plan, steps, initial_epoch, state)
            if estimate:
                print_fn(estimate)
        if initial_epoch >= config.epochs:
            print_fn(f"{run_dir} already completed {initial_epoch} epoch(s); nothing to train.")
            history, ips = state.get("history", []), state.get("train_images_per_sec")
        elif strategy_kind == "multiworker":
            from kconvnext.training.multiworker import fit_multiworker

            history, ips = fit_multiworker(net, train_ds, bundle, config, strategy, run_dir, state,
                                           initial_epoch, steps, print_fn=print_fn, skip=mid_epoch)
        else:
            # The plan's clock is this command's: a resumed run keeps the plan but not the guard.
            budget_guard = (make_budget_guard(net, config, plan, state, steps, run_dir, started, print_fn)
                            if plan is not None and not resume else None)
            with sigterm_as_interrupt() as on_sigterm:  # a scheduler's stop saves like Ctrl-C
                history, ips = fit(net, train_ds, bundle, config, run_dir, state, initial_epoch, steps, resume,
                                    verbose, print_fn, [on_sigterm, *(callbacks or [])], mid_epoch, budget_guard)
        if plan is not None:  # (a budget guard may have ended the schedule earlier than planned)
            plan = plan_from_state(state) or plan
            config = apply_plan(config, plan)
        result = TrainResult(
            run_dir=run_dir, model=net, config=config, history=history,
            epochs_completed=int(state.get("completed_epochs", initial_epoch)),
            best_accuracy=state.get("best_accuracy"), best_epoch=state.get("best_epoch"),
            best_weights=state.get("best_weights"), train_images_per_sec=ips, params=params,
            budget_plan=plan, selected_on=selected_on(bundle),
        )
        if is_chief(strategy):
            result.report = finish(result, bundle, info, verbose)
        result.seconds = time.time() - started
        if verbose:
            print_fn(end_summary(result))
        return result
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _train_probe(dataset, model, spec, config, recipe_path, overrides, run_dir, data_dir, data, verbose,
                 print_fn, started):
    """The linear-probe run (kconvnext/training/probe.py) with the same run folder as fit."""
    from kconvnext.data.loader import select_splits
    from kconvnext.training.probe import run_probe
    from kconvnext.training.summary import probe_summary

    if data is not None:
        raise ValueError("linear_probe: pass data_dir (the probe reads image files itself), not data=.")
    if not tensorflow_backend():
        raise ValueError(f"linear_probe needs the TensorFlow backend (tf.data feature extraction); "
                         f"KERAS_BACKEND is {keras.backend.backend()!r}.")
    if dataset not in DATASETS:
        raise unknown_name_error("dataset", dataset, DATASETS)
    check_resume_compatible(run_dir, config)
    keras.utils.set_random_seed(config.seed)
    splits = select_splits(dataset, data_dir=data_dir, image_size=config.image_size, batch_size=config.batch_size,
                           seed=config.seed, validation_fraction=config.validation_fraction, limit=config.limit,
                           output_dir=str(run_dir))
    bundle = splits.bundle(train=None, validation=None)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_run_files(run_dir, config, recipe_path, overrides, bundle)
    info = run_info(dataset, model, config, bundle, recipe_path, "float32",
                     {"linear_probe": True, "epochs": config.epochs, "pretrained": config.pretrained}, data_dir)
    RunFolder(run_dir).update_info(info)
    if verbose:
        print_fn(probe_summary(model_name=model, family=spec.family, config=config, recipe_path=recipe_path,
                               overrides=overrides, bundle=bundle, run_dir=run_dir))
    net, history, report, state = run_probe(model, config, splits, run_dir, print_fn=print_fn,
                                            verbose=verbose)
    params = int(sum(int(math.prod(v.shape)) for v in net.trainable_variables))
    result = TrainResult(
        run_dir=run_dir, model=net, config=config, history=history, epochs_completed=len(history),
        best_accuracy=report["top1"], best_epoch=len(history), best_weights="raw", params=params,
        report=report)
    write_reports(result, report, info, {
        key: state[key] for key in ("backbone_images", "feature_seconds", "feature_images_per_sec",
                                    "features_cached")})
    result.seconds = time.time() - started
    if verbose:
        print_fn(end_summary(result))
    return result
