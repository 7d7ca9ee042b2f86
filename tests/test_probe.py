"""Linear probe on real cats-vs-dogs images, from a preset served over file:// (no network):
the backbone runs once per image, stays unchanged, the head learns, and the saved model is
exactly backbone features -> trained head. Plus the main job's offline error."""
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

import kconvnext
from kconvnext.commands import main
from kconvnext.data.loader import select_splits
from kconvnext.data.pipeline import validation_dataset
from kconvnext.preprocessing import EvalTransform
from kconvnext.training import probe
from kconvnext.training.evaluate import evaluate
from kconvnext.weights import WeightsUnavailableError, register_preset
from kconvnext.weights.presets import unregister_preset
from training_helpers import count_model_saves

FIXTURES = Path(__file__).parent / "fixtures" / "parity"
ARCH = {"depths": [1, 1, 2, 1], "dims": [16, 32, 48, 64]}  # the timm parity fixture's ConvNeXt
PUBLISHED = EvalTransform(224, crop_pct=0.95, interpolation="bicubic")  # the preset's eval transform
PROBE = dict(image_size=64, limit=24, batch_size=16, epochs=40, warmup_epochs=0, lr=1e-2, model=ARCH,
             pretrained="probe-test")


@pytest.fixture
def preset(tmp_path, monkeypatch):
    monkeypatch.setenv("KCONVNEXT_CACHE_DIR", str(tmp_path))  # weights in tmp_path/weights
    mirror = tmp_path / "store" / "convnext_timm.safetensors"
    mirror.parent.mkdir()
    shutil.copy(FIXTURES / "convnext_timm.safetensors", mirror)
    register_preset("convnext_atto", "probe-test", mirror.as_uri(), source="convnext_timm", num_classes=7,
                    transform=PUBLISHED.to_dict())
    yield
    unregister_preset("convnext_atto", "probe-test")


@pytest.fixture
def backbone_calls(monkeypatch):
    seen = []
    real = probe.backbone_features

    def counting(extractor, images):
        seen.append(int(images.shape[0]))
        return real(extractor, images)

    monkeypatch.setattr(probe, "backbone_features", counting)
    return seen


@pytest.mark.slow
def test_probe_runs_backbone_once_per_image_and_saves_features_to_head(
        preset, backbone_calls, catsdogs_dir, tmp_path, monkeypatch):
    run = tmp_path / "run"
    saves = count_model_saves(monkeypatch, probe)
    result = kconvnext.train("catsdogs", "convnext_atto", data_dir=str(catsdogs_dir), output=run,
                             verbose=0, overrides=PROBE)
    assert sum(backbone_calls) == 24 + 24  # every train and validation image, once
    # best.keras (no selection: the last epoch) is last.keras's file, not a second save or a copy (107 MB at ConvNeXt-T)
    assert saves == ["last.keras"]
    assert (run / "checkpoints" / "best.keras").samefile(run / "checkpoints" / "last.keras")
    history = result.history
    assert len(history) == 40 and history[-1]["loss"] < history[0]["loss"]

    saved = keras.models.load_model(run / "checkpoints" / "best.keras")
    pretrained = kconvnext.create_model("convnext_atto", num_classes=2, input_shape=(64, 64, 3),
                                        weights="probe-test", depths=(1, 1, 2, 1), dims=(16, 32, 48, 64))
    for w_saved, w_pre in zip(saved.weights, pretrained.weights):
        assert w_saved.path == w_pre.path
        if not w_saved.path.startswith("head_fc/"):  # the backbone is frozen: bit-identical
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(w_saved), keras.ops.convert_to_numpy(w_pre))
    head_kernel = keras.ops.convert_to_numpy(saved.get_layer("head_fc").kernel)
    assert not np.allclose(head_kernel, keras.ops.convert_to_numpy(pretrained.get_layer("head_fc").kernel))

    # The saved model is features -> trained head: same logits as the cached features through the
    # head, the images preprocessed with the preset's published transform (at the probe's 64 px).
    cache = np.load(next((run / "features").glob("*.npz")))
    splits = select_splits("catsdogs", data_dir=str(catsdogs_dir), image_size=64, limit=24)
    validation = validation_dataset(
        splits.validation, num_classes=2, image_size=64, batch_size=8, config=kconvnext.data.AugmentConfig.none(),
        transform=PUBLISHED)
    images, _ = next(iter(validation))
    want = cache["val_x"][:8] @ head_kernel + keras.ops.convert_to_numpy(saved.get_layer("head_fc").bias)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(saved(images, training=False)), want, atol=1e-4)

    facts = kconvnext.run_folder.RunFolder(run).info()
    assert facts["linear_probe"] is True and facts["backbone_images"] == 48
    # eval reads the transform from run.json: the probe's own validation accuracy, image for image.
    assert EvalTransform.from_dict(facts["eval_transform"]) == PUBLISHED.at_size(64)
    assert evaluate(run, "catsdogs", data_dir=str(catsdogs_dir), limit=24, verbose=0)["top1"] == \
        pytest.approx(result.report["top1"])
    assert facts["validation_top1"] == pytest.approx(result.report["top1"])
    assert (run / "plots" / "confusion_matrix.png").is_file() and (run / "logs" / "training.csv").is_file()

    # A re-run with the same data and backbone reuses the features: no backbone pass at all.
    backbone_calls.clear()
    kconvnext.train("catsdogs", "convnext_atto", data_dir=str(catsdogs_dir), output=run, verbose=0,
                    overrides=PROBE)
    assert backbone_calls == []


