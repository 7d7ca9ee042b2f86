"""Training under MultiWorkerMirroredStrategy with our own `strategy.run` step.

Why not model.fit: Keras 3's fit fails under MultiWorkerMirroredStrategy (keras-team/keras#20585).
The model, optimizer (AdamW + EMA + schedule) and loss are the same compiled objects fit would use;
only the loop is ours:
- the per-example loss is averaged over the *global* batch (tf.nn.compute_average_loss), and the
  Keras optimizer all-reduce-sums gradients across replicas, so every worker applies the same update;
- every worker runs exactly `steps` steps per epoch over a repeated, DATA-sharded dataset, so no
  worker waits forever in a collective for a batch another worker does not have. `steps` counts
  *global* batches: experimental_distribute_dataset splits each global batch across the replicas of
  all workers, so one cluster step consumes one batch of the single-worker data set, one epoch is
  `steps` steps (not steps // workers: that covered 1/workers of the data per "epoch" while the lr
  schedule, sized in global steps, ended workers-times too late);
- under mixed_float16 the loss goes through optimizer.scale_loss (the LossScaleOptimizer divides
  the gradients by its scale; unscaled they came out 2^15 times too small), and a non-finite
  gradient on any replica makes every replica skip the step together (each replica's
  LossScaleOptimizer checks its own gradients before the all-reduce; a mixed answer would leave
  some workers waiting in a collective the others never enter);
- the recipe's EMA is kept as in single-worker fit: the optimizer's EMA of the weights, RecipeAdamW's
  EMA of the BatchNorm buffers, raw and EMA validation every epoch, best.keras on whichever
  validated better and last.keras with the raw weights (callbacks.RunCheckpoint, the same code), and
  the EMA weights in the final model (fit's finalize_variable_values);
- only the chief writes checkpoints/logs (atomically, as in single-worker runs);
- only the chief reads the run folder: whether to resume, and the state (epochs done, batches to
  skip, history, budget plan), is its decision, broadcast to the others, and the checkpoint's bytes
  go with it, so every worker loads the same state (a worker with another view of the folder, or
  none, used to decide alone, and a mismatch left workers waiting in a collective).
"""
import csv
import json
import math
import shutil
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kconvnext.run_folder import RunFolder
from kconvnext.training import callbacks as cb
from kconvnext.training.distribute import is_chief
from kconvnext.training.errors import TrainingDiverged
from kconvnext.training.model_setup import loss_label_smoothing
from kconvnext.training.selection import selection_split

_CHUNK = 1 << 23  # int64 words per collective (64 MiB): a large checkpoint goes in pieces


def _from_replica_0(strategy, words):
    """`words` (int64 numpy) of global replica 0, the chief's first device, on every worker: an
    all-reduce sum to which every other replica adds zeros (exact for integers)."""
    @tf.function(autograph=False)  # (Python branches on settings only; see data/pipeline.py)
    def reduce(x):
        def replica(x):
            ctx = tf.distribute.get_replica_context()
            keep = tf.cast(tf.equal(ctx.replica_id_in_sync_group, 0), x.dtype)
            return ctx.all_reduce(tf.distribute.ReduceOp.SUM, x * keep)
        return strategy.run(replica, args=(x,))

    return strategy.experimental_local_results(reduce(tf.constant(words)))[0].numpy()


def broadcast_bytes(strategy, data):
    """The chief's `data` (bytes) on every worker; the others pass anything (None). Every worker
    must call this at the same point: it is a collective."""
    mine = data if is_chief(strategy) else b""
    size = int(_from_replica_0(strategy, np.array([len(mine)], np.int64))[0])
    words = np.zeros(-(-size // 8), np.int64)
    if is_chief(strategy):
        words.view(np.uint8)[:size] = np.frombuffer(mine, np.uint8)
    for start in range(0, len(words), _CHUNK):
        words[start:start + _CHUNK] = _from_replica_0(strategy, words[start:start + _CHUNK])
    return words.view(np.uint8)[:size].tobytes()


_SHARED_ERRORS = {"ValueError": ValueError, "FileNotFoundError": FileNotFoundError}


def chief_decides(strategy, decide):
    """decide() (JSON-able) run by the chief alone, its answer returned on every worker; an error it
    raises is raised on every worker (instead of leaving the others waiting for the answer)."""
    answer = None
    if is_chief(strategy):
        try:
            answer = {"value": decide()}
        except tuple(_SHARED_ERRORS.values()) as err:
            answer = {"error": type(err).__name__, "message": str(err)}
        answer = json.dumps(answer).encode()
    answer = json.loads(broadcast_bytes(strategy, answer))
    if "error" in answer:
        raise _SHARED_ERRORS[answer["error"]](answer["message"])
    return answer["value"]


def load_shared_checkpoint(strategy, path):
    """keras.models.load_model of the chief's checkpoint `path` on every worker (inside
    strategy.scope(); a collective): the others load its bytes, whatever their own folder holds."""
    data = broadcast_bytes(strategy, Path(path).read_bytes() if is_chief(strategy) else None)
    if is_chief(strategy):
        return keras.models.load_model(path)
    folder = tempfile.mkdtemp(prefix="kconvnext-chief-")
    try:
        copy = Path(folder) / Path(path).name
        copy.write_bytes(data)
        return keras.models.load_model(copy)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _distributed(strategy, dataset):
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.repeat().with_options(options))


def make_train_step(model, strategy, label_smoothing):
    optimizer = model.optimizer

    def replica_step(images, labels):
        with tf.GradientTape() as tape:
            logits = tf.cast(model(images, training=True), tf.float32)
            per_example = keras.losses.categorical_crossentropy(
                labels, logits, from_logits=True, label_smoothing=label_smoothing)
            loss = tf.nn.compute_average_loss(per_example)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            scaled = optimizer.scale_loss(loss)  # (the loss itself under float32)
        grads = tape.gradient(scaled, model.trainable_variables)
        if hasattr(optimizer, "inner_optimizer"):  # a LossScaleOptimizer
            grads = _all_finite_or_none(grads)
        optimizer.apply(grads, model.trainable_variables)
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1), tf.argmax(labels, -1)), tf.float32))
        return loss, correct, tf.cast(tf.shape(labels)[0], tf.float32)

    @tf.function(autograph=False)  # (Python branches on settings only; see data/pipeline.py)
    def train_step(iterator):
        loss, correct, count = strategy.run(replica_step, args=next(iterator))
        total = strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
        return total, strategy.reduce("SUM", correct, axis=None), strategy.reduce("SUM", count, axis=None)

    return train_step


