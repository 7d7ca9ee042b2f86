"""tf.data pipelines from a split: decode, augment, batch, prefetch; parallel and deterministic.

Files are decoded with tf.io.decode_image (JPEG, PNG, GIF first frame, BMP; grayscale, RGBA and
CMYK all come out RGB). CIFAR's arrays are held in memory once and gathered by shuffled index, so
the shuffle buffer holds ints, not images. Image files are decoded once and kept in memory as uint8
when they fit (loader.CACHE_LIMIT_BYTES), training images shrunk to the smallest size the random crops
need: at small training sizes JPEG decoding otherwise costs as much as a small model's step.
"""
import math

import numpy as np
import tensorflow as tf
from PIL import Image

from kconvnext.data import augment as aug
from kconvnext.data.augment_numpy import cifar_pad
from kconvnext.data.mixing import BatchMix
from kconvnext.data.randaugment import RandAugment, fill_colour
from kconvnext.data.seeds import seed_stream
from kconvnext.data.sources.base import ArraySplit
from kconvnext.preprocessing import decode_image

AUTOTUNE = tf.data.AUTOTUNE


def without_autograph(fn):
    """`fn` as Dataset.map traces it, minus AutoGraph's rewrite of its source and of everything it
    calls (12% of a short training command): the pipeline's Python branches are on settings, never
    on tensors (a tensor used as a bool fails the trace instead of being converted)."""
    return tf.autograph.experimental.do_not_convert(fn)


def decode_file(path):
    return tf.cast(decode_image(tf.io.read_file(path)), tf.float32)


def _reader(split):
    """(dataset of (key, label), key -> float32 image): keys are paths or array indices."""
    labels = np.asarray(split.labels, dtype=np.int64)
    if isinstance(split, ArraySplit):
        images = tf.convert_to_tensor(split.images)
        keys = tf.data.Dataset.from_tensor_slices((np.arange(len(labels), dtype=np.int64), labels))
        return keys, lambda i: tf.cast(tf.gather(images, i), tf.float32)
    return tf.data.Dataset.from_tensor_slices((list(split.paths), labels)), decode_file


def kept_short_side(image_size, config):
    """Shorter side at which a cached training image still gives every random crop >= image_size
    pixels across: a crop of area fraction `low` and aspect 3/4 spans sqrt(low * 3/4) of it."""
    if not config.random_resized_crop:
        return int(math.ceil(image_size / config.eval_crop_ratio))
    return int(math.ceil(image_size / math.sqrt(config.crop_scale[0] * 3 / 4)))


