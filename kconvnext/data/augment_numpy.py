"""The geometric augmentations of augment.py in numpy/PIL, for the TensorFlow-free pipeline.

Same definitions as the tf.data versions (reflect-pad-and-crop, torchvision's random resized crop
resized bicubic, validation resize-shorter-side-then-center-crop); the random draws differ (numpy's
generator, not tf's stateless seeds), and PIL's resize differs from tf.image.resize by a fraction
of a grey level on average (PIL rounds to uint8 between its two passes).
"""
import math

import numpy as np
from PIL import Image

ASPECT_RANGE = (3 / 4, 4 / 3)  # random resized crop: width / height, log-uniform
CROP_ATTEMPTS = 10
TRAIN_INTERPOLATION = "bicubic"  # ConvNeXt's --train_interpolation (timm's RandomResizedCropAndInterpolation)
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


def crop_params(height, width, scale, rng):
    """(top, left, h, w) of the random resized crop: torchvision's RandomResizedCrop.get_params, the
    algorithm augment.crop_box draws with tf's stateless seeds (see it for the definition)."""
    area = width * height
    log_ratio = (math.log(ASPECT_RANGE[0]), math.log(ASPECT_RANGE[1]))
    for _ in range(CROP_ATTEMPTS):
        target = area * rng.uniform(*scale)
        ratio = math.exp(rng.uniform(*log_ratio))
        w, h = int(round(math.sqrt(target * ratio))), int(round(math.sqrt(target / ratio)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    in_ratio = width / height  # no draw fits: the central crop, clamped to the aspect range
    w = int(round(height * ASPECT_RANGE[1])) if in_ratio > ASPECT_RANGE[1] else width
    h = int(round(width / ASPECT_RANGE[0])) if in_ratio < ASPECT_RANGE[0] else height
    return (height - h) // 2, (width - w) // 2, h, w


def resized_crop_pil(image, box, size):
    """PIL image, (top, left, h, w) -> (size, size, 3) uint8: torchvision's resized_crop on PIL (crop,
    then resize with the recipe's bicubic)."""
    top, left, h, w = box
    return np.asarray(image.crop((left, top, left + w, top + h)).resize((size, size), Image.BICUBIC))


def random_resized_crop_pil(image, size, scale, rng):
    """PIL image -> (size, size, 3) uint8 of a random crop (area fraction in `scale`)."""
    return resized_crop_pil(image, crop_params(image.height, image.width, scale, rng), size)


def center_crop_pil(image, size, crop_ratio):
    """Validation: shorter side to size / crop_ratio, then the central size x size."""
    scale = (size / crop_ratio) / min(image.width, image.height)
    w = max(int(round(image.width * scale)), size)
    h = max(int(round(image.height * scale)), size)
    resized = np.asarray(image.resize((w, h), Image.BILINEAR))
    top, left = (h - size) // 2, (w - size) // 2
    return resized[top:top + size, left:left + size]
