"""Callbacks the trainer adds to keras' fit: EMA/raw validation, checkpoints, NaN guard, timing.

Order matters and the trainer keeps it: EMAValidation, NaNGuard, Throughput, RunCheckpoint, then
SwapEMAWeights(swap_on_epoch=True) last, so checkpoints always hold the *raw* weights in
the model and the EMA in the optimizer (which is what --resume needs), while best.keras gets
whichever of raw/EMA validated better. Every swap moves the EMA weights *and* the EMA of the
BatchNorm statistics (RecipeAdamW.average_buffers) together, so EMA weights are never paired with
the raw model's statistics.
"""
import contextlib
import math
import time

import keras
import numpy as np

from kconvnext.files import link_file_atomic, save_model_atomic
from kconvnext.run_folder import RunFolder
from kconvnext.training.buffer_ema import model_buffers


def _buffer_optimizer(model):
    """The optimizer that may hold buffer averages (inside a LossScaleOptimizer with mixed precision)."""
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    return optimizer if hasattr(optimizer, "swap_buffer_averages") else None


def average_buffers(net, print_fn):
    """EMA of the BatchNorm statistics next to the EMA weights (RecipeAdamW.average_buffers), for
    fit and the multi-worker loop alike."""
    optimizer = _buffer_optimizer(net)
    if optimizer is None or not model_buffers(net):
        return
    with net.distribute_strategy.scope() if hasattr(net, "distribute_strategy") else contextlib.nullcontext():
        averaged = optimizer.average_buffers(net)
    if not averaged:
        print_fn(f"note: on the {keras.backend.backend()} backend the EMA covers the weights only: "
                 "EMA validation and an EMA best.keras use the raw model's BatchNorm statistics.")


class SwapEMAWeights(keras.callbacks.SwapEMAWeights):
    """keras' SwapEMAWeights that swaps the EMA of the buffers (BatchNorm statistics) too."""

    def _swap_variables(self):
        super()._swap_variables()
        optimizer = _buffer_optimizer(self.model)
        if optimizer is not None:
            optimizer.swap_buffer_averages()

    def _finalize_ema_values(self):
        super()._finalize_ema_values()
        optimizer = _buffer_optimizer(self.model)
        if optimizer is not None:
            optimizer.copy_buffers_to_averages()


def _swap_ema(model):
    """Swap model weights and buffers with the optimizer's EMA copies (as SwapEMAWeights does)."""
    swapper = SwapEMAWeights()
    swapper.set_model(model)
    swapper._swap_variables()


class EMAValidation(keras.callbacks.Callback):
    """With SwapEMAWeights, fit's validation measures the EMA weights; this renames those to
    val_ema_* and re-validates the raw weights as val_*, so both are logged every epoch."""

    def __init__(self, validation_data):
        super().__init__()
        self.validation_data = validation_data

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or "val_loss" not in logs:
            return
        for key in [k for k in logs if k.startswith("val_")]:
            logs["val_ema_" + key[4:]] = logs[key]
        raw = self.model.evaluate(self.validation_data, verbose=0, return_dict=True)
        for key, value in raw.items():
            logs["val_" + key] = value


class NaNGuard(keras.callbacks.TerminateOnNaN):
    """Keras' TerminateOnNaN that also remembers where (epoch, batch, loss), so the trainer can say
    so and RunCheckpoint does not overwrite the last good checkpoint with NaN weights."""

    def __init__(self):
        super().__init__()
        self.tripped = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_batch_end(self, batch, logs=None):
        super().on_batch_end(batch, logs)
        if self.model.stop_training and self.tripped is None:
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.tripped = (self._epoch + 1, batch + 1, float(loss))


