"""Model zoo: exact parameter counts, shapes, options, registry errors, serialization."""
import keras
import numpy as np
import pytest

import kconvnext
from kconvnext.commands.models import measure, stored_sizes

# Published / timm parameter counts at 1000 classes (BatchNorm running stats excluded).
REFERENCE_PARAMS = {
    "convnext_t": 28_589_128,
    "convnext_s": 50_223_688,
    "convnext_b": 88_591_464,
    "convnext_l": 197_767_336,
    "convnext_xl": 350_196_968,
    "resnet50": 25_557_032,
    "resnext50_32x4d": 25_028_904,
    "resnet18": 11_689_512,
}


STORED = stored_sizes()


def test_every_registered_model_has_a_stored_size():
    """`cli.py models` lists model_sizes.json; a new variant needs its row (tools/make_model_sizes.py)."""
    assert sorted(STORED) == sorted(kconvnext.list_models())


def peak_memory_growth_mb(fn):
    """fn() and how far this process's peak resident memory rose above where it stood (Linux: the
    peak is reset through /proc/self/clear_refs); None where that cannot be read."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # the peak (VmHWM) restarts from the current resident size (VmRSS)
    except OSError:
        return fn(), None

    def status(key):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(key)) / 1024

    start = status("VmRSS:")
    result = fn()
    return result, status("VmHWM:") - start


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(STORED))
def test_stored_sizes_match_a_fresh_build_and_the_references(name):
    row, grown_mb = peak_memory_growth_mb(lambda: measure(name))
    assert row == STORED[name], "model_sizes.json is stale: run python tools/make_model_sizes.py"
    if name in REFERENCE_PARAMS:  # torchvision's / the official ConvNeXt's counts
        assert row["params"] == REFERENCE_PARAMS[name]
    # Counted from the architecture alone: no weight is allocated (convnext_xl's are 1.4 GB) and
    # nothing is computed (a 224-px forward pass of convnext_xl is 61 G multiply-adds).
    if grown_mb is not None:
        assert grown_mb < 64, f"measuring {name} raised peak memory by {grown_mb:.0f} MB"


def test_measuring_computes_no_initial_values_and_collects_no_garbage(monkeypatch):
    """measure() traces the model on shapes only: no initializer runs (each one's random ops were
    graph-built at every variable read: a quarter of measuring's time) and no full garbage collection
    (Keras' clear_session(free_memory=True): another sixth, longer in a process holding many objects)."""
    import gc

    calls = []
    for cls in {c for c in vars(keras.initializers).values()
                if isinstance(c, type) and issubclass(c, keras.initializers.Initializer)}:
        original = cls.__call__
        monkeypatch.setattr(cls, "__call__", lambda self, *a, _original=original, **k: (
            calls.append(type(self).__name__), _original(self, *a, **k))[1])
    collections = []
    record = lambda phase, info: collections.append(info["generation"]) if phase == "start" else None  # noqa: E731
    gc.disable()
    gc.callbacks.append(record)
    try:
        row = measure("convnext_atto")
    finally:
        gc.callbacks.remove(record)
        gc.enable()
    assert row == STORED["convnext_atto"]
    assert calls == [], f"initializers ran while measuring: {sorted(set(calls))}"
    assert 2 not in collections, "measuring ran a full garbage collection"


def test_gflops_match_published_figures():
    # Papers: ConvNeXt-T 4.5, ResNet-50 4.1 (multiply-adds, 224 px). The stored rows are
    # flops.count_macs of fresh builds (checked above).
    assert STORED["convnext_t"]["gflops"] == pytest.approx(4.47, abs=0.03)
    assert STORED["resnet50"]["gflops"] == pytest.approx(4.11, abs=0.03)


def test_every_variant_is_registered_and_has_a_direct_function():
    expected = {
        "convnext_atto", "convnext_femto", "convnext_pico", "convnext_nano", "convnext_t",
        "convnext_s", "convnext_b", "convnext_l", "convnext_xl", "resnet18", "resnet34",
        "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
        "resnext101_64x4d",
    }
    expected |= set(kconvnext.roadmap.models.STEP_NAMES)  # tests/test_roadmap.py
    assert set(kconvnext.list_models()) == expected
    for name in expected:
        assert callable(getattr(kconvnext, name))


def test_unknown_model_suggests_close_match():
    with pytest.raises(ValueError, match=r"convnext_tiny"):  # (timm's name, an alias of convnext_t)
        kconvnext.create_model("convnext_tinny")


@pytest.mark.parametrize("name,stage1", [("convnext_atto", 16), ("resnet18", 32)])
def test_small_input_option_keeps_resolution_for_cifar(name, stage1):
    model = kconvnext.create_model(name, input_shape=(32, 32, 3), num_classes=10, small_input=True)
    first = model.get_layer("stem" if name.startswith("convnext") else "layer1_0")
    assert first.output.shape[1] == stage1
    out = model(np.random.uniform(0, 255, (2, 32, 32, 3)).astype("float32"))
    assert out.shape == (2, 10)


def test_include_top_false_returns_features_and_pooled_features():
    fmap = kconvnext.convnext_atto(include_top=False, pooling=None, input_shape=(64, 64, 3))
    assert fmap.output.shape[1:] == (2, 2, 320)
    pooled = kconvnext.resnet18(include_top=False, pooling="avg", input_shape=(64, 64, 3))
    assert pooled.output.shape[1:] == (512,)


@pytest.mark.slow
def test_model_is_a_plain_fittable_keras_model():
    # One block a stage: the first fit traces every layer and the optimizer's update of every
    # variable (26 s for atto's 2-2-6-2 blocks, 9 s for 1-1-1-1); every kind of layer is still there.
    model = kconvnext.convnext_atto(num_classes=3, input_shape=(32, 32, 3), small_input=True,
                                    drop_path_rate=0.1, depths=(1, 1, 1, 1))
    assert isinstance(model, keras.Model)  # a plain functional model, no subclass
    model.compile(optimizer=keras.optimizers.AdamW(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    y = np.arange(8) % 3
    history = model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["convnext_atto", "resnet18", "resnext50_32x4d"])
def test_keras_file_round_trip_without_custom_objects(tmp_path, name):
    # One block a stage: every kind of layer (and its config) is still saved and restored.
    model = kconvnext.create_model(name, num_classes=5, input_shape=(64, 64, 3), drop_path_rate=0.1,
                                   depths=(1, 1, 1, 1))
    x = np.random.uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    # Make BatchNorm statistics non-trivial so the round trip checks them too.
    model(x, training=True)
    expected = model.predict(x, verbose=0)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    keras.backend.clear_session()
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(restored.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)


def test_grouped_conv_implementations_are_numerically_identical():
    from kconvnext.layers import GroupedConv2D

    x = np.random.rand(2, 9, 9, 64).astype("float32")
    native = GroupedConv2D(64, 3, strides=2, groups=32, implementation="native")
    split = GroupedConv2D(64, 3, strides=2, groups=32, implementation="split")
    native.build(x.shape)
    split.build(x.shape)
    split.kernel.assign(native.kernel)
    np.testing.assert_allclose(split(x), native(x), atol=1e-6)
    conv = keras.layers.Conv2D(64, 3, strides=2, groups=32, use_bias=False)
    conv.build(x.shape)
    conv.kernel.assign(native.kernel)
    np.testing.assert_allclose(native(x), conv(x), atol=1e-6)


def test_drop_path_is_identity_at_inference_and_drops_samples_in_training():
    from kconvnext.layers import DropPath

    layer = DropPath(0.5, seed=1)
    x = np.ones((64, 4, 4, 8), "float32")
    np.testing.assert_array_equal(layer(x, training=False), x)
    y = np.asarray(layer(x, training=True))
    per_sample = y.reshape(64, -1)
    assert set(np.unique(per_sample)) <= {0.0, 2.0}
    assert 0 < (per_sample[:, 0] == 0).sum() < 64


def test_bad_arguments_give_clear_errors():
    with pytest.raises(ValueError, match="input_shape"):
        kconvnext.convnext_atto(input_shape=(32, 32))
    with pytest.raises(ValueError, match="pooling"):
        kconvnext.resnet18(include_top=False, pooling="mean")
    with pytest.raises(ValueError, match="rate"):
        kconvnext.layers.DropPath(1.5)


def test_resnet_widths_scale_every_stage_and_the_stem():
    """A narrower ResNet-18 for CPU budgets: widths (32, 64, 128, 256) give the stem 32 channels and
    each stage half ResNet-18's, about a quarter of its parameters; the default is ResNet-18 itself."""
    narrow = kconvnext.create_model("resnet18", widths=(32, 64, 128, 256), input_shape=(64, 64, 3), num_classes=2)
    full = kconvnext.create_model("resnet18", input_shape=(64, 64, 3), num_classes=2)
    assert narrow.get_layer("conv1").output.shape[-1] == 32 and full.get_layer("conv1").output.shape[-1] == 64
    assert narrow.get_layer("layer4_1").output.shape[-1] == 256
    assert 0.24 < narrow.count_params() / full.count_params() < 0.26
    with pytest.raises(ValueError, match="one width per stage"):
        kconvnext.create_model("resnet18", widths=(32, 64, 128), input_shape=(64, 64, 3))
