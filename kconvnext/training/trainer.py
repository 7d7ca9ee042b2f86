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
import tempfile
import time
from pathlib import Path

import keras
import yaml

from kconvnext.data.epochs import batches_per_epoch, fast_forward, first_batches, skipping_first_batches
from kconvnext.files import save_model_atomic, write_json_atomic, write_text_atomic
from kconvnext.models import get_spec
from kconvnext.models.registry import unknown_name_error
from kconvnext.run_folder import RunFolder
from kconvnext.training import callbacks as cb
from kconvnext.training.budget import BudgetGuard, apply_plan, measure_costs, plan_budget, plan_from_state
from kconvnext.training.config import merge, parse_set
from kconvnext.training.distribute import is_chief, resolve_precision, select_strategy, tensorflow_backend
from kconvnext.training.errors import TrainingDiverged
from kconvnext.training.evaluate import accuracy_report, predict_dataset
from kconvnext.training.model_setup import (build_model, compile_model, loss_label_smoothing, match_loss_smoothing,
                                             schedule_for)
from kconvnext.training.plots import plot_confusion, plot_history
from kconvnext.training.preflight import check_start, estimate_line
from kconvnext.training.recipes import load_recipe
from kconvnext.training.selection import selected_on, selection_split
from kconvnext.training.signals import Terminated, sigterm_as_interrupt
from kconvnext.training.summary import end_summary, start_summary

DATASETS = ("catsdogs", "cifar10", "folder")


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


def default_run_dir(dataset, model):
    return Path("runs") / f"{dataset}-{model}"


def _normalize_overrides(overrides):
    """Python kwargs and --set items -> one nested dict; `a__b=1` and {'a.b': 1} mean a.b."""
    out = {}
    for key, value in (overrides or {}).items():
        key = key.replace("__", ".")
        if "." in key:
            out = merge(out, parse_set([f"{key}={yaml.safe_dump(value, default_flow_style=True).strip()}"]))
        else:
            out = merge(out, {key: value})
    return out


def preset_eval_transform(model_name, config):
    """The eval transform a pretrained preset was published with, at the recipe's image size, for a
    run that starts from a preset tag (validation, checkpoint selection, eval/predict/export of the
    run); None otherwise (the recipe's bilinear crop)."""
    from kconvnext.weights.presets import is_preset_name, preprocessing_for

    if not config.pretrained or not is_preset_name(config.pretrained):
        return None
    return preprocessing_for(model_name, config.pretrained).at_size(config.image_size)


def load_data(dataset, config, data_dir, run_dir, seed, print_fn=print, model_name=None):
    """kconvnext.data.load with the recipe's image size, batch, augmentation and limit (validation
    preprocessed as the pretrained preset was published, if any); on a backend other than TensorFlow
    the numpy/PyDataset equivalent (kconvnext/data/portable.py)."""
    extra = {}
    if tensorflow_backend():
        from kconvnext.data import load

        extra["eval_transform"] = preset_eval_transform(model_name, config) if model_name else None
    else:
        from kconvnext.data.portable import load, unsupported

        missing = unsupported(config.augment)
        if missing:
            print_fn(f"note: on the {keras.backend.backend()} backend the data pipeline is numpy: "
                     f"{', '.join(missing)} from the recipe are NOT applied (they need tf.data).")
    return load(
        dataset, data_dir=data_dir, image_size=config.image_size, batch_size=config.batch_size,
        seed=seed, augment=config.augment.pipeline_dict(), validation_fraction=config.validation_fraction,
        selection_fraction=config.selection_fraction, label_smoothing=config.label_smoothing,
        limit=config.limit, output_dir=str(run_dir), **extra,
    )