class Throughput(keras.callbacks.Callback):
    """Training images/s (first steps excluded: they include tracing) and an epoch-time estimate
    printed once after the first few steps, so a slow CPU run says how long it will take."""

    def __init__(self, batch_size, steps_per_epoch, epochs_left, warmup_steps=2, estimate_after=5,
                 print_fn=print):
        super().__init__()
        self.batch_size = batch_size
        self.steps_per_epoch = steps_per_epoch
        self.epochs_left = epochs_left
        # Short epochs (tests, tiny data sets) still get an estimate: fewer warmup/timed steps.
        self.warmup_steps = max(1, min(warmup_steps, steps_per_epoch - 1))
        self.estimate_after = max(1, min(estimate_after, steps_per_epoch - self.warmup_steps))
        self.print_fn = print_fn
        self.images_per_sec = None
        self._printed = False

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = None
        self._timed = 0

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 == self.warmup_steps:
            self._t0 = time.perf_counter()
        elif self._t0 is not None:
            self._timed += 1
            self._t_last = time.perf_counter()  # epoch end comes after validation: stop the clock here
            if not self._printed and self._timed >= self.estimate_after:
                self._printed = True
                per_step = (time.perf_counter() - self._t0) / self._timed
                epoch_s = per_step * self.steps_per_epoch
                self.print_fn(
                    f"\n[estimate] {per_step:.2f} s/step, {self.batch_size / per_step:.1f} img/s: "
                    f"~{_fmt(epoch_s)} per epoch (+validation), ~{_fmt(epoch_s * self.epochs_left)} "
                    f"for {self.epochs_left} epoch(s)"
                )

    def on_epoch_end(self, epoch, logs=None):
        if self._t0 is not None and self._timed:
            self.images_per_sec = self._timed * self.batch_size / (self._t_last - self._t0)
            if logs is not None:
                logs["train_images_per_sec"] = self.images_per_sec


def _fmt(seconds):
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class RunCheckpoint(keras.callbacks.Callback):
    """last.keras every epoch, best.keras on a new best validation accuracy (raw or EMA), both
    written atomically, plus state.json (completed epochs, best so far) that --resume reads."""

    def __init__(self, run_dir, state, nan_guard=None, monitor="val_accuracy"):
        super().__init__()
        self.run_dir = run_dir
        self.state = state
        self.nan_guard = nan_guard
        self.monitor = monitor

    @property
    def last_path(self):
        return RunFolder(self.run_dir).last_checkpoint

    @property
    def best_path(self):
        return RunFolder(self.run_dir).best_checkpoint

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if (self.nan_guard and self.nan_guard.tripped) or not _finite(self.model):
            return  # keep the last good checkpoint
        raw = logs.get(self.monitor)
        ema = logs.get("val_ema_" + self.monitor[4:])
        # state.json (with this epoch's history) goes first: a kill before the checkpoint lands
        # leaves state one epoch ahead, and resume trims it back to what the checkpoint holds,
        # so no epoch's history is ever lost.
        self.state.update(completed_epochs=epoch + 1,
                          history=self.state.get("history", []) + [_plain(logs)])
        RunFolder(self.run_dir).write_state(self.state)
        save_model_atomic(self.model, self.last_path)
        candidates = [(v, w) for v, w in ((raw, "raw"), (ema, "ema")) if v is not None]
        if candidates:
            value, which = max(candidates, key=lambda c: c[0])
            if self.state.get("best_accuracy") is None or value > self.state["best_accuracy"]:
                if which == "raw":  # the model last.keras holds: that file (no second serialisation)
                    link_file_atomic(self.last_path, self.best_path)
                else:
                    _swap_ema(self.model)
                    try:
                        save_model_atomic(self.model, self.best_path)
                    finally:
                        _swap_ema(self.model)
                self.state.update(best_accuracy=float(value), best_epoch=epoch + 1, best_weights=which)
                RunFolder(self.run_dir).write_state(self.state)


def _finite(model):
    return all(np.all(np.isfinite(keras.ops.convert_to_numpy(v))) for v in model.trainable_variables)


def _plain(logs):
    return {k: float(v) for k, v in logs.items()}
