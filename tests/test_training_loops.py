"""Training-loop correctness (issue 12 items 5-7): resume under mixed_float16 with more epochs, the
multi-worker step's loss scaling, and gradient clipping of the all-reduced gradient under
MirroredStrategy. (The exact resume from a mid-epoch Ctrl-C checkpoint is in test_training_trainer,
beside the uninterrupted run it compares with; the 2-process multi-worker epoch/schedule check is
part of test_training_distributed.)"""
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from kconvnext.training.model_setup import schedule_for
from test_training_trainer import _flat, run
from training_helpers import steps_per_epoch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_resume_under_mixed_float16_with_more_epochs_uses_the_stretched_schedule(tmp_path):
    first = run(tmp_path, epochs=1, mixed_precision="mixed_float16", ema=False)
    steps = steps_per_epoch(first.run_dir)
    assert isinstance(first.model.optimizer, keras.optimizers.LossScaleOptimizer)
    resumed = run(tmp_path, epochs=2, mixed_precision="mixed_float16", ema=False)
    optimizer = resumed.model.optimizer
    # It continued after epoch 1 (the LossScaleOptimizer skips steps with non-finite gradients, so
    # optimizer steps are no batch count), and the schedule the wrapped optimizer applies (the
    # LossScaleOptimizer's own is never read) is stretched to the new end.
    assert resumed.epochs_completed == 2 and resumed.history[0] == first.history[0]
    schedule = optimizer.inner_optimizer._learning_rate
    assert schedule.total_steps == 2 * steps
    assert float(optimizer.learning_rate) == pytest.approx(float(schedule(optimizer.iterations)))
    assert schedule.get_config() == schedule_for(resumed.config, steps).get_config()
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")  # (as the trainer reloads it)
    try:
        saved = keras.models.load_model(tmp_path / "run/checkpoints/last.keras")
    finally:
        keras.config.set_dtype_policy(previous)
    assert saved.optimizer.inner_optimizer._learning_rate.total_steps == 2 * steps


def test_multiworker_step_scales_the_loss_under_mixed_float16():
    """make_train_step (the multi-worker loop's step) matches keras' own train step: without
    scale_loss the LossScaleOptimizer divided unscaled gradients by 2**15."""
    from kconvnext.training.multiworker import make_train_step

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        rng = np.random.default_rng(0)
        x = rng.normal(size=(8, 6)).astype("float32")
        y = np.eye(3, dtype="float32")[rng.integers(0, 3, 8)]
        models = []
        for _ in range(2):
            model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
            model.compile(keras.optimizers.SGD(0.5), keras.losses.CategoricalCrossentropy(from_logits=True))
            models.append(model)
        ours, reference = models
        reference.set_weights(ours.get_weights())
        start = ours.get_weights()[0]
        assert isinstance(ours.optimizer, keras.optimizers.LossScaleOptimizer)
        strategy = tf.distribute.get_strategy()
        step = make_train_step(ours, strategy, label_smoothing=0.0)
        step(iter(strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors((x, y)))))
        reference.train_on_batch(x, y)
        ours_update = ours.get_weights()[0] - start
        reference_update = reference.get_weights()[0] - start
        assert np.abs(reference_update).max() > 1e-3
        np.testing.assert_allclose(ours_update, reference_update, rtol=0.02, atol=1e-4)
    finally:
        keras.config.set_dtype_policy(previous)


CLIP_SCRIPT = r"""
import json
import keras
import numpy as np
import tensorflow as tf
from kconvnext.training.distribute import select_strategy
from kconvnext.training.optimizer import RecipeAdamW

mirrored, _ = select_strategy("mirrored", cpu_devices=2)
rng = np.random.default_rng(0)
x = rng.normal(size=(8, 5)).astype("float32")
x[4:] *= 20.0  # the second replica's half of the batch has a much larger gradient than the first's
y = rng.normal(size=(8, 3)).astype("float32")
start = [rng.normal(size=(5, 3)).astype("float32"), np.zeros(3, "float32")]

def train(strategy):
    with strategy.scope():
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
        model.set_weights(start)
        # epsilon=1: Adam's update is not scale-invariant, so a wrong clip shows in the weights.
        model.compile(RecipeAdamW(learning_rate=0.1, epsilon=1.0, weight_decay=0.0, global_clipnorm=0.5),
                      loss="mse")
    model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    return model.get_weights()

one, two = train(tf.distribute.get_strategy()), train(mirrored)
print("RESULT", json.dumps({"replicas": mirrored.num_replicas_in_sync,
                            "moved": float(np.abs(one[0] - start[0]).max()),
                            "gap": max(float(np.abs(a - b).max()) for a, b in zip(one, two))}))
"""


