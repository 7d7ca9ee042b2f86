"""keras' fit with the run's callbacks (checkpoints, NaN guard, budget guard, EMA, logs), and what
happens when it stops: a diverged loss, Ctrl-C or SIGTERM (a checkpoint to resume from)."""
import dataclasses
import time

import keras

from kconvnext.data.epochs import skipping_first_batches
from kconvnext.files import save_model_atomic
from kconvnext.run_folder import RunFolder
from kconvnext.training import callbacks as cb
from kconvnext.training.budget import BudgetGuard
from kconvnext.training.errors import TrainingDiverged
from kconvnext.training.model_setup import schedule_for
from kconvnext.training.resume import Position
from kconvnext.training.selection import selection_split
from kconvnext.training.signals import Terminated


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


def fit(net, train_ds, bundle, config, run_dir, state, initial_epoch, steps, resume, verbose, print_fn, extra,
         mid_epoch=0, budget_guard=None):
    """keras fit with our callbacks; NaN -> TrainingDiverged; Ctrl-C -> checkpoint, then re-raise.
    mid_epoch: batches of the first epoch already trained (a Ctrl-C checkpoint), read but not trained."""
    guard = cb.NaNGuard()
    throughput = cb.Throughput(config.batch_size, steps, config.epochs - initial_epoch, print_fn=print_fn)
    checkpoint = cb.RunCheckpoint(run_dir, state, guard)
    position = Position(state, net)
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


def make_budget_guard(net, config, plan, state, steps, run_dir, started, print_fn):
    """A BudgetGuard whose replan ends the lr schedule after `epochs` (the train step is retraced
    so the new schedule applies) and records the shortened plan, so a resume does not train on."""

    def replan(epochs):
        net.optimizer.learning_rate = schedule_for(dataclasses.replace(config, epochs=epochs), steps)
        net.make_train_function(force=True)
        state["budget_plan"] = {**state["budget_plan"], "epochs": int(epochs)}
        RunFolder(run_dir).write_state(state)

    return BudgetGuard(plan.minutes * 60, time.time() - started, plan.report_seconds, replan=replan,
                       print_fn=print_fn)
