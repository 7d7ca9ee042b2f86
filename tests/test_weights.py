"""Weight import: numerical parity with timm, head dropping, clear errors, torch-free readers.

The fixtures in tests/fixtures/parity/ are made by tools/make_parity_fixtures.py (torch + timm,
random weights); these tests need neither torch nor network.
"""
import importlib.util
import json
import os
import pickle
import struct
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from safetensors.numpy import save_file

import kconvnext
from kconvnext.models import build_convnext, build_resnet
from kconvnext.weights import (
    CheckpointError,
    UnsupportedPickleError,
    WeightsMismatchError,
    detect_source,
    load_torch_zip,
    load_weights,
    read_checkpoint,
)
from kconvnext.weights.readers import unwrap_state_dict
from kconvnext.weights.torch_zip import Opaque

FIXTURES = Path(__file__).parent / "fixtures" / "parity"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
TOLERANCE = 1e-4


def build(name, **overrides):
    """The kconvnext model matching a fixture (normalization=None: inputs are pre-normalised)."""
    spec = MANIFEST[name]
    kw = dict(spec["build"])
    family = kw.pop("family")
    kw.update(input_shape=tuple(spec["input_shape"]), normalization=None)
    kw.update(overrides)
    if family == "convnext":
        return build_convnext(kw.pop("depths"), kw.pop("dims"), **kw)
    return build_resnet(kw.pop("block"), kw.pop("depths"), **kw)


_BUILT = {}


def built(name, **overrides):
    """A shared model, for tests whose load must fail (and so leave the model untouched)."""
    key = (name, tuple(sorted((k, repr(v)) for k, v in overrides.items())))
    if key not in _BUILT:
        _BUILT[key] = build(name, **overrides)
    return _BUILT[key]


def weights_file(name):
    return FIXTURES / MANIFEST[name]["weights"]


def reference(name):
    data = np.load(FIXTURES / f"{name}.npz")
    return data["input"].astype("float32"), data["logits"]


def logits(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def snapshot(model):
    return {w.path: keras.ops.convert_to_numpy(w).copy() for w in model.weights}


def test_fixtures_are_small():
    assert sum(p.stat().st_size for p in FIXTURES.iterdir()) < 3_500_000


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_parity_with_timm(name):
    model = build(name)
    report = load_weights(model, weights_file(name), source=MANIFEST[name]["source"])
    assert report.head_loaded and not report.kept_fresh and not report.skipped
    assert sorted(report.loaded) == sorted(w.path for w in model.weights)
    x, expected = reference(name)
    np.testing.assert_allclose(logits(model, x), expected, rtol=0, atol=TOLERANCE)


def test_resnext_parity_with_native_grouped_conv():
    model = build("resnext_32x4d", grouped_conv_implementation="native")
    load_weights(model, weights_file("resnext_32x4d"))
    x, expected = reference("resnext_32x4d")
    np.testing.assert_allclose(logits(model, x), expected, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("name, source", [
    ("convnext_timm", "convnext_timm"),
    ("convnext_timm_conv_mlp", "convnext_timm"),
    ("convnext_official", "convnext_official"),
    ("resnet_basic", "resnet"),
    ("resnext_32x4d", "resnet"),
])
def test_source_is_detected_from_keys(name, source):
    assert detect_source(read_checkpoint(weights_file(name))) == source


def test_create_model_loads_weights():
    spec = MANIFEST["convnext_timm"]
    model = kconvnext.create_model(
        "convnext_atto", weights=weights_file("convnext_timm"), normalization=None,
        input_shape=tuple(spec["input_shape"]),
        **{k: v for k, v in spec["build"].items() if k != "family"},
    )
    x, expected = reference("convnext_timm")
    np.testing.assert_allclose(logits(model, x), expected, rtol=0, atol=TOLERANCE)


def test_different_head_size_keeps_fresh_head_and_loads_backbone(caplog):
    reference_model = build("convnext_timm")
    load_weights(reference_model, weights_file("convnext_timm"))
    model = build("convnext_timm", num_classes=2)
    fresh_head = keras.ops.convert_to_numpy(model.get_layer("head_fc").kernel).copy()
    with caplog.at_level("INFO", logger="kconvnext.weights"):
        report = load_weights(model, weights_file("convnext_timm"))
    assert not report.head_loaded
    assert sorted(report.kept_fresh) == ["head_fc/bias", "head_fc/kernel"]
    assert {k for k, _ in report.skipped} == {"head.fc.weight", "head.fc.bias"}
    assert "Kept the model's freshly initialised classifier" in str(report)
    assert "(64, 7)" in str(report) and "(64, 2)" in str(report)
    assert "head_fc" in caplog.text
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.get_layer("head_fc").kernel), fresh_head)
    expected, got = snapshot(reference_model), snapshot(model)
    for path in got:
        if not path.startswith("head_fc/"):
            np.testing.assert_array_equal(got[path], expected[path], err_msg=path)