def _epochs_in_checkpoint(net, steps, state, from_state, print_fn):
    """(completed epochs, batches into the next epoch) of the checkpoint being resumed.

    The optimizer's step count is the checkpoint's own clock, but not a batch count under
    mixed_float16 (the LossScaleOptimizer skips the step of a batch with non-finite gradients), so
    state.json records it next to the position: at each epoch end (`optimizer_steps`, _Position) and
    at a Ctrl-C (`interrupted_at`: batches into the epoch). state.json (with the epoch's history) is
    written just before the checkpoint, so a kill between the two leaves state.json one epoch ahead;
    the checkpoint is the truth and the extra history entry is dropped (that epoch is trained again).
    A run folder from before that record: optimizer steps // steps per epoch.
    """
    iterations = int(keras.ops.convert_to_numpy(net.optimizer.iterations))  # (a MirroredVariable under mirrored)
    at = state.get("interrupted_at") or {}
    ends = state.get("optimizer_steps")  # at the end of epoch `from_state`
    if state.get("interrupted") and at.get("optimizer_steps") == iterations:
        epochs, batches = from_state, int(at["batches"])  # the Ctrl-C checkpoint state.json describes
    elif ends is None:
        epochs, batches = iterations // steps, iterations % steps
    elif iterations < ends:
        epochs, batches = from_state - 1, 0  # state.json is one epoch ahead of the checkpoint
    else:
        epochs, batches = from_state, min(iterations - ends, steps - 1)
    if epochs != from_state:
        print_fn(f"note: the checkpoint holds {epochs} completed epoch(s), state.json {from_state}; "
                 "continuing from the checkpoint")
        state["completed_epochs"] = epochs
        state["history"] = state.get("history", [])[:epochs]
    return epochs, batches


class _Position(keras.callbacks.Callback):
    """Where training is, for an exact resume: batches done in the current epoch (for a Ctrl-C
    checkpoint) and the optimizer's step count at each epoch end, put in `state` before
    RunCheckpoint writes it (so this callback goes before RunCheckpoint)."""

    def __init__(self, state, net):
        super().__init__()
        self.state, self.net, self.batches = state, net, 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches = batch + 1  # (batches read but skipped on a mid-epoch resume count too)

    def on_epoch_end(self, epoch, logs=None):
        self.batches = 0
        self.state["optimizer_steps"] = int(keras.ops.convert_to_numpy(self.net.optimizer.iterations))


def _resume_decision(run_dir, resume, config, print_fn):
    """(resume, state.json) from what the run folder holds; `resume` as train() takes it."""
    last_ckpt = RunFolder(run_dir).last_checkpoint
    if resume is None:
        resume = last_ckpt.is_file()
        if resume:
            print_fn(f"found {last_ckpt}: resuming (pass a new --output to start a fresh run)")
    elif resume and not last_ckpt.is_file():
        raise FileNotFoundError(f"--resume: {last_ckpt} does not exist; train without --resume first.")
    state = RunFolder(run_dir).state() if resume else {}
    if resume:
        plan = plan_from_state(state) if config.budget_minutes else None
        _check_resume_compatible(run_dir, apply_plan(config, plan) if plan is not None else config)
    return bool(resume), state


def _load_checkpoint(path, strategy, strategy_kind):
    """The checkpoint to resume; under multi-worker the chief's, on every worker (a collective)."""
    if strategy_kind == "multiworker":
        from kconvnext.training.multiworker import load_shared_checkpoint

        return load_shared_checkpoint(strategy, path)
    return keras.models.load_model(path)


def _check_resume_compatible(run_dir, config):
    saved_path = RunFolder(run_dir).recipe_yaml
    if not saved_path.is_file():
        return
    saved = yaml.safe_load(saved_path.read_text()) or {}
    now = config.to_dict()
    diffs = [k for k in now if k not in ("epochs", "strategy", "cpu_devices") and saved.get(k) != now[k]]
    if diffs:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in diffs[:5])
        raise ValueError(
            f"{run_dir} holds a run with a different recipe ({details}); resuming would mix them. "
            f"Pass --output NEW_DIR for a new run, or delete {run_dir} to start over."
        )


def _transform_info(model_name, config, bundle):
    """run.json's eval_transform when validation used a preset's (image files on TensorFlow)."""
    transform = preset_eval_transform(model_name, config)
    if transform is None or getattr(bundle, "arrays", False) or not tensorflow_backend():
        return {}
    return {"eval_transform": transform.to_dict()}


