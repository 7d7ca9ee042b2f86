"""The models as the references build them: initialisers (timm ConvNeXt, torchvision ResNet), grey
input, include_top=False features, timm's names, and which copy of a checkpoint is read."""
import math

import keras
import numpy as np
import pytest

import kconvnext
from kconvnext.weights.readers import unwrap_state_dict


def _kernels(model, *, skip=()):
    """{weight path: values} of every conv / dense kernel."""
    out = {}
    for w in model.weights:
        if w.path.rsplit("/", 1)[-1] in ("kernel", "depthwise_kernel") and not w.path.startswith(skip):
            out[w.path] = keras.ops.convert_to_numpy(w)
    return out


def test_convnext_kernels_are_normal_with_std_0_02_as_timm():
    """timm's trunc_normal_(std=.02) cuts at +-2 absolute: N(0, 0.02) in effect. Keras' TruncatedNormal
    would cut at +-0.04 and shrink the std to 0.0176."""
    keras.utils.set_random_seed(0)
    model = kconvnext.convnext_atto(input_shape=(32, 32, 3), num_classes=10)  # 3.7M real weights
    kernels = _kernels(model)
    values = np.concatenate([k.ravel() for k in kernels.values()])
    assert values.size > 3_000_000
    assert values.std() == pytest.approx(0.02, rel=0.005)
    assert abs(values.mean()) < 1e-4
    assert np.abs(values).max() > 4 * 0.02  # not cut at 2 std (a normal's max over 3.7M draws is ~5 std)
    assert np.mean(np.abs(values) > 0.04) == pytest.approx(2 * (1 - 0.97725), rel=0.02)  # normal tails
    for path, k in kernels.items():
        if k.size > 20_000:
            assert k.std() == pytest.approx(0.02, rel=0.05), path
    biases = [w for w in model.weights if w.path.endswith("/bias")]
    assert biases and all(not np.any(keras.ops.convert_to_numpy(b)) for b in biases)
    head = kconvnext.convnext_atto(input_shape=(32, 32, 3), num_classes=1000, head_init_scale=0.5)
    assert keras.ops.convert_to_numpy(head.get_layer("head_fc").kernel).std() == pytest.approx(0.01, rel=0.02)


def _fan_out_std(kernel):
    kh, kw, _, out = kernel.shape
    return math.sqrt(2.0 / (out * kh * kw))


@pytest.mark.parametrize("name", ["resnet18", "resnext50_32x4d"])
def test_resnet_convs_are_kaiming_normal_fan_out_as_torchvision(name):
    """kaiming_normal_(mode="fan_out", nonlinearity="relu"), shortcut and grouped convs included;
    BN weight 1 / bias 0; the classifier as torch's nn.Linear default, U(+-1/sqrt(fan_in))."""
    keras.utils.set_random_seed(0)
    depths = (2, 2, 2, 2) if name == "resnet18" else (1, 1, 1, 1)
    model = kconvnext.create_model(name, input_shape=(32, 32, 3), num_classes=1000, depths=depths)
    kernels = _kernels(model, skip=("head_fc",))
    assert any("downsample_conv" in p for p in kernels)
    if name.startswith("resnext"):
        assert kernels["layer1_0/conv2/kernel"].shape[2] * 32 == kernels["layer1_0/conv2/kernel"].shape[3]
    for path, k in kernels.items():
        # The sample std of n normal draws is within 4 / sqrt(2n) of the true one (4 sigma).
        tolerance = 4 / math.sqrt(2 * k.size)
        assert k.std() == pytest.approx(_fan_out_std(k), rel=max(tolerance, 0.01)), path
        if k.size > 100_000:
            assert np.abs(k).max() > 4 * k.std(), f"{path} looks truncated"
    fc = keras.ops.convert_to_numpy(model.get_layer("head_fc").kernel)
    bound = 1 / math.sqrt(fc.shape[0])
    assert np.abs(fc).max() <= bound and np.abs(fc).max() > 0.99 * bound
    assert fc.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)
    bn = model.get_layer("bn1")
    assert np.all(keras.ops.convert_to_numpy(bn.gamma) == 1) and not np.any(keras.ops.convert_to_numpy(bn.beta))


