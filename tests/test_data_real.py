"""kconvnext.data on the real data sets in ../shared/data: both cats-vs-dogs layouts and CIFAR-10."""
import os
import shutil

import numpy as np
import pytest

from kconvnext.data import AugmentConfig, load
from kconvnext.data.sources import cifar10, locate

pytestmark = pytest.mark.slow
SIZE = 64


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """Any download attempt fails the test; caches go to a temp dir."""
    monkeypatch.setenv("KCONVNEXT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(locate.ENV_VAR, raising=False)
    monkeypatch.setattr(locate.keras.utils, "get_file", lambda **kw: pytest.fail(f"network use: {kw}"))


def check_batch(x, y, batch, size, num_classes):
    x, y = x.numpy(), y.numpy()
    assert x.shape == (batch, size, size, 3) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 255 and x.max() > 1, "pixels in [0, 255], not normalised"
    assert y.shape == (batch, num_classes)
    np.testing.assert_allclose(y.sum(1), 1.0, atol=1e-5)


def test_catsdogs_filtered_layout(catsdogs_dir):
    bundle = load("catsdogs", data_dir=catsdogs_dir, image_size=SIZE, batch_size=8, limit=40)
    assert bundle.class_names == ["cats", "dogs"] and bundle.num_classes == 2
    assert bundle.class_counts == {"train": {"cats": 20, "dogs": 20}, "validation": {"cats": 20, "dogs": 20}}
    assert bundle.skipped == [] and bundle.normalization == "imagenet" and not bundle.small_input
    check_batch(*next(iter(bundle.train)), 8, SIZE, 2)
    check_batch(*next(iter(bundle.validation)), 8, SIZE, 2)


def test_catsdogs_found_through_the_environment(shared_data, monkeypatch):
    monkeypatch.setenv(locate.ENV_VAR, str(shared_data))
    bundle = load("catsdogs", image_size=SIZE, limit=10, augment=AugmentConfig.none())
    assert bundle.train_count == 10 and bundle.validation_count == 10


@pytest.fixture()
def kaggle_flat(tmp_path, catsdogs_dir):
    """The competition's flat layout: train/cat.N.jpg, train/dog.N.jpg, one undecodable file, test1/."""
    train = tmp_path / "dogs-vs-cats" / "train"
    train.mkdir(parents=True)
    for animal in ("cat", "dog"):
        for i in range(20):
            os.symlink(catsdogs_dir / "train" / f"{animal}s" / f"{animal}.{i}.jpg", train / f"{animal}.{i}.jpg")
    data = (catsdogs_dir / "train" / "cats" / "cat.20.jpg").read_bytes()
    (train / "cat.666.jpg").write_bytes(data[: len(data) // 3])
    (tmp_path / "dogs-vs-cats" / "test1").mkdir()
    shutil.copy(catsdogs_dir / "validation" / "cats" / "cat.2000.jpg", tmp_path / "dogs-vs-cats" / "test1" / "1.jpg")
    return tmp_path / "dogs-vs-cats"


def test_catsdogs_flat_kaggle_layout(kaggle_flat, tmp_path):
    bundle = load("catsdogs", data_dir=kaggle_flat, image_size=SIZE, batch_size=8, validation_fraction=0.2,
                  output_dir=tmp_path / "run", augment=AugmentConfig.none())
    assert bundle.class_names == ["cats", "dogs"]
    assert [os.path.basename(p) for p, _ in bundle.skipped] == ["cat.666.jpg"]
    assert "cat.666.jpg" in (tmp_path / "run" / "skipped_files.txt").read_text()
    # 21 cats (one unreadable, dropped after the split) and 20 dogs; 20% of each class held out.
    assert bundle.class_counts["validation"]["dogs"] == 4 and bundle.class_counts["train"]["dogs"] == 16
    assert bundle.train_count + bundle.validation_count == 40
    check_batch(*next(iter(bundle.train)), 8, SIZE, 2)
    labels = np.concatenate([y.numpy().argmax(1) for _, y in bundle.validation])
    assert np.bincount(labels).tolist() == [bundle.class_counts["validation"]["cats"], 4]


def test_catsdogs_flat_split_is_seeded(kaggle_flat):
    def val_images(seed):
        bundle = load("catsdogs", data_dir=kaggle_flat / "train", image_size=16, batch_size=64, seed=seed,
                      validation_fraction=0.2, augment=AugmentConfig.none())
        return np.concatenate([x.numpy() for x, _ in bundle.validation])

    first = val_images(0)
    np.testing.assert_array_equal(first, val_images(0))
    assert first.shape != val_images(1).shape or not np.array_equal(first, val_images(1))


def test_cifar10(cifar10_dir):
    bundle = load("cifar10", data_dir=cifar10_dir, batch_size=16, limit=200, seed=0)
    assert bundle.class_names[:3] == ["airplane", "automobile", "bird"] and bundle.num_classes == 10
    assert bundle.train_count == 200 and bundle.validation_count == 200
    assert set(bundle.class_counts["train"].values()) == {20}
    assert bundle.normalization == "cifar10" and bundle.small_input and bundle.image_size == 32
    check_batch(*next(iter(bundle.train)), 16, 32, 10)
    # Validation is the raw image: the first validation image is one of the test batch's, untouched.
    images, labels = cifar10.read_batch(cifar10_dir / cifar10.TEST_BATCH)
    assert images.shape == (10000, 32, 32, 3) and labels[:4].tolist() == [3, 8, 8, 0]
    x, y = next(iter(bundle.validation))
    matches = np.flatnonzero((images == x.numpy()[0].astype(np.uint8)).all(axis=(1, 2, 3)))
    assert len(matches) == 1 and labels[matches[0]] == y.numpy()[0].argmax()
