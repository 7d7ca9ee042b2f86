"""The TensorFlow-free input pipeline (keras.utils.PyDataset over numpy) on the real data sets."""
import numpy as np
import pytest

from kconvnext import data as kdata
from kconvnext.data import portable
from kconvnext.data.config import AugmentConfig

pytestmark = pytest.mark.slow


def _load(name, path, **kwargs):
    return portable.load(name, data_dir=str(path), workers=1, **kwargs)


def test_cifar_batches_contract_determinism_and_epochs(cifar10_dir):
    bundle = _load("cifar10", cifar10_dir, batch_size=32, limit=200, seed=3)
    assert bundle.arrays and bundle.image_size == 32 and bundle.num_classes == 10
    assert len(bundle.train) == 6 and (bundle.train_count, bundle.validation_count) == (200, 200)
    x, y = bundle.train[0]
    assert x.shape == (32, 32, 32, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 255
    assert y.shape == (32, 10) and np.all(y.sum(axis=1) == 1)
    # Same (seed, epoch, batch) -> same batch, whatever order or thread reads it.
    again = _load("cifar10", cifar10_dir, batch_size=32, limit=200, seed=3)
    np.testing.assert_array_equal(again.train[0][0], x)
    # A new epoch reshuffles and re-augments; skip_epochs jumps straight there (resume).
    bundle.train.on_epoch_end()
    assert not np.array_equal(bundle.train[0][0], x)
    again.train.skip_epochs(1)
    np.testing.assert_array_equal(again.train[0][0], bundle.train[0][0])
    # Validation is the unaugmented test images, in order.
    vx, vy = bundle.validation[0]
    bundle.validation.on_epoch_end()
    np.testing.assert_array_equal(bundle.validation[0][0], vx)
    tf_bundle = kdata.load("cifar10", data_dir=str(cifar10_dir), batch_size=32, limit=200, seed=3)
    tx, ty = next(iter(tf_bundle.validation))
    np.testing.assert_array_equal(np.asarray(tx), vx)
    np.testing.assert_array_equal(np.asarray(ty), vy)


def test_file_batches_match_the_tf_pipeline_at_validation(catsdogs_dir):
    bundle = _load("catsdogs", catsdogs_dir, image_size=64, batch_size=8, limit=16)
    assert not bundle.arrays and bundle.class_names == ["cats", "dogs"]
    x, y = bundle.train[0]
    assert x.shape == (8, 64, 64, 3) and y.shape == (8, 2)
    vx, vy = bundle.validation[0]
    tf_bundle = kdata.load("catsdogs", data_dir=str(catsdogs_dir), image_size=64, batch_size=8, limit=16)
    tx, ty = next(iter(tf_bundle.validation))
    np.testing.assert_array_equal(np.asarray(ty), vy)  # same files, same order
    # PIL and tf.image resize differ slightly (antialiasing filters): a few gray levels on average.
    assert np.abs(np.asarray(tx) - vx).mean() < 8.0


def test_limit_batches_and_unsupported_augmentations(cifar10_dir):
    bundle = _load("cifar10", cifar10_dir, batch_size=16, limit=100)
    bundle.train.limit_batches(2)
    assert len(bundle.train) == 2
    assert portable.unsupported(AugmentConfig()) == ["RandAugment", "Mixup/CutMix", "random erasing"]
    assert portable.unsupported(AugmentConfig.none()) == []


def test_epoch_control_treats_both_pipelines_alike(cifar10_dir):
    """kconvnext.data.epochs: length, a shortened epoch and resume's skip, for tf.data and PyDataset."""
    from kconvnext.data import epochs

    tf_bundle = kdata.load("cifar10", data_dir=str(cifar10_dir), batch_size=16, limit=100, seed=5)
    py_bundle = _load("cifar10", cifar10_dir, batch_size=16, limit=100, seed=5)
    assert epochs.batches_per_epoch(tf_bundle.train, 100, 16) == 6
    assert epochs.batches_per_epoch(py_bundle.train, 100, 16) == 6
    unknown = tf_bundle.train.filter(lambda x, y: True)  # a pipeline that cannot know its length: refused
    with pytest.raises(ValueError, match="no known length.*assert_cardinality"):
        epochs.batches_per_epoch(unknown, 100, 16)
    assert len(list(epochs.first_batches(tf_bundle.train, 2))) == 2
    assert len(epochs.first_batches(py_bundle.train, 2)) == 2
    # fast_forward(1) then one epoch == the second epoch of an uninterrupted run.
    for load in (lambda: kdata.load("cifar10", data_dir=str(cifar10_dir), batch_size=16, limit=100, seed=5),
                 lambda: _load("cifar10", cifar10_dir, batch_size=16, limit=100, seed=5)):
        straight, resumed = load().train, load().train
        if isinstance(straight, portable.ImageBatches):
            straight.on_epoch_end()
            second = straight[0][0]
        else:
            iterator = iter(straight)
            del iterator
            second = np.asarray(next(iter(straight))[0])
        epochs.fast_forward(resumed, 1)
        first_after_resume = resumed[0][0] if isinstance(resumed, portable.ImageBatches) else np.asarray(next(iter(resumed))[0])
        np.testing.assert_array_equal(first_after_resume, second)
