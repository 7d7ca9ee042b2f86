"""Presets evaluated as published: each preset's eval transform, and our TF implementation of it
against the upstream one on real photos.

Upstream (timm's transforms_imagenet_eval, torchvision's ImageClassification) is torchvision's
Resize(int) + CenterCrop on a PIL image; torch is not installed here, so `upstream` below is that
transform written out with PIL (torchvision/transforms/_functional_pil.py resize is
`img.resize(size[::-1], interpolation)`, functional.py `_compute_resized_output_size` gives the
longer side `int(size * long / short)`, center_crop's offsets are `int(round((h - th) / 2.0))`).
"""
import math

import numpy as np
import pytest
from PIL import Image

import kconvnext
from kconvnext.preprocessing import EvalTransform
from kconvnext.weights import list_presets, register_preset
from kconvnext.weights.presets import unregister_preset

FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def upstream(image, transform):
    """torchvision Resize(resize_size, interpolation, antialias) + CenterCrop(image_size) on PIL."""
    w, h = image.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = transform.resize_size, int(transform.resize_size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    resized = image.resize((new_w, new_h), FILTERS[transform.interpolation])
    size = transform.image_size
    top, left = int(round((new_h - size) / 2.0)), int(round((new_w - size) / 2.0))
    return np.asarray(resized)[top:top + size, left:left + size]


def photos(catsdogs_dir, n=6):
    """A few real JPEGs of different shapes (portrait, landscape, small ones that get upscaled)."""
    paths = sorted((catsdogs_dir / "validation" / "cats").glob("*.jpg"))[:n // 2]
    return paths + sorted((catsdogs_dir / "validation" / "dogs").glob("*.jpg"))[:n - n // 2]


# The distinct published transforms: timm/FB ConvNeXt, timm's nano (crop 0.95), torchvision V1 and V2.
PUBLISHED = [("convnext_t", "imagenet"), ("convnext_nano", "imagenet"), ("resnet50", "imagenet_v1"),
             ("resnet50", "imagenet")]


@pytest.mark.parametrize("model, tag", PUBLISHED)
def test_transform_matches_upstream_on_real_photos(model, tag, catsdogs_dir):
    """Same decoded pixels (PIL) through upstream's transform and ours (TF, antialiased resize).
    Measured over these 6 photos: mean |diff| 0.13-0.18 grey levels, 99.9% of values within 1
    level; the largest single differences (up to 6 levels, bicubic) are on small photos upscaled,
    where PIL rounds to uint8 between its horizontal and vertical passes and TF does not."""
    transform = kconvnext.preprocessing_for(model, tag)
    for path in photos(catsdogs_dir):
        with Image.open(path) as im:
            image = im.convert("RGB")
        want = upstream(image, transform).astype(np.float32)
        got = np.round(transform(np.asarray(image)).numpy())
        assert got.shape == want.shape == (224, 224, 3)
        diff = np.abs(got - want)
        assert diff.mean() < 0.3, (path.name, diff.mean())
        assert np.mean(diff > 1) < 0.002, (path.name, np.mean(diff > 1))
        assert diff.max() <= 8, (path.name, diff.max())


def test_a_different_transform_is_told_apart(catsdogs_dir):
    """The comparison above can fail: the old one-size-fits-all transform (bilinear, 256) is far
    from the published bicubic 232 one on the same photo."""
    with Image.open(photos(catsdogs_dir)[0]) as im:
        image = im.convert("RGB")
    want = upstream(image, EvalTransform(224, 224 / 232, resize_size=232, interpolation="bicubic"))
    got = np.round(EvalTransform(224, 0.875).__call__(np.asarray(image)).numpy())
    assert np.abs(got - want).mean() > 5


def test_every_preset_carries_its_published_transform():
    rows = list_presets()
    assert rows and all(isinstance(p.transform, EvalTransform) for p in rows)
    by = {(p.model, p.tag): p.transform for p in rows}
    # timm/models/convnext.py: _cfg bicubic 0.875; convnext_nano.d1h_in1k crop_pct=0.95 -> floor(224/0.95)
    assert by["convnext_atto", "imagenet"].interpolation == "bicubic"
    assert by["convnext_atto", "imagenet"].resize_size == 256
    assert by["convnext_nano", "imagenet"].crop_pct == 0.95
    assert by["convnext_nano", "imagenet"].resize_size == math.floor(224 / 0.95) == 235
    # official ConvNeXt (1k and 22k->1k at 224): bicubic, int(224 / (224 / 256))
    for tag in ("imagenet", "imagenet22k"):
        assert (by["convnext_b", tag].interpolation, by["convnext_b", tag].resize_size) == ("bicubic", 256)
    # torchvision: V1 resize 256, V2 (and resnext101_64x4d's V1) resize 232; both bilinear, crop 224
    assert (by["resnet18", "imagenet"].resize_size, by["resnet18", "imagenet"].interpolation) == (256, "bilinear")
    for model in ("resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d"):
        assert (by[model, "imagenet"].resize_size, by[model, "imagenet"].image_size) == (232, 224)
        assert by[model, "imagenet"].interpolation == "bilinear"
    for model in ("resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d"):
        assert by[model, "imagenet_v1"].resize_size == 256
    assert all(t.mean == (0.485, 0.456, 0.406) and t.std == (0.229, 0.224, 0.225) for t in by.values())


def test_preprocessing_for_is_public_and_scales_with_size():
    t = kconvnext.preprocessing_for("convnext_t", "imagenet")
    assert kconvnext.weights.preprocessing_for is kconvnext.preprocessing_for
    assert "preprocessing_for" in kconvnext.__all__
    assert t.at_size(288).resize_size == math.floor(288 / 0.875)
    assert EvalTransform.from_dict(t.to_dict()) == t
    with pytest.raises(ValueError, match="convnext_t has no preset of that name"):
        kconvnext.preprocessing_for("convnext_t", "imagenet-typo")


@pytest.mark.parametrize("row, match", [
    (dict(interpolation="nearest"), "interpolation must be one of"),
    (dict(crop_pct=1.2), r"crop_pct must be in \(0, 1\]"),
    (dict(resize_size=300), "resize_size 300 does not fit"),
    (dict(mean=[0.5, 0.5]), "mean and std need 3"),
    (dict(crop=0.9), r"unknown eval transform key\(s\) \['crop'\]"),
])
def test_bad_transforms_are_refused_on_load(row, match):
    with pytest.raises(ValueError, match=match):
        EvalTransform.from_dict({"image_size": 224, **row}, where="presets.yaml x/y")
    with pytest.raises(ValueError, match=match):
        register_preset("convnext_atto", "bad-transform", "https://example.invalid/a.pth", transform=row)
    unregister_preset("convnext_atto", "bad-transform")


def test_model_normalisation_must_match_the_transform():
    model = kconvnext.create_model("convnext_atto", input_shape=(32, 32, 3))
    kconvnext.preprocessing_for("convnext_atto", "imagenet").check_model(model)
    clip_like = EvalTransform(224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match=r"normalises with mean \[0.485, 0.456, 0.406\].*mean \[0.5, 0.5, 0.5\]"):
        clip_like.check_model(model)
    clip_like.check_model(kconvnext.create_model("convnext_atto", input_shape=(32, 32, 3),
                                                 normalization=((0.5,) * 3, (0.5,) * 3)))


def test_run_info_without_a_transform_is_read_as_the_training_pipeline_wrote_it():
    """Runs written before run.json had `eval_transform`: bilinear at their eval_crop_ratio."""
    t = EvalTransform.from_run_info({"image_size": 160, "eval_crop_ratio": 0.9, "normalization": "cifar10"})
    assert (t.image_size, t.crop_pct, t.resize_size, t.interpolation) == (160, 0.9, 177, "bilinear")
    assert t.mean == (0.4914, 0.4822, 0.4465)
    published = kconvnext.preprocessing_for("convnext_nano", "imagenet")
    assert EvalTransform.from_run_info({"eval_transform": published.to_dict(), "image_size": 224}) == published


def test_export_serves_with_the_runs_transform(catsdogs_dir):
    """The SavedModel's bytes signature preprocesses with run.json's eval_transform (a probe of a
    preset writes it); an explicit --eval-crop-ratio keeps the interpolation, changes the crop."""
    import tensorflow as tf

    from kconvnext.export import preprocess

    published = kconvnext.preprocessing_for("convnext_nano", "imagenet").at_size(64)
    transform = preprocess.transform_for({"eval_transform": published.to_dict(), "image_size": 64}, 64)
    assert transform == published
    assert preprocess.transform_for({"image_size": 64}, 64).interpolation == "bilinear"  # older runs
    assert preprocess.transform_for({"eval_transform": published.to_dict()}, 64, 0.8).interpolation == "bicubic"
    path = photos(catsdogs_dir)[0]
    served = preprocess.preprocess_batch(tf.constant([path.read_bytes()]), 64, transform).numpy()[0]
    np.testing.assert_array_equal(served, published.load(path).numpy())


def test_a_run_from_a_preset_validates_and_records_the_published_transform(catsdogs_dir, tmp_path):
    """Fine-tuning from a preset: validation (hence checkpoint selection), run.json and so eval /
    predict / export see the preset's transform (bicubic for ConvNeXt), not the recipe's bilinear."""
    from kconvnext.data import load
    from kconvnext.data.loader import select_splits
    from kconvnext.training.config import TrainConfig
    from kconvnext.training.run_setup import preset_eval_transform, transform_info

    config = TrainConfig(pretrained="imagenet", image_size=48)
    transform = preset_eval_transform("convnext_atto", config)
    assert (transform.interpolation, transform.image_size) == ("bicubic", 48)
    assert preset_eval_transform("convnext_atto", TrainConfig(pretrained=None, image_size=48)) is None

    bundle = load("catsdogs", data_dir=catsdogs_dir, image_size=48, batch_size=4, limit=4, augment=False,
                  eval_transform=transform, output_dir=str(tmp_path))
    images, _ = next(iter(bundle.validation))
    first = select_splits("catsdogs", data_dir=catsdogs_dir, image_size=48, batch_size=4, limit=4).validation.paths[0]
    expected = np.clip(np.asarray(transform.load(first)), 0, 255)  # (the pipeline clips bicubic's overshoot)
    np.testing.assert_allclose(np.asarray(images[0]), expected, atol=1e-3)
    bilinear = load("catsdogs", data_dir=catsdogs_dir, image_size=48, batch_size=4, limit=4, augment=False,
                    output_dir=str(tmp_path))
    assert np.abs(np.asarray(next(iter(bilinear.validation))[0]) - np.asarray(images)).max() > 1
    info = transform_info("convnext_atto", config, bundle)
    assert EvalTransform.from_run_info(info) == transform