def _run_info(dataset, model_name, config, bundle, recipe_path, precision, extra=None, data_dir=None):
    """run.json: what export / eval / predict need to use the checkpoints without the recipe (and
    where the data came from: `cli.py eval RUN` evaluates on it without being told again)."""
    return {
        "model": model_name, "dataset": dataset, "data_dir": str(Path(data_dir).resolve()) if data_dir else None,
        "class_names": list(bundle.class_names),
        "num_classes": int(bundle.num_classes), "image_size": int(config.image_size),
        "eval_crop_ratio": float(config.augment.eval_crop_ratio),
        "normalization": bundle.normalization, "small_input": bool(config.small_input),
        "recipe": str(recipe_path), "precision": precision,
        "train_count": int(bundle.train_count), "validation_count": int(bundle.validation_count),
        "selection_count": int(getattr(bundle, "selection_count", 0) or 0), "selected_on": selected_on(bundle),
        **_transform_info(model_name, config, bundle), **(extra or {}),
    }


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
        process start, budget.process_start_time(), so a budget covers the whole command).
    Raises TrainingDiverged on a NaN/inf loss (the last good checkpoint is kept).
    """
    started = time.time() if started is None else float(started)
    spec = get_spec(model)
    if data is None and dataset not in DATASETS:
        raise unknown_name_error("dataset", dataset, DATASETS)
    user_overrides = merge(_normalize_overrides(overrides), _normalize_overrides(kwargs))
    config, recipe_path = load_recipe(recipe, dataset=dataset, family=spec.family, overrides=user_overrides)
    run_dir = Path(output) if output else default_run_dir(dataset, model)
    check_start(model, spec.family, dataset, config, data_dir)  # before any data is read or written
    if config.linear_probe:
        return _train_probe(dataset, model, spec, config, recipe_path, user_overrides, run_dir, data_dir,
                            data, verbose, print_fn, started)
    last_ckpt = RunFolder(run_dir).last_checkpoint
    strategy, strategy_kind = select_strategy(config.strategy, config.cpu_devices)
    decide = functools.partial(_resume_decision, run_dir, resume, config, print_fn)
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
                plan = _measure_budget(model, config, bundle, steps, started)
            state["budget_plan"] = dataclasses.asdict(plan)
            config = apply_plan(config, plan)
            keras.utils.set_random_seed(config.seed)  # the real model starts as an unbudgeted run would
        if plan is not None and plan.steps_per_epoch < steps:
            steps = plan.steps_per_epoch
            train_ds = first_batches(train_ds, steps)
        run_dir.mkdir(parents=True, exist_ok=True)
        with strategy.scope():
            if resume:
                net = _load_checkpoint(last_ckpt, strategy, strategy_kind)
                # A resumed run may be given more epochs: stretch the schedule to the new end. (The
                # public setter: a LossScaleOptimizer, mixed_float16, passes it to the optimizer it
                # wraps, whose schedule is the one applied; its own _learning_rate is never read.)
                net.optimizer.learning_rate = schedule_for(config, steps)
                if match_loss_smoothing(net, model, config, steps, bundle.num_classes, loss_smoothing):
                    print_fn(f"note: the checkpoint's loss is recompiled to label smoothing {loss_smoothing:g} "
                             "(the training targets carry the recipe's); its optimizer state is kept.")
                initial_epoch, mid_epoch = _epochs_in_checkpoint(net, steps, state, initial_epoch, print_fn)
                if mid_epoch and not tensorflow_backend():
                    print_fn(f"note: on the {keras.backend.backend()} backend a mid-epoch checkpoint resumes at the "
                             f"start of epoch {initial_epoch + 1} ({mid_epoch} batch(es) are trained again).")
                    mid_epoch = 0
            else:
                net = build_model(model, config, bundle.num_classes, bundle.normalization)
                compile_model(net, model, config, steps, bundle.num_classes, loss_smoothing)
        fast_forward(bundle.train, initial_epoch)  # (train_ds shares its iterator seeds)
        params = int(sum(int(math.prod(v.shape)) for v in net.trainable_variables))
        _write_run_files(run_dir, config, recipe_path, user_overrides, bundle)
        info = _run_info(dataset, model, config, bundle, recipe_path, precision,
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
            budget_guard = (_budget_guard(net, config, plan, state, steps, run_dir, started, print_fn)
                            if plan is not None and not resume else None)
            with sigterm_as_interrupt() as on_sigterm:  # a scheduler's stop saves like Ctrl-C
                history, ips = _fit(net, train_ds, bundle, config, run_dir, state, initial_epoch, steps, resume,
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
            result.report = _finish(result, bundle, info, verbose)
        result.seconds = time.time() - started
        if verbose:
            print_fn(end_summary(result))
        return result
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _budget_guard(net, config, plan, state, steps, run_dir, started, print_fn):
    """A BudgetGuard whose replan ends the lr schedule after `epochs` (the train step is retraced
    so the new schedule applies) and records the shortened plan, so a resume does not train on."""

    def replan(epochs):
        net.optimizer.learning_rate = schedule_for(dataclasses.replace(config, epochs=epochs), steps)
        net.make_train_function(force=True)
        state["budget_plan"] = {**state["budget_plan"], "epochs": int(epochs)}
        RunFolder(run_dir).write_state(state)

    return BudgetGuard(plan.minutes * 60, time.time() - started, plan.report_seconds, replan=replan,
                       print_fn=print_fn)


def _measure_budget(model, config, bundle, steps, started):
    """Time a throwaway copy of the model on a validation batch (so the training data stream, and
    with it the data order of an unbudgeted run, is untouched) and plan the budget, counting what
    the run spends outside training steps against it (budget.py)."""
    batch = next(iter(bundle.validation))

    def build():
        net = build_model(model, config, bundle.num_classes, bundle.normalization)
        return compile_model(net, model, config, steps, bundle.num_classes, loss_label_smoothing(config, bundle))

    with tempfile.TemporaryDirectory() as tmp:
        costs = measure_costs(build, batch, lambda net: save_model_atomic(net, Path(tmp) / "timing.keras"))
    monitored = getattr(bundle, "selection_count", 0) or bundle.validation_count
    # Every epoch: validation (raw and, with EMA, the EMA weights) and last.keras + best.keras.
    per_epoch = monitored * (2 if config.ema else 1) / costs.eval_images_per_sec + 2 * costs.save_seconds
    # Once: what has been spent so far, tracing, and the report (load best.keras, predict validation).
    report = costs.save_seconds + bundle.validation_count / costs.eval_images_per_sec
    once = time.time() - started + costs.trace_seconds + report
    return plan_budget(config.budget_minutes, costs.images_per_sec, config.batch_size, steps, config.warmup_epochs,
                       overhead_seconds=once, epoch_overhead_seconds=per_epoch, report_seconds=report)


def _write_run_files(run_dir, config, recipe_path, overrides, bundle):
    RunFolder(run_dir).remove_partial_writes()  # before anything is written again
    header = f"# resolved recipe: {recipe_path}" + (f"\n# overrides: {overrides}" if overrides else "")
    write_text_atomic(RunFolder(run_dir).recipe_yaml,
                      header + "\n" + yaml.safe_dump(config.to_dict(), sort_keys=False))
    skipped = getattr(bundle, "skipped", None) or []
    write_text_atomic(RunFolder(run_dir).skipped_files,
                      "".join(f"{path}\t{reason}\n" for path, reason in skipped))


def _build_without_training_data(net, validation):
    """Build metrics/optimizer from a validation batch before fit.

    Otherwise fit builds them by pulling a batch from a *new training iterator* on a fresh run but
    not on a resumed one (whose optimizer is already built), which shifts the per-epoch shuffle
    stream by one and breaks fast_forward's exact data-order resume.
    """
    if hasattr(net, "_symbolic_build") and hasattr(net, "distribute_strategy"):  # (TensorFlow backend)
        with net.distribute_strategy.scope():
            net._symbolic_build(data_batch=next(iter(validation)))


def _tensorboard(logs_dir, print_fn):
    """TensorBoard logs when the tensorboard package is installed (tf.summary needs it)."""
    try:
        import tensorboard  # noqa: F401
        import tensorflow  # noqa: F401  (keras' TensorBoard callback writes with tf.summary)
    except ImportError:
        print_fn("note: TensorBoard logs need `tensorflow` and `tensorboard` installed (CSV logs are written).")
        return []
    return [keras.callbacks.TensorBoard(str(logs_dir / "tensorboard"), write_graph=False, profile_batch=0)]


def _fit(net, train_ds, bundle, config, run_dir, state, initial_epoch, steps, resume, verbose, print_fn, extra,
         mid_epoch=0, budget_guard=None):
    """keras fit with our callbacks; NaN -> TrainingDiverged; Ctrl-C -> checkpoint, then re-raise.
    mid_epoch: batches of the first epoch already trained (a Ctrl-C checkpoint), read but not trained."""
    guard = cb.NaNGuard()
    throughput = cb.Throughput(config.batch_size, steps, config.epochs - initial_epoch, print_fn=print_fn)
    checkpoint = cb.RunCheckpoint(run_dir, state, guard)
    position = _Position(state, net)
    swap = cb.SwapEMAWeights(swap_on_epoch=True) if config.ema else None
    logs_dir = RunFolder(run_dir).logs
    logs_dir.mkdir(parents=True, exist_ok=True)
    monitored = selection_split(bundle)
    callbacks = ([cb.EMAValidation(monitored)] if swap else []) + [
        guard, throughput, position, checkpoint, *([budget_guard] if budget_guard else []),
        keras.callbacks.CSVLogger(str(logs_dir / "training.csv"), append=bool(resume)),
    ] + _tensorboard(logs_dir, print_fn) + list(extra) + ([swap] if swap else [])
    _build_without_training_data(net, bundle.validation)
    if swap is not None:
        cb.average_buffers(net, print_fn)
    try:
        if mid_epoch:
            print_fn(f"resuming epoch {initial_epoch + 1} after its first {mid_epoch} batch(es) "
                     f"(the checkpoint was saved mid-epoch)")
        with skipping_first_batches(net, mid_epoch):
            net.fit(train_ds, validation_data=monitored, epochs=config.epochs,
                    initial_epoch=initial_epoch, callbacks=callbacks, verbose=verbose, shuffle=False)
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (signals.Terminated)
        if swap is not None and swap._ema_weights_in_model:
            cb._swap_ema(net)
        if cb._finite(net):
            save_model_atomic(net, checkpoint.last_path)
            state["interrupted"] = True
            state["interrupted_at"] = {"batches": position.batches, "optimizer_steps": int(
                keras.ops.convert_to_numpy(net.optimizer.iterations))}
            RunFolder(run_dir).write_state(state)
            cause = "terminated (SIGTERM)" if isinstance(stop, Terminated) else "interrupted"
            print_fn(f"\n{cause}: saved {checkpoint.last_path} (mid-epoch: {position.batches} of {steps} "
                     f"batches of epoch {state.get('completed_epochs', 0) + 1}; resume continues after them). "
                     f"Resume with the same command + --resume.")
        raise
    if guard.tripped:
        epoch, step, loss = guard.tripped
        kept = (f"the last good checkpoint is kept: {checkpoint.last_path} (epoch {state['completed_epochs']})"
                if state.get("completed_epochs") else "no epoch completed, so no checkpoint was written")
        raise TrainingDiverged(
            f"loss became {loss} at epoch {epoch}, step {step}: training stopped; {kept}. "
            f"Lower the learning rate (--set lr=... or base_lr=...), or clip gradients "
            f"(--set global_clipnorm=1.0), or turn off mixed precision."
        )
    state.pop("interrupted", None)
    state.pop("interrupted_at", None)
    if budget_guard is not None and budget_guard.stopped_after:
        state["stopped_by_budget"] = {"epochs": budget_guard.stopped_after, "planned": budget_guard.planned,
                                      "replans": budget_guard.replans}
        state["budget_plan"] = {**state["budget_plan"], "epochs": budget_guard.stopped_after}
    state["train_images_per_sec"] = throughput.images_per_sec
    RunFolder(run_dir).write_state(state)
    return state.get("history", []), throughput.images_per_sec


def _finish(result, bundle, info, verbose):
    """Plots and the validation report of the best checkpoint; final run.json."""
    best = RunFolder(result.run_dir).best_checkpoint
    model = keras.models.load_model(best, compile=False) if best.is_file() else result.model
    probs, labels = predict_dataset(model, bundle.validation, verbose=0)
    return _write_reports(result, accuracy_report(probs, labels, bundle.class_names), info)


def _write_reports(result, report, info, extra=None):
    """curves.png, confusion_matrix.png, validation_report.json and the final run.json."""
    run_dir = result.run_dir
    plots = RunFolder(run_dir).plots
    plots.mkdir(exist_ok=True)
    if result.history:
        plot_history(result.history, plots / "curves.png", title=f"{info['model']} on {info['dataset']}")
    plot_confusion(report["confusion_matrix"], report["class_names"], plots / "confusion_matrix.png")
    write_json_atomic(RunFolder(run_dir).validation_report, report)
    RunFolder(run_dir).update_info({
        **info,
        "epochs_completed": result.epochs_completed, "best_accuracy": result.best_accuracy,
        "best_epoch": result.best_epoch, "best_weights": result.best_weights,
        "validation_top1": report["top1"], "train_images_per_sec": result.train_images_per_sec,
        **(extra or {}),
    })
    return report


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
    _check_resume_compatible(run_dir, config)
    keras.utils.set_random_seed(config.seed)
    splits = select_splits(dataset, data_dir=data_dir, image_size=config.image_size, batch_size=config.batch_size,
                           seed=config.seed, validation_fraction=config.validation_fraction, limit=config.limit,
                           output_dir=str(run_dir))
    bundle = splits.bundle(train=None, validation=None)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_run_files(run_dir, config, recipe_path, overrides, bundle)
    info = _run_info(dataset, model, config, bundle, recipe_path, "float32",
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
    _write_reports(result, report, info, {
        key: state[key] for key in ("backbone_images", "feature_seconds", "feature_images_per_sec",
                                    "features_cached")})
    result.seconds = time.time() - started
    if verbose:
        print_fn(end_summary(result))
    return result
