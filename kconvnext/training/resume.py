"""Resuming a run exactly where it stopped: whether to resume, the checkpoint, its position
(completed epochs and batches into the next one) and that the recipe still matches."""
import keras
import yaml

from kconvnext.run_folder import RunFolder
from kconvnext.training.budget import apply_plan, plan_from_state


def resume_decision(run_dir, resume, config, print_fn):
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
        check_resume_compatible(run_dir, apply_plan(config, plan) if plan is not None else config)
    return bool(resume), state


def load_checkpoint(path, strategy, strategy_kind):
    """The checkpoint to resume; under multi-worker the chief's, on every worker (a collective)."""
    if strategy_kind == "multiworker":
        from kconvnext.training.multiworker import load_shared_checkpoint

        return load_shared_checkpoint(strategy, path)
    return keras.models.load_model(path)


def check_resume_compatible(run_dir, config):
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


def epochs_in_checkpoint(net, steps, state, from_state, print_fn):
    """(completed epochs, batches into the next epoch) of the checkpoint being resumed.

    The optimizer's step count is the checkpoint's own clock, but not a batch count under
    mixed_float16 (the LossScaleOptimizer skips the step of a batch with non-finite gradients), so
    state.json records it next to the position: at each epoch end (`optimizer_steps`, Position) and
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


class Position(keras.callbacks.Callback):
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