@pytest.mark.slow
def test_global_clipnorm_under_mirrored_clips_the_reduced_gradient():
    """2 replicas on 2 logical CPUs (a fresh process: logical devices precede TF's runtime) update
    exactly as one device on the same global batch; clipping each replica's share apart does not."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    out = subprocess.run([sys.executable, "-c", CLIP_SCRIPT], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.split("RESULT", 1)[1])
    assert result["replicas"] == 2 and result["moved"] > 1e-3
    assert result["gap"] < 1e-5, result


@pytest.mark.slow
def test_multiworker_loop_keeps_the_ema_of_weights_and_batchnorm_statistics(tmp_path):
    """fit_multiworker (here on the default strategy: one process) keeps the recipe's EMA as fit
    does: RecipeAdamW averages the BatchNorm statistics too, raw and EMA are validated, best.keras
    holds whichever won, last.keras the raw weights, and the model ends with the EMA weights and
    statistics. (It used to drop all of it.)"""
    from kconvnext.training.model_setup import build_model, compile_model, loss_label_smoothing
    from kconvnext.training.multiworker import fit_multiworker
    from kconvnext.training.buffer_ema import model_buffers
    from kconvnext.training.recipes import load_recipe
    from training_helpers import synthetic_bundle

    config, _ = load_recipe("catsdogs_resnet_scratch", dataset="catsdogs", family="resnet", overrides={
        "epochs": 1, "image_size": 16, "small_input": True, "batch_size": 16, "warmup_epochs": 0,
        "drop_path_rate": 0.0, "ema": True, "ema_momentum": 0.5, "model": {"depths": [1, 1, 1, 1]}})
    bundle = synthetic_bundle(train=32, val=16, size=16)
    keras.utils.set_random_seed(0)
    net = compile_model(build_model("resnet18", config, 2, "imagenet"), "resnet18", config, 2, 2,
                        loss_label_smoothing(config, bundle))
    state = {}
    history, _ = fit_multiworker(net, bundle.train, bundle, config, tf.distribute.get_strategy(), tmp_path, state,
                                 0, 2, print_fn=lambda *_: None)
    optimizer = net.optimizer
    buffers = model_buffers(net)
    assert len(buffers) > 0 and len(optimizer.buffer_averages) == len(buffers)
    assert "val_ema_accuracy" in history[-1] and "val_ema_accuracy" in state["history"][-1]
    for variable, average in zip(net.trainable_variables + buffers,
                                 optimizer._model_variables_moving_average + list(optimizer.buffer_averages)):
        np.testing.assert_array_equal(variable.numpy(), average.numpy())
    last = keras.models.load_model(tmp_path / "checkpoints/last.keras")
    best = keras.models.load_model(tmp_path / "checkpoints/best.keras")
    assert np.abs(_flat(last.get_weights()) - _flat(net.get_weights())).max() > 1e-6  # raw, not EMA
    assert state["best_epoch"] == 1
    expected = net if state["best_weights"] == "ema" else last
    np.testing.assert_array_equal(_flat(best.get_weights()), _flat(expected.get_weights()))


def test_chief_broadcast_round_trips_bytes_in_chunks_and_errors(monkeypatch):
    """The channel the chief's resume decision and checkpoint go through (on one process here):
    any length, across chunk boundaries, and the chief's error raised as the same type."""
    from kconvnext.training import multiworker

    monkeypatch.setattr(multiworker, "_CHUNK", 2)  # 2 int64 words: several chunks and a short last one
    strategy = tf.distribute.get_strategy()
    for data in (b"", b"x", bytes(range(256)) * 3 + b"tail"):
        assert multiworker.broadcast_bytes(strategy, data) == data
    assert multiworker.chief_decides(strategy, lambda: [True, {"completed_epochs": 1}]) == [
        True, {"completed_epochs": 1}]

    def refuse():
        raise FileNotFoundError("--resume: no checkpoint")

    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        multiworker.chief_decides(strategy, refuse)
