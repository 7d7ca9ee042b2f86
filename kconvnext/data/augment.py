"""The recipe's augmentations as tf.data functions, in timm's order.

Per image (parallel map): random resized crop (or CIFAR's pad-and-crop), horizontal flip, timm's
RandAugment (randaugment.py) and timm's pixel-noise random erasing. Per batch: timm's Mixup / CutMix
(mixing.py). All randomness comes from element seeds (see seeds.py), so a seed reproduces the batches.
Pixels are float32 on the [0, 255] scale throughout: the resized crop is clipped to it (timm's PIL
image is uint8 after its resize), the erasing noise can leave it, and the end clips once more.
"""
import math

import tensorflow as tf

from kconvnext.data.augment_numpy import ASPECT_RANGE, CIFAR_PAD, CROP_ATTEMPTS, TRAIN_INTERPOLATION
from kconvnext.data.seeds import split as _split
from kconvnext.preprocessing import EvalTransform, resolve_normalization

VALUE_RANGE = (0, 255)


def resize(image, size, antialias=True):
    return tf.image.resize(image, size, method="bilinear", antialias=antialias)


def _first_fitting_box(height, width, area_range, aspect_range, seed, fits, attempts):
    """The box sampler torchvision's RandomResizedCrop and timm's RandomErasing share: up to `attempts`
    boxes of area uniform in area_range (fractions of the image), aspect (width / height) log-uniform in
    aspect_range, sides rounded half to even (Python's round); the first with fits(h, w) is placed at
    uniform integer offsets. Float64, as Python's floats. Returns top, left, h, w (int32) and whether one fit."""
    u = tf.unstack(tf.random.stateless_uniform((4, attempts), seed, dtype=tf.float64))
    height, width = tf.cast(height, tf.int32), tf.cast(width, tf.int32)
    area = (area_range[0] + (area_range[1] - area_range[0]) * u[0]) * tf.cast(height * width, tf.float64)
    low, high = math.log(aspect_range[0]), math.log(aspect_range[1])
    aspect = tf.exp(low + (high - low) * u[1])
    w = tf.cast(tf.round(tf.sqrt(area * aspect)), tf.int32)
    h = tf.cast(tf.round(tf.sqrt(area / aspect)), tf.int32)
    ok = fits(h, w)
    first = tf.argmax(tf.cast(ok, tf.int32), output_type=tf.int32)
    h, w = h[first], w[first]

    def offset(u, room):  # uniform in 0..room, as random.randint(0, room)
        room = tf.maximum(room, 0)
        return tf.minimum(tf.cast(u * tf.cast(room + 1, tf.float64), tf.int32), room)

    return offset(u[2][first], height - h), offset(u[3][first], width - w), h, w, ok[first]


def crop_box(shape, scale, seed):
    """(top, left, height, width) int32 of the random resized crop of an image of `shape` (H, W, ...):
    torchvision's RandomResizedCrop.get_params, which timm's RandomResizedCropAndInterpolation uses.
    Area uniform in `scale` x the image's, aspect log-uniform in [3/4, 4/3], the first of 10 draws
    that fits; if none does, the central crop clamped to that aspect range."""
    height, width = tf.cast(shape[0], tf.int32), tf.cast(shape[1], tf.int32)
    top, left, h, w, found = _first_fitting_box(
        height, width, scale, ASPECT_RANGE, seed, lambda h, w: (0 < w) & (w <= width) & (0 < h) & (h <= height),
        attempts=CROP_ATTEMPTS)
    in_ratio = tf.cast(width, tf.float64) / tf.cast(height, tf.float64)
    low, high = ASPECT_RANGE
    fallback_w = tf.where(in_ratio > high, tf.cast(tf.round(tf.cast(height, tf.float64) * high), tf.int32), width)
    fallback_h = tf.where(in_ratio < low, tf.cast(tf.round(tf.cast(width, tf.float64) / low), tf.int32), height)
    box = tf.where(found, tf.stack([top, left, h, w]),
                   tf.stack([(height - fallback_h) // 2, (width - fallback_w) // 2, fallback_h, fallback_w]))
    return tuple(tf.unstack(box))


def random_resized_crop(image, size, scale, seed):
    """crop_box's crop resized to size x size, bicubic (the recipe's --train_interpolation) with
    antialiasing, as PIL's bicubic when it downscales; clipped to [0, 255] as PIL's uint8 result is
    (bicubic overshoots at edges), so RandAugment sees the pixel range timm's ops see."""
    top, left, h, w = crop_box(tf.shape(image), scale, seed)
    resized = tf.image.resize(image[top:top + h, left:left + w], (size, size), method=TRAIN_INTERPOLATION,
                              antialias=True)
    return tf.clip_by_value(resized, *VALUE_RANGE)


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
    width_per_height = (1 / ERASE_ASPECT[1], 1 / ERASE_ASPECT[0])  # timm draws h / w; the same log-uniform law
    top, left, box_h, box_w, fits = _first_fitting_box(
        height, width, ERASE_AREA, width_per_height, box_seed, lambda h, w: (h < height) & (w < width),
        attempts=ERASE_ATTEMPTS)
    rows, cols = tf.range(height), tf.range(width)
    inside = (((rows >= top) & (rows < top + box_h))[:, None, None]
              & ((cols >= left) & (cols < left + box_w))[None, :, None])

    def erase():
        noise = tf.constant(mean) + tf.constant(std) * tf.random.stateless_normal(tf.shape(image), noise_seed)
        return tf.where(inside, noise, image)

    chosen = tf.random.stateless_uniform((), apply_seed) < probability
    return tf.cond(chosen & fits, erase, lambda: image)
