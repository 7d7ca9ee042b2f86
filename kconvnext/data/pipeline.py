"""tf.data pipelines from a split: decode, augment, batch, prefetch; parallel and deterministic.

Files are decoded with tf.io.decode_image (JPEG, PNG, GIF first frame, BMP; grayscale, RGBA and
CMYK all come out RGB). CIFAR's arrays are held in memory once and gathered by shuffled index, so
the shuffle buffer holds ints, not images.
"""
import numpy as np
import tensorflow as tf

from kconvnext.data import augment as aug
from kconvnext.data.augment_numpy import cifar_pad
from kconvnext.data.seeds import seed_stream
from kconvnext.data.sources.base import ArraySplit

AUTOTUNE = tf.data.AUTOTUNE


def decode_file(path):
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return tf.cast(tf.ensure_shape(image, (None, None, 3)), tf.float32)


def _reader(split):
    """(dataset of (key, label), key -> float32 image): keys are paths or array indices."""
    labels = np.asarray(split.labels, dtype=np.int64)
    if isinstance(split, ArraySplit):
        images = tf.convert_to_tensor(split.images)
        keys = tf.data.Dataset.from_tensor_slices((np.arange(len(labels), dtype=np.int64), labels))
        return keys, lambda i: tf.cast(tf.gather(images, i), tf.float32)
    return tf.data.Dataset.from_tensor_slices((list(split.paths), labels)), decode_file


def _finish(ds, batch_size):
    return ds.batch(batch_size).prefetch(AUTOTUNE)


def validation_dataset(split, *, num_classes, image_size, batch_size, config):
    """No augmentation: arrays are only resized if image_size differs; files resize + center crop."""
    keys, read = _reader(split)
    is_array = isinstance(split, ArraySplit)

    def prepare(key, label):
        image = read(key)
        if is_array:
            if split.images.shape[1] != image_size:
                image = aug.resize(image, (image_size, image_size))
        else:
            image = aug.center_crop(image, image_size, config.eval_crop_ratio)
        image = tf.ensure_shape(tf.clip_by_value(image, *aug.VALUE_RANGE), (image_size, image_size, 3))
        return image, tf.one_hot(label, num_classes, dtype=tf.float32)

    ds = keys.map(prepare, num_parallel_calls=AUTOTUNE, deterministic=True)
    return _finish(ds if is_array else ds.ignore_errors(log_warning=True), batch_size)


def train_dataset(split, *, num_classes, image_size, batch_size, config, seed, shuffle_buffer=None):
    """Shuffled every epoch (seeded), augmented per image then per batch, as `config` says."""
    keys, read = _reader(split)
    is_array = isinstance(split, ArraySplit)
    randaugment = (aug.RandAugmentPerImage(config.randaugment_magnitude, config.randaugment_num_ops, image_size)
                   if config.randaugment else None)
    batch_augment = aug.BatchAugment(config)
    pad = cifar_pad(image_size)

    def prepare(key_label, seed):
        key, label = key_label
        crop_seed, flip_seed, ra_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
        image = read(key)
        if is_array:
            if split.images.shape[1] != image_size:
                image = aug.resize(image, (image_size, image_size))
            if config.random_resized_crop:
                image = aug.pad_and_crop(image, image_size, crop_seed, pad)
        elif config.random_resized_crop:
            image = aug.random_resized_crop(image, image_size, config.crop_scale, crop_seed)
        else:
            image = aug.center_crop(image, image_size, config.eval_crop_ratio)
        image = tf.ensure_shape(image, (image_size, image_size, 3))
        if config.hflip:
            image = tf.image.stateless_random_flip_left_right(image, flip_seed)
        if randaugment is not None:
            image = randaugment(image, ra_seed)
        return tf.clip_by_value(image, *aug.VALUE_RANGE), tf.one_hot(label, num_classes, dtype=tf.float32)

    n = len(split)
    ds = keys.shuffle(min(shuffle_buffer or n, n), seed=seed, reshuffle_each_iteration=True)
    ds = tf.data.Dataset.zip(ds, seed_stream(seed + 1)).map(prepare, num_parallel_calls=AUTOTUNE, deterministic=True)
    if not is_array:
        ds = ds.ignore_errors(log_warning=True)  # last resort; the up-front scan should leave nothing to skip
    ds = ds.batch(batch_size)
    if batch_augment.active:
        ds = tf.data.Dataset.zip(ds, seed_stream(seed + 2)).map(
            lambda batch, s: batch_augment(batch[0], batch[1], s), num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.prefetch(AUTOTUNE)