def _all_finite_or_none(grads):
    """The gradients unchanged when every replica's are finite, else non-finite on every replica."""
    local = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads if g is not None])
    failing = tf.distribute.get_replica_context().all_reduce(
        tf.distribute.ReduceOp.SUM, tf.cast(tf.logical_not(local), tf.float32))
    everywhere = tf.equal(failing, 0.0)
    return [None if g is None else g / tf.cast(everywhere, g.dtype) for g in grads]  # x/1 = x, x/0 = inf/nan


def _validate(model, dataset):
    correct = count = 0
    for images, labels in dataset:
        logits = model(images, training=False)
        correct += int(np.sum(np.argmax(np.asarray(logits), -1) == np.argmax(np.asarray(labels), -1)))
        count += len(labels)
    return correct / max(count, 1)


def _validate_ema(model, dataset):
    """Validation of the EMA weights and buffers, swapped in and out as SwapEMAWeights does."""
    cb._swap_ema(model)
    try:
        return _validate(model, dataset)
    finally:
        cb._swap_ema(model)


def fit_multiworker(model, train_ds, bundle, config, strategy, run_dir, state, initial_epoch, steps, print_fn=print,
                    skip=0):
    """Run epochs [initial_epoch, config.epochs); returns (history, train images/s).
    skip: batches of the first epoch already trained (a single-worker Ctrl-C checkpoint): read, not trained."""
    chief = is_chief(strategy)
    with strategy.scope():
        if not model.optimizer.built:  # (average_buffers needs it; every worker builds it alike)
            model.optimizer.build(model.trainable_variables)
        train_step = make_train_step(model, strategy, loss_label_smoothing(config, bundle))
        iterator = iter(_distributed(strategy, train_ds))
    if config.ema:
        cb.average_buffers(model, print_fn)
    checkpoint = cb.RunCheckpoint(run_dir, state)
    checkpoint.set_model(model)
    monitored = selection_split(bundle)
    history = list(state.get("history", []))
    ips = None
    for epoch in range(initial_epoch, config.epochs):
        t0, loss_sum, correct_sum, seen = time.perf_counter(), 0.0, 0.0, 0.0
        progbar = keras.utils.Progbar(steps, verbose=1 if chief else 0)
        first = skip if epoch == initial_epoch else 0
        for _ in range(first):
            next(iterator)
        for step in range(first, steps):
            loss, correct, count = train_step(iterator)
            loss_value = float(loss)
            if not math.isfinite(loss_value):
                raise TrainingDiverged(f"loss became {loss_value} at epoch {epoch + 1}, step {step + 1} "
                                       f"(multi-worker); the last good checkpoint is kept in {run_dir}.")
            loss_sum, correct_sum, seen = loss_sum + loss_value, correct_sum + float(correct), seen + float(count)
            progbar.update(step + 1, [("loss", loss_value)])
        ips = seen / max(time.perf_counter() - t0, 1e-9)
        logs = {"epoch": epoch + 1, "loss": loss_sum / (steps - first), "accuracy": correct_sum / max(seen, 1),
                "train_images": seen, "val_accuracy": _validate(model, monitored)}
        if config.ema:  # (EMAValidation's keys)
            logs["val_ema_accuracy"] = _validate_ema(model, monitored)
        logs["train_images_per_sec"] = ips
        history.append(logs)
        state.update(train_images_per_sec=ips,  # (the optimizer's steps: for resume, as _Position)
                     optimizer_steps=int(keras.ops.convert_to_numpy(model.optimizer.iterations)))
        if chief:
            ema = f" val_ema_accuracy {logs['val_ema_accuracy']:.4f}" if config.ema else ""
            print_fn(f"epoch {epoch + 1}/{config.epochs}: loss {logs['loss']:.4f} "
                     f"accuracy {logs['accuracy']:.4f} val_accuracy {logs['val_accuracy']:.4f}{ema}")
            checkpoint.on_epoch_end(epoch, logs)  # state.json, last.keras, best.keras (raw or EMA)
            _append_csv(RunFolder(run_dir).logs / "training.csv", logs)
        else:
            state.update(completed_epochs=epoch + 1, history=history)
    # As fit: the EMA weights (and buffers) end in the model; last.keras keeps the raw ones.
    model.optimizer.finalize_variable_values(model.trainable_variables)
    if chief:
        state.pop("interrupted", None)
        state.pop("interrupted_at", None)
        RunFolder(run_dir).write_state(state)
    return history, ips


def _append_csv(path, logs):
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(logs))
        if new:
            writer.writeheader()
        writer.writerow(logs)