def test_different_head_size_via_create_model_for_fine_tuning():
    spec = MANIFEST["resnet_basic"]["build"]
    model = kconvnext.create_model(
        "resnet18", weights=weights_file("resnet_basic"), depths=spec["depths"], num_classes=2,
        input_shape=(32, 32, 3),
    )
    assert model.output_shape == (None, 2)


def test_different_head_size_is_an_error_when_asked():
    model = build("resnet_basic", num_classes=1000)
    with pytest.raises(WeightsMismatchError, match=r"classifier head does not fit.*fc\.weight"):
        load_weights(model, weights_file("resnet_basic"), skip_mismatched_head=False)


@pytest.mark.parametrize("pooling, skipped", [
    ("avg", {"head.fc.weight", "head.fc.bias"}),
    (None, {"head.fc.weight", "head.fc.bias", "head.norm.weight", "head.norm.bias"}),
])
def test_headless_model_loads_backbone(pooling, skipped):
    model = build("convnext_timm", include_top=False, pooling=pooling)
    report = load_weights(model, weights_file("convnext_timm"))
    assert {k for k, _ in report.skipped} == skipped
    assert len(report.loaded) == len(model.weights)


def test_official_checkpoint_into_headless_model():
    model = build("convnext_official", include_top=False, pooling="avg")
    report = load_weights(model, weights_file("convnext_official"))
    assert {k for k, _ in report.skipped} == {"head.weight", "head.bias"}


# ---- clear errors, and nothing is assigned when loading fails ----

def _assert_untouched_after(model, error, match, path, **kw):
    before = snapshot(model)
    with pytest.raises(error, match=match):
        load_weights(model, path, **kw)
    after = snapshot(model)
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])


def test_wrong_architecture():
    model = built("convnext_timm")
    _assert_untouched_after(model, WeightsMismatchError, r"ResNet.*is a convnext.*wrong architecture",
                            weights_file("resnet_basic"))


def test_wrong_family_when_source_is_forced():
    model = built("resnet_basic")
    with pytest.raises(WeightsMismatchError, match="wrong architecture"):
        load_weights(model, weights_file("resnet_basic"), source="convnext_timm")


def test_shape_mismatch_names_key_and_layer():
    model = built("convnext_timm", dims=[16, 32, 48, 80])
    _assert_untouched_after(
        model, WeightsMismatchError,
        r"'stages\.3\.downsample\.1\.weight' -> model weight 'stages_3_downsample/conv/kernel'.*"
        r"\(2, 2, 48, 64\).*\(2, 2, 48, 80\)",
        weights_file("convnext_timm"),
    )


def test_resnext_groups_mismatch():
    model = built("resnext_32x4d", groups=1, base_width=128)  # same widths, dense 3x3
    with pytest.raises(WeightsMismatchError, match=r"layer1\.0\.conv2\.weight.*layer1_0/conv2/kernel"):
        load_weights(model, weights_file("resnext_32x4d"))


def test_block_type_mismatch():
    model = built("resnet_basic", block="bottleneck")
    with pytest.raises(WeightsMismatchError, match=r"layer1_0"):
        load_weights(model, weights_file("resnet_basic"))


def test_missing_backbone_weight():
    model = built("convnext_timm", depths=[1, 1, 3, 1])
    with pytest.raises(WeightsMismatchError, match=r"'stages_2_blocks_2/.*no checkpoint key"):
        load_weights(model, weights_file("convnext_timm"))


def test_unexpected_backbone_key():
    model = built("convnext_timm", depths=[1, 1, 1, 1])
    with pytest.raises(WeightsMismatchError, match=r"'stages\.2\.blocks\.1\..*unexpected key"):
        load_weights(model, weights_file("convnext_timm"))