@pytest.mark.slow
def test_probe_views_add_one_backbone_pass_per_view(preset, backbone_calls, catsdogs_dir, tmp_path):
    kconvnext.train("catsdogs", "convnext_atto", data_dir=str(catsdogs_dir), output=tmp_path / "run",
                    verbose=0, overrides={**PROBE, "probe_views": 1, "epochs": 2, "limit": 16})
    assert sum(backbone_calls) == 16 + 16 + 16  # center crop + one augmented view, then validation


@pytest.mark.slow
def test_probe_views_cover_every_image_even_fewer_than_a_batch(preset, backbone_calls, catsdogs_dir, tmp_path):
    """Views are per-image augmentations, not training batches: no image loses its views to a
    dropped partial batch (10 images, batch 16: before, no view at all and a crash)."""
    kconvnext.train("catsdogs", "convnext_atto", data_dir=str(catsdogs_dir), output=tmp_path / "run",
                    verbose=0, overrides={**PROBE, "probe_views": 2, "epochs": 1, "limit": 10})
    assert sum(backbone_calls) == 10 * 3 + 10  # center crop + two views, then validation


def test_main_job_offline_names_both_alternatives(tmp_path, monkeypatch, catsdogs_dir, capsys):
    monkeypatch.setenv("KCONVNEXT_CACHE_DIR", str(tmp_path))  # weights in tmp_path/weights
    register_preset("convnext_atto", "unreachable", "http://127.0.0.1:9/convnext_atto_d2-01bb0f51.pth",
                    source="convnext_timm")
    try:
        with pytest.raises(WeightsUnavailableError) as info:
            kconvnext.train("catsdogs", "convnext_atto", data_dir=str(catsdogs_dir), output=tmp_path / "run",
                            verbose=0, overrides={"pretrained": "unreachable"})
        message = str(info.value)
        assert "http://127.0.0.1:9/convnext_atto_d2-01bb0f51.pth" in message
        assert "--set pretrained=/path/to/convnext_atto_d2-01bb0f51.pth" in message
        assert "python cli.py train catsdogs resnet18 --recipe catsdogs_scratch --budget-minutes 45" in message
        assert not (tmp_path / "run").exists()  # failed before reading data or writing anything

        code = main(["train", "catsdogs", "convnext_atto", "--data-dir", str(catsdogs_dir),
                     "--output", str(tmp_path / "run"), "--set", "pretrained=unreachable"])
        assert code == 2 and "--recipe catsdogs_scratch --budget-minutes 45" in capsys.readouterr().err
    finally:
        unregister_preset("convnext_atto", "unreachable")


def test_default_catsdogs_recipe_is_the_pretrained_probe():
    config, path = kconvnext.load_recipe(dataset="catsdogs", family="convnext")
    assert path.name == "catsdogs_convnext.yaml" and config.linear_probe and config.pretrained == "imagenet"
    scratch, _ = kconvnext.load_recipe("catsdogs_convnext_scratch")
    assert not scratch.linear_probe and scratch.pretrained is None
    finetune, _ = kconvnext.load_recipe("catsdogs_finetune")
    assert finetune.pretrained == "imagenet" and not finetune.linear_probe and finetune.layer_decay


def test_head_trains_on_datasets_made_once_with_a_seeded_shuffle(monkeypatch, tmp_path):
    """The head's fit reads tf.data datasets (shuffled each epoch from the recipe's seed): numpy arrays
    made Keras slice them anew for every epoch's iterator, 3.4x the CPU of 30 epochs of head training."""
    import tensorflow as tf

    from kconvnext.training.recipes import load_recipe

    seen = []
    real_fit = keras.Model.fit

    def fit(self, x=None, y=None, **kwargs):
        seen.append((x, y, kwargs.get("validation_data")))
        return real_fit(self, x, y, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", fit)
    config, _ = load_recipe(dataset="catsdogs", family="convnext", overrides={"epochs": 3, "batch_size": 8})
    rng = np.random.default_rng(0)
    features = {"train": (rng.normal(size=(20, 6)).astype("float32"), np.arange(20) % 2),
                "validation": (rng.normal(size=(10, 6)).astype("float32"), np.arange(10) % 2)}
    inputs = keras.Input((6,))
    net = keras.Model(inputs, keras.layers.Dense(2, name="head_fc")(inputs))
    histories = []
    for run in ("a", "b"):
        keras.utils.set_random_seed(config.seed)
        _, history = probe.train_head(net, features, config, 2, tmp_path / run, verbose=0)
        histories.append(history)
    assert len(seen) == 2
    for x, y, validation in seen:
        assert isinstance(x, tf.data.Dataset) and y is None and isinstance(validation, tf.data.Dataset)
    assert histories[0] == histories[1] and len(histories[0]) == 3  # same seed, same epochs
    assert (tmp_path / "a" / "training.csv").read_text().count("\n") == 4
