"""Batch Mixup / CutMix as timm's Mixup(mode='batch'): one lambda per batch, the reversed batch as
partner, clipped CutMix boxes with the corrected lambda, label smoothing folded into the targets.

Every mix runs inside a tf.data map (graph mode, as in the pipeline), one batch per element seed.
"""
import dataclasses
import types

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kconvnext.data import AugmentConfig, load
from kconvnext.data.mixing import BatchMix

H, W = 24, 40  # not square: height and width must not be swapped


def config(**fields):
    return dataclasses.replace(AugmentConfig.none(), **fields)


def mixed(mixer, images, labels, n, seed=0):
    """(images (n, B, H, W, 3), labels (n, B, K)): the batch mixed under n element seeds."""
    seeds = tf.random.experimental.stateless_split(tf.constant([seed, 7], tf.int64), n)
    images, labels = tf.constant(images, tf.float32), tf.constant(labels, tf.float32)
    ds = tf.data.Dataset.from_tensor_slices(seeds).map(lambda s: mixer(images, labels, s))
    out = list(ds.as_numpy_iterator())
    return np.stack([x for x, _ in out]), np.stack([y for _, y in out])


def black_white(batch=2):
    """Class 0 all black, class 1 all white, alternating; one-hot labels."""
    images = np.zeros((batch, H, W, 3), np.float32)
    images[1::2] = 255.0
    labels = np.eye(2, dtype=np.float32)[np.arange(batch) % 2]
    return images, labels


@pytest.fixture
def black_white_folder(tmp_path):
    """A folder data set: class a all black, class b all white, 8 images each."""
    for name, value in (("a", 0), ("b", 255)):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(np.full((H, W, 3), value, np.uint8)).save(tmp_path / "data" / name / f"{i}.png")
    return tmp_path / "data"


def white_share(x):
    """Per image, the share of its pixels that are white."""
    return x.mean(axis=(-3, -2, -1)) / 255.0


