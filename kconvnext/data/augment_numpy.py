"""The geometric augmentations of augment.py in numpy/PIL, for the TensorFlow-free pipeline.

Same definitions as the tf.data versions (reflect-pad-and-crop, Inception crop with area in
`scale` and aspect ratio in [3/4, 4/3], validation resize-shorter-side-then-center-crop); the
random draws differ, and PIL's bilinear resize differs from tf.image.resize by a few gray levels.
"""
import math

import numpy as np
from PIL import Image

ASPECT_RANGE = (3 / 4, 4 / 3)
CIFAR_PAD = 4  # pixels at 32 px; both pipelines scale it with the image size (cifar_pad)


def cifar_pad(image_size):
    """The CIFAR crop's padding for arrays resized to image_size (4 px at the native 32)."""
    return max(1, round(CIFAR_PAD * image_size / 32))


def pad_and_crop(image, size, rng, pad):
    """(H, W, 3) uint8 -> reflect-pad by `pad`, then a random size x size window."""
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    top = rng.integers(0, padded.shape[0] - size + 1)
    left = rng.integers(0, padded.shape[1] - size + 1)
    return padded[top:top + size, left:left + size]


def _crop_box(width, height, scale, rng, attempts=10):
    area = width * height
    log_ratio = (math.log(ASPECT_RANGE[0]), math.log(ASPECT_RANGE[1]))
    for _ in range(attempts):
        target = area * rng.uniform(*scale)
        ratio = math.exp(rng.uniform(*log_ratio))
        w, h = int(round(math.sqrt(target * ratio))), int(round(math.sqrt(target / ratio)))
        if 0 < w <= width and 0 < h <= height:
            left, top = rng.integers(0, width - w + 1), rng.integers(0, height - h + 1)
            return left, top, left + w, top + h
    return 0, 0, width, height  # as tf's sampler: the whole image when no draw fits


def random_resized_crop_pil(image, size, scale, rng):
    """PIL image -> (size, size, 3) uint8 of a random crop (area fraction in `scale`)."""
    box = _crop_box(image.width, image.height, scale, rng)
    return np.asarray(image.resize((size, size), Image.BILINEAR, box=box))


def center_crop_pil(image, size, crop_ratio):
    """Validation: shorter side to size / crop_ratio, then the central size x size."""
    scale = (size / crop_ratio) / min(image.width, image.height)
    w = max(int(round(image.width * scale)), size)
    h = max(int(round(image.height * scale)), size)
    resized = np.asarray(image.resize((w, h), Image.BILINEAR))
    top, left = (h - size) // 2, (w - size) // 2
    return resized[top:top + size, left:left + size]