def test_grouped_conv_initialiser_survives_a_keras_round_trip(tmp_path):
    model = kconvnext.create_model("resnext50_32x4d", input_shape=(32, 32, 3), num_classes=2,
                                   depths=(1, 1, 1, 1), small_input=True)
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    conv = again.get_layer("layer1_0").conv2[-1]
    init = conv.kernel_initializer
    assert isinstance(init, keras.initializers.VarianceScaling)
    assert (init.mode, init.distribution, init.scale) == ("fan_out", "untruncated_normal", 2.0)


@pytest.mark.parametrize("name", ["convnext_atto", "resnet18"])
def test_include_top_false_defaults_to_the_feature_map(name):
    """As keras.applications: include_top=False without pooling gives the 4-D feature map."""
    model = kconvnext.create_model(name, input_shape=(64, 64, 3), include_top=False)
    assert len(model.output.shape) == 4 and model.output.shape[1:3] == (2, 2)
    pooled = kconvnext.create_model(name, input_shape=(64, 64, 3), include_top=False, pooling="avg")
    assert len(pooled.output.shape) == 2


def test_grey_one_channel_images(cifar10_dir):
    """1-channel input normalises with the average ImageNet mean/std (0.449 / 0.226) and runs."""
    from kconvnext.data.sources.cifar10 import read_batch

    images, _ = read_batch(cifar10_dir / "test_batch")
    grey = images[:4].astype("float32").mean(axis=-1, keepdims=True)  # real photos, made grey
    for name, small in (("convnext_atto", {"dims": (8, 16, 32, 64)}), ("resnet18", {})):
        model = kconvnext.create_model(name, input_shape=(32, 32, 1), num_classes=10, small_input=True,
                                       depths=(1, 1, 1, 1), **small)
        norm = model.get_layer("normalization")
        for pixel, expected in ((255 * 0.449, 0.0), (255 * (0.449 + 0.226), 1.0)):
            out = keras.ops.convert_to_numpy(norm(np.full((1, 2, 2, 1), pixel, "float32")))
            np.testing.assert_allclose(out, expected, atol=1e-3)
        normalised = keras.ops.convert_to_numpy(norm(grey))
        assert abs(normalised.mean()) < 1.0 and 0.5 < normalised.std() < 2.0
        logits = keras.ops.convert_to_numpy(model(grey, training=False))
        assert logits.shape == (4, 10) and np.all(np.isfinite(logits))


def test_grey_input_with_a_three_channel_normalization_is_refused_clearly():
    with pytest.raises(ValueError, match=r"1 value\(s\) each for 1-channel images"):
        kconvnext.create_model("resnet18", input_shape=(32, 32, 1),
                               normalization=((0.5, 0.5, 0.5), (0.2, 0.2, 0.2)))


def test_timm_names_are_aliases(tmp_path):
    assert kconvnext.get_spec("convnext_tiny").name == "convnext_t"
    assert kconvnext.get_spec("convnext_xlarge").name == "convnext_xl"
    assert "convnext_tiny" not in kconvnext.list_models() and callable(kconvnext.convnext_tiny)
    assert {"convnext_tiny", "convnext_small", "convnext_base", "convnext_large"} <= set(
        kconvnext.list_models(include_aliases=True))
    assert "convnext_tiny" in kconvnext.list_models("convnext", include_aliases=True)
    assert "convnext_tiny" not in kconvnext.list_models("resnet", include_aliases=True)
    model = kconvnext.create_model("convnext_tiny", input_shape=(32, 32, 3), num_classes=3,
                                   depths=(1, 1, 1, 1), dims=(8, 16, 32, 64))
    model.save(tmp_path / "alias.keras")
    again = keras.models.load_model(tmp_path / "alias.keras")
    x = np.random.RandomState(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again(x)), keras.ops.convert_to_numpy(model(x)), atol=1e-5)


def test_checkpoint_with_raw_and_ema_weights_reads_the_ema_copy():
    raw, ema = np.zeros(2, "float32"), np.ones(2, "float32")
    official = unwrap_state_dict({"model": {"w": raw}, "model_ema": {"w": ema}, "epoch": 299})
    assert official["w"] is ema and official.wrapper == "model_ema" and official.alternatives == ("model",)
    timm = unwrap_state_dict({"state_dict": {"module.w": raw}, "state_dict_ema": {"module.w": ema}})
    assert timm["w"] is ema and timm.wrapper == "state_dict_ema"
    plain = unwrap_state_dict({"model": {"w": raw}, "optimizer": {}})
    assert plain["w"] is raw and plain.wrapper == "model" and plain.alternatives == ()