def timm_rand_bbox(rng, lam, h, w):
    """numpy reference of timm.data.mixup.rand_bbox + cutmix_bbox_and_lam(correct_lam=True)."""
    ratio = np.sqrt(1 - lam)
    cut_h, cut_w = (h * ratio).astype(int), (w * ratio).astype(int)
    cy, cx = rng.integers(0, h, lam.shape), rng.integers(0, w, lam.shape)
    yl, yh = np.clip(cy - cut_h // 2, 0, h), np.clip(cy + cut_h // 2, 0, h)
    xl, xh = np.clip(cx - cut_w // 2, 0, w), np.clip(cx + cut_w // 2, 0, w)
    area = (yh - yl) * (xh - xl)
    touches = (area > 0) & ((yl == 0) | (yh == h) | (xl == 0) | (xh == w))
    return area / (h * w), touches, 1 - area / (h * w)


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_one_lambda_per_batch(kind):
    """Every image of a batch gets the same pixel share (timm's mode='batch'), not one lambda each."""
    fields = {"mixup_alpha": 0.8} if kind == "mixup" else {"cutmix_alpha": 1.0}
    images, labels = black_white(batch=8)
    x, _ = mixed(BatchMix(config(mix_prob=1.0, **fields)), images, labels, 200)
    own = white_share(x)  # (n, 8): white share of each image
    own[:, 0::2] = 1 - own[:, 0::2]  # black images: the share that stayed black
    np.testing.assert_allclose(own, own[:, :1].repeat(8, 1), atol=1e-5)
    assert own[:, 0].std() > 0.1, "lambda varies from batch to batch"


def test_partner_is_the_reversed_batch():
    """Image i mixes with image B-1-i (x.flip(0)), and its label with that image's label."""
    values = np.array([0.0, 60.0, 120.0, 180.0, 240.0])
    images = np.ones((5, H, W, 3), np.float32) * values[:, None, None, None]
    labels = np.eye(5, dtype=np.float32)
    x, y = mixed(BatchMix(config(mixup_alpha=0.8, mix_prob=1.0)), images, labels, 50)
    lam = (x[:, 0, 0, 0, 0] - values[4]) / (values[0] - values[4])
    expected = lam[:, None] * values + (1 - lam[:, None]) * values[::-1]
    np.testing.assert_allclose(x[:, :, 0, 0, 0], expected, atol=1e-3)
    np.testing.assert_allclose(y, lam[:, None, None] * labels + (1 - lam[:, None, None]) * labels[::-1], atol=1e-5)
    x, y = mixed(BatchMix(config(cutmix_alpha=1.0, mix_prob=1.0)), images, labels, 50)
    for batch in x:
        for i in range(5):
            assert set(np.unique(batch[i])) <= {values[i], values[4 - i]}


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_mixed_labels_are_the_pixel_shares_with_smoothing_folded_in(black_white_folder, kind):
    """Through kconvnext.data.load: black (class 0) and white (class 1) images, so a training image's
    white share is its label's class-1 weight; with smoothing s on K classes the target is timm's
    lam * smooth(y) + (1 - lam) * smooth(y_reversed) = s/K + (1 - s) * share."""
    fields = {"mixup_alpha": 0.8} if kind == "mixup" else {"cutmix_alpha": 1.0}
    bundle = load("folder", data_dir=black_white_folder, image_size=16, batch_size=8, validation_fraction=0.25,
                  augment=config(mix_prob=1.0, **fields), label_smoothing=0.1, seed=3)
    assert bundle.label_smoothing == 0.1
    shares, targets = [], []
    for _ in range(6):  # epochs: new shuffles and mixes
        for x, y in bundle.train:
            shares.append(white_share(x.numpy())), targets.append(y.numpy())
    shares, targets = np.concatenate(shares), np.concatenate(targets)
    off = 0.1 / 2
    np.testing.assert_allclose(targets[:, 1], off + 0.9 * shares, atol=1e-5)
    np.testing.assert_allclose(targets.sum(1), 1.0, atol=1e-5)
    # Some images are mixed (same-class partners and lambdas near 0 or 1 stay pure: about 0.3-0.4 of
    # the images are in between; the bound only guards against no mixing at all).
    assert ((shares > 0.05) & (shares < 0.95)).mean() > 0.15, "images were mixed"
    # Validation targets stay plain one-hot (the loss is plain cross-entropy on them).
    _, yv = next(iter(bundle.validation))
    assert set(np.unique(yv.numpy())) == {0.0, 1.0}


def test_smoothing_reaches_unmixed_batches():
    """Mixing configured but a batch not mixed: timm still smooths its targets (here the pipeline's
    per-image labels already carry it, and mixing keeps it exact)."""
    images, labels = black_white(batch=4)
    s, k = 0.2, 2
    smooth = labels * (1 - s) + s / k
    x, y = mixed(BatchMix(config(mixup_alpha=0.8, cutmix_alpha=1.0, mix_prob=0.5)), images, smooth, 100)
    unmixed = np.all(x == images, axis=(1, 2, 3, 4))
    assert 20 < unmixed.sum() < 80
    np.testing.assert_allclose(y[unmixed], np.broadcast_to(smooth, y[unmixed].shape), atol=1e-6)


def test_cutmix_boxes_match_timm_rand_bbox():
    """Clipped boxes centred anywhere: timm pastes ~32% of the image on average (alpha 1) and ~85% of
    boxes touch an edge (Keras' CutMix kept boxes inside the image: ~50%)."""
    n = 3000
    images, labels = black_white(batch=2)
    x, y = mixed(BatchMix(config(cutmix_alpha=1.0, mix_prob=1.0)), images, labels, n, seed=1)
    white = x[:, 0, :, :, 0] > 127  # image 0 is black: white pixels were pasted from image 1
    area = white.mean(axis=(1, 2))
    touches = white[:, 0].any(1) | white[:, -1].any(1) | white[:, :, 0].any(1) | white[:, :, -1].any(1)
    rng = np.random.default_rng(0)
    ref_area, ref_touches, _ = timm_rand_bbox(rng, rng.beta(1.0, 1.0, 200_000), H, W)
    assert abs(area.mean() - ref_area.mean()) < 4 * ref_area.std() / np.sqrt(n), (area.mean(), ref_area.mean())
    p = ref_touches.mean()
    assert abs(touches.mean() - p) < 4 * np.sqrt(p * (1 - p) / n), (touches.mean(), p)
    # The pasted region is one rectangle and the label is the corrected lambda.
    rows, cols = white.any(2), white.any(1)
    np.testing.assert_array_equal(white.sum((1, 2)), rows.sum(1) * cols.sum(1))
    np.testing.assert_allclose(y[:, 0, 0], 1 - area, atol=1e-6)


@pytest.mark.parametrize("alpha", [0.3, 2.0])
def test_mixup_lambda_is_beta_alpha_alpha(alpha):
    """lambda ~ Beta(alpha, alpha) for any alpha > 0 (not just Keras' [0, 1])."""
    n = 1000
    images, labels = black_white(batch=2)
    x, _ = mixed(BatchMix(config(mixup_alpha=alpha, mix_prob=1.0)), images, labels, n, seed=2)
    lam = 1 - white_share(x[:, 0])
    var = 1 / (4 * (2 * alpha + 1))
    fourth = 3 / (16 * (2 * alpha + 1) * (2 * alpha + 3))
    assert abs(lam.mean() - 0.5) < 4 * np.sqrt(var / n)
    assert abs(lam.var() - var) < 4 * np.sqrt((fourth - var ** 2) / n), (lam.var(), var)


def test_mix_prob_and_switch_prob():
    """With both alphas: a batch is mixed with mix_prob, and a mixed batch is CutMix with mix_switch_prob."""
    n = 2000
    images, labels = black_white(batch=2)
    x, _ = mixed(BatchMix(config(mixup_alpha=0.8, cutmix_alpha=1.0, mix_prob=0.6, mix_switch_prob=0.3)),
                 images, labels, n, seed=3)
    first = x[:, 0]
    unmixed = np.all(first == 0, axis=(1, 2, 3))
    binary = np.all((first == 0) | (first == 255), axis=(1, 2, 3)) & ~unmixed
    for observed, p in ((unmixed.mean(), 0.4), (binary.mean(), 0.6 * 0.3)):
        assert abs(observed - p) < 4 * np.sqrt(p * (1 - p) / n) + 0.01, (observed, p)


def test_alphas_above_one_are_allowed():
    assert AugmentConfig(mixup_alpha=2.0, cutmix_alpha=3.0).mixup_alpha == 2.0
    with pytest.raises(ValueError, match="mixup_alpha"):
        AugmentConfig(mixup_alpha=-0.1)


def test_same_seed_same_mix():
    images, labels = black_white(batch=4)
    mixer = BatchMix(config(mixup_alpha=0.8, cutmix_alpha=1.0))
    a, b = mixed(mixer, images, labels, 5), mixed(mixer, images, labels, 5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


# --- the training loss: smoothing lives in the targets, not a second time in the loss ---------------

def test_trainer_data_carries_the_smoothing_and_the_loss_does_not_smooth_again(black_white_folder, tmp_path):
    from kconvnext.training.config import config_from_dict
    from kconvnext.training.model_setup import loss_label_smoothing
    from kconvnext.training.run_setup import load_data

    cfg = config_from_dict({"image_size": 16, "batch_size": 4, "validation_fraction": 0.34,
                            "selection_fraction": 0.0, "label_smoothing": 0.1})
    assert cfg.augment.mixes  # the recipe mixes
    bundle = load_data("folder", cfg, black_white_folder, tmp_path / "run", seed=0)
    assert bundle.label_smoothing == 0.1 and loss_label_smoothing(cfg, bundle) == 0.0
    _, y = next(iter(bundle.train))
    assert y.numpy().min() >= 0.05 - 1e-6  # smoothed: no class below s / K
    # Data that does not carry it (a user's own bundle): the loss smooths, as before.
    assert loss_label_smoothing(cfg, types.SimpleNamespace()) == 0.1
    with pytest.raises(ValueError, match="label smoothing 0.2.*label_smoothing is 0.1"):
        loss_label_smoothing(cfg, types.SimpleNamespace(label_smoothing=0.2))


def test_portable_pipeline_smooths_training_targets_too(black_white_folder):
    """The numpy/PyDataset pipeline (other backends) has the same contract: smoothed training targets."""
    from kconvnext.data import portable

    bundle = portable.load("folder", data_dir=black_white_folder, image_size=16, batch_size=4,
                           validation_fraction=0.25, augment=False, label_smoothing=0.1, workers=1)
    assert bundle.label_smoothing == 0.1
    _, y = bundle.train[0]
    np.testing.assert_allclose(np.unique(y), [0.05, 0.95], atol=1e-6)
    _, yv = bundle.validation[0]
    assert set(np.unique(yv)) == {0.0, 1.0}


@pytest.mark.slow
def test_trained_model_loss_has_no_smoothing_when_the_targets_carry_it(tmp_path):
    import keras

    from kconvnext.training import train
    from training_helpers import synthetic_bundle

    data = synthetic_bundle(train=32, val=16)
    data.label_smoothing = 0.1  # (as kconvnext.data.load(..., label_smoothing=0.1) says)
    result = train("catsdogs", "convnext_atto", recipe="catsdogs_convnext_scratch", data=data,
                   output=tmp_path / "run", epochs=1, batch_size=16, image_size=32, small_input=True,
                   label_smoothing=0.1, verbose=0,
                   overrides={"model": {"depths": [1, 1, 1, 1], "dims": [16, 32, 64, 128]}})
    assert isinstance(result.model.loss, keras.losses.CategoricalCrossentropy)
    assert result.model.loss.get_config()["label_smoothing"] == 0.0


def test_resumed_checkpoint_with_a_smoothing_loss_is_recompiled_keeping_its_optimizer(tmp_path):
    """A checkpoint saved when the loss smoothed (before the targets carried it) must not smooth twice."""
    import keras

    from kconvnext.training.config import config_from_dict
    from kconvnext.training.model_setup import compile_model, compiled_label_smoothing, match_loss_smoothing

    cfg = config_from_dict({"label_smoothing": 0.1, "lr": 1e-3, "warmup_epochs": 0, "epochs": 2})
    inputs = keras.Input((4,))
    net = keras.Model(inputs, keras.layers.Dense(3, name="head_fc")(inputs))
    compile_model(net, "convnext_atto", cfg, 2, 3, label_smoothing=0.1)
    x, y = np.random.default_rng(0).normal(size=(8, 4)).astype("float32"), np.eye(3, dtype="float32")[[0, 1, 2, 0] * 2]
    net.fit(x, y, batch_size=4, epochs=1, verbose=0)
    net.save(tmp_path / "old.keras")
    old = keras.models.load_model(tmp_path / "old.keras")
    assert compiled_label_smoothing(old) == 0.1
    slots = [v.numpy().copy() for v in old.optimizer.variables]
    assert match_loss_smoothing(old, "convnext_atto", cfg, 2, 3, 0.0)
    assert compiled_label_smoothing(old) == 0.0 and int(old.optimizer.iterations) == 2
    for before, after in zip(slots, old.optimizer.variables):
        np.testing.assert_array_equal(before, after.numpy())
    old.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert int(old.optimizer.iterations) == 4
    assert not match_loss_smoothing(old, "convnext_atto", cfg, 2, 3, 0.0)  # already right: untouched