def cached_bytes(paths, short_side, sample=64):
    """Estimated uint8 bytes of these files decoded with their shorter side cut to short_side: the
    mean over an evenly spaced sample of image headers (PIL reads only the header), times the count."""
    paths = list(paths)
    sizes = []
    for path in paths[::max(1, len(paths) // sample)][:sample]:
        try:
            with Image.open(path) as image:
                width, height = image.size
        except Exception:  # noqa: BLE001  (the up-front scan reports bad files; they are skipped here)
            continue
        scale = min(1.0, short_side / min(width, height))
        sizes.append(round(width * scale) * round(height * scale) * 3)
    per_image = np.mean(sizes) if sizes else short_side * short_side * 4  # 4:3 if nothing could be read
    return int(len(paths) * per_image * 1.1)  # 10% margin for a sample's error


def _shrunk_uint8(image, short_side):
    """Downscale (never up) so the shorter side is short_side; uint8 to hold 4x more in memory."""
    hw = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.minimum(1.0, short_side / tf.reduce_min(hw))
    image = tf.cond(scale < 1.0, lambda: aug.resize(image, tf.cast(tf.round(hw * scale), tf.int32)),
                    lambda: image)
    return tf.cast(tf.round(tf.clip_by_value(image, *aug.VALUE_RANGE)), tf.uint8)


def _known_length(ds, batches):
    """State the epoch's batch count, which ignore_errors hides from tf.data: with an unknown length
    keras' fit warns "Your input ran out of data" every epoch and runs its optimizer past the data
    (15 steps for 12 batches), shifting every schedule. The up-front scan (loader.select_splits) has
    already dropped the files that do not decode, so the count is exact; a file that still fails
    here makes the epoch end short, and tf.data says so instead of training on a silently shorter epoch."""
    return ds.apply(tf.data.experimental.assert_cardinality(batches))


def _finish(ds, batch_size, count):
    return _known_length(ds.batch(batch_size), math.ceil(count / batch_size)).prefetch(AUTOTUNE)


def validation_dataset(split, *, num_classes, image_size, batch_size, config, transform=None):
    """No augmentation: arrays are only resized if image_size differs; files resize + center crop
    (bilinear at config.eval_crop_ratio, or `transform`: a preset's EvalTransform, e.g. bicubic).

    Not cached like training images: the trainer peeks at one validation batch to build
    the model, and a partly read tf.data cache is discarded with a warning; validation decodes a
    third of what training does per epoch.
    """
    keys, read = _reader(split)
    is_array = isinstance(split, ArraySplit)

    def prepare(key, label):
        image = read(key)
        if is_array:
            if split.images.shape[1] != image_size:
                image = aug.resize(image, (image_size, image_size))
        else:
            image = (transform.at_size(image_size)(image) if transform is not None
                     else aug.center_crop(image, image_size, config.eval_crop_ratio))
        image = tf.ensure_shape(tf.clip_by_value(image, *aug.VALUE_RANGE), (image_size, image_size, 3))
        return image, tf.one_hot(label, num_classes, dtype=tf.float32)

    ds = keys.map(without_autograph(prepare), num_parallel_calls=AUTOTUNE, deterministic=True)
    return _finish(ds if is_array else ds.ignore_errors(log_warning=True), batch_size, len(split))


def smoothed_one_hot(label, num_classes, smoothing):
    """timm's smoothed target: smoothing / K off the true class, 1 - smoothing + smoothing / K on it."""
    off = smoothing / num_classes
    return tf.one_hot(label, num_classes, on_value=1.0 - smoothing + off, off_value=off, dtype=tf.float32)


def train_dataset(split, *, num_classes, image_size, batch_size, config, seed, shuffle_buffer=None,
                  cache_limit_bytes=None, normalization="imagenet", every_image=False, label_smoothing=0.0):
    """Shuffled every epoch (seeded), augmented per image then per batch, as `config` says.

    label_smoothing: folded into the targets as timm's Mixup does (smoothed one-hot, then mixed),
    so the training loss must not smooth again (DataBundle.label_smoothing says so).

    every_image=True keeps the last partial batch (the linear probe's augmented views: every image
    gets its views, and a split smaller than a batch still has one).

    Only full batches: the last partial one is dropped (as timm's training loader does), since a
    batch of one image breaks BatchNorm statistics and leaves MixUp/CutMix nothing to mix. (A split
    smaller than one batch gives an empty epoch; the trainer stops on that with epochs.full_batches'
    error, while evaluation, which reads only the validation split, still works.)
    `normalization` (the models' input normalisation) gives RandAugment's fill colour and the
    random erasing noise statistics.
    """
    keys, read = _reader(split)
    is_array = isinstance(split, ArraySplit)
    short_side = kept_short_side(image_size, config)
    if not is_array and cache_limit_bytes is not None and cached_bytes(split.paths, short_side) <= cache_limit_bytes:
        # Decode once: the shuffle then draws cached images instead of paths (same seeded order).
        keys = keys.map(without_autograph(lambda path, label: (_shrunk_uint8(decode_file(path), short_side), label)),
                        num_parallel_calls=AUTOTUNE, deterministic=True).ignore_errors(log_warning=True).cache()
        read = lambda image: tf.cast(image, tf.float32)  # noqa: E731
    mean, std = aug.pixel_stats(normalization)
    randaugment = (RandAugment(config.randaugment_magnitude, config.randaugment_num_ops,
                               config.randaugment_magnitude_std, fill=fill_colour(mean))
                   if config.randaugment else None)
    batch_mix = BatchMix(config)
    pad = cifar_pad(image_size)

    def prepare(key_label, seed):
        key, label = key_label
        crop_seed, flip_seed, ra_seed, erase_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
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
        if config.random_erasing > 0:
            image = aug.random_erasing(image, erase_seed, config.random_erasing, mean, std)
        return tf.clip_by_value(image, *aug.VALUE_RANGE), smoothed_one_hot(label, num_classes, label_smoothing)

    n = len(split)
    ds = keys.shuffle(min(shuffle_buffer or n, n), seed=seed, reshuffle_each_iteration=True)
    ds = tf.data.Dataset.zip(ds, seed_stream(seed + 1)).map(without_autograph(prepare), num_parallel_calls=AUTOTUNE,
                                                            deterministic=True)
    if not is_array:
        ds = ds.ignore_errors(log_warning=True)  # last resort; the up-front scan should leave nothing to skip
    ds = _known_length(ds.batch(batch_size, drop_remainder=not every_image),
                       math.ceil(n / batch_size) if every_image else n // batch_size)
    if batch_mix.active:
        def mix(batch, batch_seed):
            images, labels = batch_mix(*batch, batch_seed)
            return tf.clip_by_value(images, *aug.VALUE_RANGE), labels  # (float rounding of the blend)

        ds = tf.data.Dataset.zip(ds, seed_stream(seed + 2)).map(without_autograph(mix), num_parallel_calls=AUTOTUNE,
                                                                deterministic=True)
    return ds.prefetch(AUTOTUNE)
