"""The training recipe as the references run it: an EMA that averages the BatchNorm statistics with
the weights (timm ModelEmaV3), and layer-wise lr decay that scales the weight decay too (torch AdamW
with the official parameter groups)."""
import json

import keras
import numpy as np
import pytest

import kconvnext
from kconvnext.training import RecipeAdamW, train
from kconvnext.training.callbacks import _swap_ema
from kconvnext.training.buffer_ema import model_buffers
from kconvnext.training.layer_decay import layer_decay_scales

MOMENTUM = 0.7


def _np(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


class RecordStatistics(keras.callbacks.Callback):
    """The BatchNorm statistics after every train step (fit runs one step per batch here)."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(_np(model_buffers(self.model)))


def _hand_ema(steps, momentum):
    """Keras' EMA rule: the first step copies, every later step averages."""
    average = steps[0]
    for stats in steps[1:]:
        average = [momentum * a + (1 - momentum) * s for a, s in zip(average, stats)]
    return average


@pytest.fixture(scope="module")
def cifar_bundle(cifar10_dir):
    from kconvnext.data import load

    return load("cifar10", data_dir=cifar10_dir, batch_size=8, limit=24, seed=0, augment={})


@pytest.mark.slow
def test_ema_averages_batchnorm_statistics_validates_with_them_and_resumes(tmp_path, cifar_bundle):
    """A ResNet trained with EMA on real CIFAR-10 images, killed after epoch 1 and resumed: the
    checkpoint's EMA of the BN statistics is exactly the per-step EMA of the statistics over both
    runs, and the logged EMA validation is what EMA weights *with EMA statistics* score."""
    record = RecordStatistics()
    args = dict(recipe="cifar10_resnet", data=cifar_bundle, output=tmp_path / "run", verbose=0, batch_size=8,
                ema=True, ema_momentum=MOMENTUM, warmup_epochs=0, lr=1e-2, callbacks=[record],
                overrides={"model": {"depths": [1, 1, 1, 1]}})
    train("cifar10", "resnet18", epochs=1, **args)
    result = train("cifar10", "resnet18", epochs=2, **args)  # resumes from last.keras
    assert len(record.steps) == 2 * 3 and int(result.model.optimizer.iterations) == 6

    last = keras.models.load_model(tmp_path / "run/checkpoints/last.keras")
    optimizer = last.optimizer
    assert optimizer.average_buffers(last) == len(model_buffers(last)) == 2 * 12  # 12 BatchNorms
    averages = _np(optimizer.buffer_averages)
    for got, want in zip(averages, _hand_ema(record.steps, MOMENTUM)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    raw = _np(model_buffers(last))  # the checkpoint's model holds the raw weights and statistics
    assert max(np.abs(a - r).max() for a, r in zip(averages, raw)) > 1e-2

    # EMA weights + EMA statistics reproduce the logged EMA validation; EMA weights + raw statistics
    # (what Keras' EMA alone would validate) do not.
    for variable, average in zip(optimizer._trainable_variables, optimizer._model_variables_moving_average):
        variable.assign(average)
    mixed = last.evaluate(cifar_bundle.validation, verbose=0, return_dict=True)["loss"]
    for variable, average in zip(model_buffers(last), averages):
        variable.assign(average)
    consistent = last.evaluate(cifar_bundle.validation, verbose=0, return_dict=True)["loss"]
    logged = result.history[-1]["val_ema_loss"]
    print("EMA validation loss: logged", logged, "EMA stats", consistent, "raw stats", mixed)
    assert consistent == pytest.approx(logged, rel=1e-5)
    assert abs(mixed - logged) > 1e-3

    state = json.loads((tmp_path / "run/state.json").read_text())
    if state["best_weights"] == "ema":  # best.keras then holds EMA weights *and* EMA statistics
        best = keras.models.load_model(tmp_path / "run/checkpoints/best.keras")
        assert best.evaluate(cifar_bundle.validation, verbose=0, return_dict=True)["accuracy"] == \
            pytest.approx(state["best_accuracy"])


def test_swapping_ema_moves_weights_and_statistics_together():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.BatchNormalization()(keras.layers.Conv2D(8, 3, strides=2)(inputs))
    x = keras.layers.BatchNormalization()(keras.layers.Conv2D(8, 3, strides=2)(keras.layers.ReLU()(x)))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    model.compile(optimizer=RecipeAdamW(learning_rate=1e-2, use_ema=True, ema_momentum=0.5),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True), jit_compile=False)
    x = np.random.RandomState(0).uniform(0, 255, (8, 16, 16, 3)).astype("float32")
    y = np.eye(2, dtype="float32")[[0, 1] * 4]
    model.train_on_batch(x, y)  # builds the optimizer
    assert model.optimizer.average_buffers(model) == len(model_buffers(model))
    for scale in (0.5, 1.5, 1.0):
        model.train_on_batch(x * scale, y)
    raw_w, raw_s = _np(model.trainable_variables), _np(model_buffers(model))
    assert len(raw_s) == 4
    ema_w = _np(model.optimizer._model_variables_moving_average)
    ema_s = _np(model.optimizer.buffer_averages)
    _swap_ema(model)
    for got, want in zip(_np(model.trainable_variables) + _np(model_buffers(model)), ema_w + ema_s):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)  # (swapped by adds and subtracts)
    _swap_ema(model)
    for got, want in zip(_np(model.trainable_variables) + _np(model_buffers(model)), raw_w + raw_s):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_layer_decay_scales_weight_decay_with_the_per_layer_lr():
    """torch AdamW with the official parameter groups: p -= lr * scale * wd * p. A zero gradient
    makes Adam's own step exactly zero, so after one step only the decoupled decay has acted."""
    model = kconvnext.create_model("convnext_atto", input_shape=(32, 32, 3), num_classes=3, small_input=True,
                                   depths=(1, 1, 4, 1), dims=(8, 16, 32, 64))
    lr, wd, decay = 0.5, 0.05, 0.7
    scales = layer_decay_scales(model, "convnext_atto", decay)
    optimizer = RecipeAdamW(learning_rate=lr, weight_decay=wd, lr_scales=scales)
    variables = model.trainable_variables
    before = {v.path: keras.ops.convert_to_numpy(v).copy() for v in variables}
    optimizer.apply([keras.ops.zeros_like(v) for v in variables], variables)
    checked = set()
    for v in variables:
        layer, name = v.path.split("/")[0], v.name
        factor = 1.0 if name in ("bias", "gamma", "beta") else 1 - lr * scales[layer] * wd
        np.testing.assert_allclose(keras.ops.convert_to_numpy(v), before[v.path] * factor, rtol=1e-6,
                                   err_msg=v.path)
        checked.add((layer, factor != 1.0))
    assert ("stem", True) in checked and ("head_fc", True) in checked
    # The stem decays decay**depth as fast as the head, as its lr does (relative to the reference).
    head_depth = round(np.log(scales["stem"]) / np.log(decay))
    stem_kernel = keras.ops.convert_to_numpy(model.get_layer("stem").conv.kernel)
    shrink = 1 - stem_kernel / before["stem/conv/kernel"]
    np.testing.assert_allclose(shrink, lr * wd * decay ** head_depth, rtol=1e-4)