def test_layer_scale_mismatch():
    model = built("convnext_official", layer_scale_init=None)
    with pytest.raises(WeightsMismatchError, match=r"stages\.0\.0\.gamma"):
        load_weights(model, weights_file("convnext_official"))


def test_unknown_keys_are_named(tmp_path):
    state = read_checkpoint(weights_file("convnext_timm"))
    state["stages.0.blocks.0.mlp.grn.weight"] = np.ones(64, "float32")  # ConvNeXt V2
    path = tmp_path / "v2.safetensors"
    save_file(state, str(path))
    with pytest.raises(WeightsMismatchError, match=r"mlp\.grn\.weight"):
        load_weights(built("convnext_timm"), path)


def test_unrecognised_layout(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"encoder.layers.0.weight": np.ones((2, 2), "float32")}, str(path))
    with pytest.raises(ValueError, match=r"Unrecognised checkpoint layout.*encoder\.layers\.0\.weight"):
        load_weights(built("convnext_official"), path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        load_weights(built("convnext_official"), tmp_path / "nope.safetensors")


@pytest.mark.parametrize("filename, content", [
    ("notes.pth", b"hello, I am not a checkpoint"),
    ("broken.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all"),
    ("empty.pth", b""),
])
def test_not_a_checkpoint(tmp_path, filename, content):
    path = tmp_path / filename
    path.write_bytes(content)
    with pytest.raises(CheckpointError):
        read_checkpoint(path)


def test_zip_that_is_not_a_torch_checkpoint(tmp_path):
    path = tmp_path / "archive.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "no pickle here")
    with pytest.raises(CheckpointError, match="data.pkl"):
        read_checkpoint(path)


def test_unknown_source_name():
    with pytest.raises(ValueError, match="Unknown weights source"):
        load_weights(built("convnext_official"), weights_file("convnext_official"), source="keras")


# ---- readers ----

def test_torch_free_pth_reader_dtypes_strides_and_shared_storage():
    obj = load_torch_zip(FIXTURES / "reader_dtypes.pth")
    assert obj["meta"] == {"note": "reader fixture"}
    sd = obj["state_dict"]
    base = np.arange(24, dtype=np.float32).reshape(4, 6) / 8
    np.testing.assert_array_equal(sd["f32"], base)
    np.testing.assert_array_equal(sd["transposed"], base.T)
    np.testing.assert_array_equal(sd["offset_view"], base[1:3, 2:5])
    assert sd["f16"].dtype == np.float16 and sd["f64"].dtype == np.float64
    np.testing.assert_array_equal(sd["f16"], base.astype(np.float16))
    np.testing.assert_array_equal(sd["bf16"], base)  # exact in bfloat16; widened to float32
    np.testing.assert_array_equal(sd["i64"], np.arange(5))
    assert sd["i64"].dtype == np.int64 and sd["u8"].dtype == np.uint8
    np.testing.assert_array_equal(sd["bool"], [True, False, True])
    assert sd["scalar"].shape == () and float(sd["scalar"]) == 3.5
    assert set(read_checkpoint(FIXTURES / "reader_dtypes.pth")) == set(sd)  # {"state_dict": ...} unwrapped


def test_official_pth_wrapper_and_training_leftovers():
    obj = load_torch_zip(weights_file("convnext_official"))
    assert obj["epoch"] == 299
    assert isinstance(obj["args"], Opaque)  # argparse.Namespace: not executed, just inert
    state = read_checkpoint(weights_file("convnext_official"))
    assert state["downsample_layers.0.0.weight"].shape == (8, 3, 4, 4)
    assert state["stages.1.0.pwconv1.weight"].shape == (64, 16)


def _zip_with_pickle(path, payload):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/version", "3\n")


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch should-not-exist",))


def test_pth_reader_never_runs_pickled_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    _zip_with_pickle(path, pickle.dumps({"model": {"w": _Evil()}}, protocol=2))
    with pytest.raises(CheckpointError, match="no tensors"):
        read_checkpoint(path)
    assert not (tmp_path / "should-not-exist").exists()


def test_pth_reader_rejects_unknown_torch_globals(tmp_path):
    path = tmp_path / "odd.pth"
    _zip_with_pickle(path, b"\x80\x02ctorch\nload\nq\x00.")
    with pytest.raises(UnsupportedPickleError, match="torch.load"):
        load_torch_zip(path)
    if importlib.util.find_spec("torch") is None:
        with pytest.raises(CheckpointError, match="without torch"):
            read_checkpoint(path)


def test_bfloat16_safetensors(tmp_path):
    values = np.array([[1.0, -2.5], [0.15625, 3.0]], np.float32)
    raw = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    header = json.dumps({"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, len(raw)]}}).encode()
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + raw)
    np.testing.assert_array_equal(read_checkpoint(path)["w"], values)


def test_float16_weights_are_widened_to_model_dtype():
    state = read_checkpoint(weights_file("resnet_basic"))
    assert state["conv1.weight"].dtype == np.float16
    model = build("resnet_basic")
    load_weights(model, weights_file("resnet_basic"))
    assert all(w.dtype == "float32" for w in model.weights)


def test_unwrap_state_dict_variants():
    w = np.zeros(2, "float32")
    assert list(unwrap_state_dict({"state_dict": {"module.a": w}})) == ["a"]
    assert list(unwrap_state_dict({"model_ema": {"a": w}, "epoch": 3})) == ["a"]
    assert list(unwrap_state_dict({"model": {"a": w}, "optimizer": {"state": {}}})) == ["a"]
    with pytest.raises(CheckpointError, match="no tensors"):
        unwrap_state_dict({"epoch": 3})


def test_safetensors_and_pth_loading_need_no_torch():
    had_torch = "torch" in sys.modules
    load_weights(build("convnext_official"), weights_file("convnext_official"))  # .pth
    load_weights(build("resnet_bottleneck"), weights_file("resnet_bottleneck"))  # .safetensors
    if not had_torch:
        assert "torch" not in sys.modules
    if importlib.util.find_spec("torch") is None:  # the main dev venv and CI: no torch at all
        with pytest.raises(ImportError):
            import torch  # noqa: F401


def test_a_21k_head_into_the_default_1000_class_model_is_an_error(tmp_path):
    """A checkpoint whose classifier has 21,841 classes, loaded into a model with the default 1000,
    used to get a random head and an INFO log; an explicitly different head (fine-tuning) still
    keeps its fresh initialisation."""
    from safetensors.numpy import load_file

    state = load_file(str(weights_file("convnext_timm")))
    width = state["head.fc.weight"].shape[1]
    state["head.fc.weight"] = np.zeros((21841, width), "float32")
    state["head.fc.bias"] = np.zeros((21841,), "float32")
    path = tmp_path / "in22k.safetensors"
    save_file(state, str(path))
    model = build("convnext_timm", num_classes=1000)
    before = snapshot(model)
    with pytest.raises(WeightsMismatchError, match=r"21841 classes.*1000.*num_classes=21841"):
        load_weights(model, path)
    assert all(np.array_equal(v, before[k]) for k, v in snapshot(model).items())
    report = load_weights(build("convnext_timm", num_classes=2), path)
    assert not report.head_loaded
    assert load_weights(build("convnext_timm", num_classes=21841), path).head_loaded


def test_one_variable_moves_every_cache(monkeypatch, tmp_path):
    """Weights, converted weights and data scans all live under $KCONVNEXT_CACHE_DIR (there were two
    variables, KCONVNEXT_WEIGHTS_DIR and KCONVNEXT_CACHE_DIR, with two defaults); the old one warns."""
    from kconvnext.files import cache_dir
    from kconvnext.weights.download import weights_dir

    monkeypatch.delenv("KCONVNEXT_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("KCONVNEXT_CACHE_DIR", str(tmp_path))
    assert weights_dir() == tmp_path / "weights" and cache_dir("scan") == tmp_path / "scan"
    monkeypatch.delenv("KCONVNEXT_CACHE_DIR")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert weights_dir() == tmp_path / "keras" / "kconvnext" / "weights"
    monkeypatch.setenv("KCONVNEXT_WEIGHTS_DIR", str(tmp_path / "old"))
    with pytest.warns(UserWarning, match="KCONVNEXT_CACHE_DIR"):
        assert weights_dir() == tmp_path / "keras" / "kconvnext" / "weights"
