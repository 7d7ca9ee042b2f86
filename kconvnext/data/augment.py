"""The recipe's augmentations as tf.data functions, in timm's order.

Per image (parallel map): random resized crop (or CIFAR's pad-and-crop), horizontal flip, timm's
RandAugment (randaugment.py) and timm's pixel-noise random erasing. Per batch: timm's Mixup / CutMix
(mixing.py). All randomness comes from element seeds (see seeds.py), so a seed reproduces the batches.
Pixels stay float32 in [0, 255] throughout (clipped once at the end).
"""
import math

import tensorflow as tf

from kconvnext.data.augment_numpy import CIFAR_PAD
from kconvnext.data.seeds import split as _split
from kconvnext.preprocessing import EvalTransform, resolve_normalization

VALUE_RANGE = (0, 255)


def resize(image, size, antialias=True):
    return tf.image.resize(image, size, method="bilinear", antialias=antialias)


def random_resized_crop(image, size, scale, seed):
    """Inception-style crop: area in `scale`, aspect ratio in [3/4, 4/3], resized to size x size."""
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seed,
        min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3), area_range=tuple(scale),
        max_attempts=10, use_image_if_no_bounding_boxes=True)
    return resize(tf.slice(image, begin, crop_size), (size, size))


def pad_and_crop(image, size, seed, pad=CIFAR_PAD):
    """The usual CIFAR crop: reflect-pad `pad` pixels, then a random size x size window."""
    padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    return tf.image.stateless_random_crop(padded, (size, size, 3), seed=seed)


def center_crop(image, size, crop_ratio):
    """Validation: shorter side to floor(size / crop_ratio) (bilinear), then the central size x size:
    the one implementation, kconvnext.preprocessing.EvalTransform."""
    return EvalTransform(int(size), float(crop_ratio))(image)


def pixel_stats(normalization):
    """Per-channel (mean, std) in grey levels of the normalisation the models apply ('imagenet',
    'cifar10', a (mean, std) pair on [0, 1]); None (models that do not normalise) falls back to ImageNet's."""
    mean, std = resolve_normalization(normalization) or resolve_normalization("imagenet")
    return tuple(255.0 * m for m in mean), tuple(255.0 * s for s in std)


ERASE_AREA = (0.02, 1 / 3)  # fraction of the image, uniform
ERASE_ASPECT = (0.3, 1 / 0.3)  # height / width, log-uniform
ERASE_ATTEMPTS = 10


def random_erasing(image, seed, probability, mean, std):
    """timm's RandomErasing(mode='pixel', count=1) on one image: with `probability`, one box of area
    2%-33% and aspect 0.3-3.3 (the first of 10 draws that fits) becomes per-pixel noise.

    timm erases after normalising, with N(0, 1) noise; in our [0, 255] pixels that is
    mean + std x N(0, 1) per pixel and channel (`mean`, `std` from pixel_stats), so the model sees
    the same noise. The pipeline's final clip to [0, 255] cuts the tails (3-5% of the values with ImageNet's stats).
    """
    apply_seed, box_seed, noise_seed = _split(seed, 3)
    height, width = image.shape[0], image.shape[1]
    u = tf.random.stateless_uniform((4, ERASE_ATTEMPTS), box_seed)
    area = (ERASE_AREA[0] + (ERASE_AREA[1] - ERASE_AREA[0]) * u[0]) * float(height * width)
    low, high = math.log(ERASE_ASPECT[0]), math.log(ERASE_ASPECT[1])
    aspect = tf.exp(low + (high - low) * u[1])
    box_h = tf.cast(tf.round(tf.sqrt(area * aspect)), tf.int32)
    box_w = tf.cast(tf.round(tf.sqrt(area / aspect)), tf.int32)
    fits = (box_h < height) & (box_w < width)
    first = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)
    box_h, box_w = box_h[first], box_w[first]
    top = tf.cast(u[2][first] * tf.cast(height - box_h + 1, tf.float32), tf.int32)
    left = tf.cast(u[3][first] * tf.cast(width - box_w + 1, tf.float32), tf.int32)
    rows, cols = tf.range(height), tf.range(width)
    inside = (((rows >= top) & (rows < top + box_h))[:, None, None]
              & ((cols >= left) & (cols < left + box_w))[None, :, None])

    def erase():
        noise = tf.constant(mean) + tf.constant(std) * tf.random.stateless_normal(tf.shape(image), noise_seed)
        return tf.where(inside, noise, image)

    chosen = tf.random.stateless_uniform((), apply_seed) < probability
    return tf.cond(chosen & fits[first], erase, lambda: image)
