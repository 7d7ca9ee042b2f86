"""The one place where pixel normalisation is defined.

Models take float pixels in [0, 255] (what JPEG decoding, the augmentation layers, TF Serving
clients and TFLite callers all naturally have) and normalise as their first layer, so training,
evaluation, export and serving cannot disagree about it. `EvalTransform` is the resize and crop
before that: each weights preset carries the one it was published with.
"""
import math
import re
from dataclasses import asdict, dataclass, fields, replace

import keras
import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

NORMALIZATIONS = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "cifar10": (CIFAR10_MEAN, CIFAR10_STD),
}


def resolve_normalization(spec, channels=3):
    """'imagenet' | 'cifar10' | (mean, std) on [0, 1] | None -> (mean, std) per channel, or None.

    channels=1 (grey images): a named normalisation uses the average of its channel means and
    stds (ImageNet: 0.449 / 0.226); a (mean, std) pair needs one value each.
    """
    if channels not in (1, 3):
        raise ValueError(f"normalization: images must have 1 or 3 channels, got {channels}.")
    if spec is None or spec is False or spec == "none":
        return None
    if isinstance(spec, str):
        if spec not in NORMALIZATIONS:
            raise ValueError(
                f"Unknown normalization {spec!r}; use one of {sorted(NORMALIZATIONS)}, None, "
                "or a (mean, std) pair of per-channel values on [0, 1]."
            )
        mean, std = NORMALIZATIONS[spec]
        if channels == 1:
            return (sum(mean) / 3,), (sum(std) / 3,)
        return mean, std
    mean, std = spec
    if len(mean) != channels or len(std) != channels:
        raise ValueError(
            f"normalization mean and std need {channels} value(s) each for {channels}-channel images, "
            f"got {spec!r}; or pass a named normalization ({', '.join(sorted(NORMALIZATIONS))})."
        )
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def normalization_layer(spec, name="normalization", channels=3):
    """A built-in `keras.layers.Normalization` mapping [0, 255] pixels to (x/255 - mean) / std."""
    resolved = resolve_normalization(spec, channels)
    if resolved is None:
        return None
    mean, std = resolved
    return keras.layers.Normalization(
        mean=[255.0 * m for m in mean],
        variance=[(255.0 * s) ** 2 for s in std],
        name=name,
    )


INTERPOLATIONS = ("bilinear", "bicubic")
DEFAULT_CROP_PCT = 0.875  # 224 of 256: timm's DEFAULT_CROP_PCT, torchvision's resize 256 / crop 224


def resize_for_crop(image_size, crop_pct):
    """The shorter side before the central crop: floor(image_size / crop_pct), as timm's
    transforms_imagenet_eval (`math.floor(img_size / crop_pct)`) and the official ConvNeXt
    evaluation (`int(input_size / crop_pct)`) compute it."""
    return int(math.floor(image_size / crop_pct + 1e-9))


def decode_image(encoded):
    """JPEG/PNG/GIF/BMP bytes (scalar string tensor) -> uint8 (H, W, 3); traceable.

    JPEGs are decoded with libjpeg's accurate integer IDCT, as PIL (and so timm's and torchvision's
    published evaluations) decodes them: TensorFlow's default fast IDCT differs from PIL by ~0.8
    grey levels on average, up to 4 (measured on cats_and_dogs_filtered); the accurate one matches.
    """
    import tensorflow as tf

    image = tf.cond(tf.io.is_jpeg(encoded),
                    lambda: tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE"),
                    lambda: tf.io.decode_image(encoded, channels=3, expand_animations=False))
    return tf.ensure_shape(image, [None, None, 3])


@dataclass(frozen=True)
class EvalTransform:
    """How images are fed to a model at evaluation: shorter side to `resize_size` (antialiased,
    `interpolation`), central `image_size` crop, pixels in [0, 255].

    mean/std ([0, 1] scale) say which normalisation the model expects; kconvnext models apply it
    themselves (their first layer), so callers never normalise: `check_model` asserts they agree.
    The geometry is torchvision's Resize(int) + CenterCrop (what timm and torchvision evaluate
    with): longer side int(resize * long / short), crop offsets round((h - crop) / 2).
    """

    image_size: int = 224
    crop_pct: float = DEFAULT_CROP_PCT
    resize_size: int = None  # default resize_for_crop(image_size, crop_pct)
    interpolation: str = "bilinear"
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD

    def __post_init__(self):
        size, crop = int(self.image_size), float(self.crop_pct)
        if size < 1:
            raise ValueError(f"eval transform: image_size must be a positive integer, got {self.image_size!r}.")
        if not 0.0 < crop <= 1.0:
            raise ValueError(f"eval transform: crop_pct must be in (0, 1], got {self.crop_pct!r}.")
        resize = resize_for_crop(size, crop) if self.resize_size is None else int(self.resize_size)
        if resize < size or abs(size / crop - resize) >= 1.0:
            raise ValueError(f"eval transform: resize_size {self.resize_size!r} does not fit image_size {size} "
                             f"and crop_pct {crop} (expected about image_size / crop_pct = {size / crop:.1f}).")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"eval transform: interpolation must be one of {INTERPOLATIONS}, "
                             f"got {self.interpolation!r}.")
        mean, std = resolve_normalization((self.mean, self.std))
        for name, value in (("image_size", size), ("crop_pct", crop), ("resize_size", resize),
                            ("mean", mean), ("std", std)):
            object.__setattr__(self, name, value)

    @classmethod
    def from_dict(cls, data, where="eval transform"):
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"{where}: unknown eval transform key(s) {sorted(unknown)}; "
                             f"use {[f.name for f in fields(cls)]}.")
        return cls(**data)

    def to_dict(self):
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_run_info(cls, info, image_size=None):
        """The transform a trained model was validated with: run.json's `eval_transform`, else (runs
        written before it) its image size and eval_crop_ratio with the training pipeline's bilinear."""
        if info.get("eval_transform"):
            transform = cls.from_dict(info["eval_transform"], where="run.json eval_transform")
        else:
            mean_std = resolve_normalization(info.get("normalization", "imagenet")) or (IMAGENET_MEAN, IMAGENET_STD)
            transform = cls(image_size=int(info.get("image_size") or image_size or 224),
                            crop_pct=float(info.get("eval_crop_ratio") or DEFAULT_CROP_PCT),
                            mean=mean_std[0], std=mean_std[1])
        return transform.at_size(image_size) if image_size else transform

    def at_size(self, image_size):
        """The same recipe for another crop size (resize by the same crop fraction)."""
        if int(image_size) == self.image_size:
            return self
        return replace(self, image_size=int(image_size), resize_size=None)

    def with_crop_pct(self, crop_pct):
        return replace(self, crop_pct=float(crop_pct), resize_size=None)

    def __call__(self, image):
        """One image (H, W, 3) array/tensor/PIL image, any numeric dtype -> float32 tf tensor
        (image_size, image_size, 3) in [0, 255]. Traceable (tf.data, SavedModel signatures)."""
        import tensorflow as tf

        if hasattr(image, "getbands"):  # a PIL image
            image = np.asarray(image.convert("RGB"))
        image = tf.cast(image, tf.float32)
        shape = tf.shape(image, out_type=tf.int64)
        h, w = shape[0], shape[1]
        short, long = tf.minimum(h, w), tf.maximum(h, w)
        new_long = tf.cast(tf.floor(self.resize_size * tf.cast(long, tf.float64) / tf.cast(short, tf.float64)),
                           tf.int64)
        new_h = tf.where(h <= w, tf.constant(self.resize_size, tf.int64), new_long)
        new_w = tf.where(h <= w, new_long, tf.constant(self.resize_size, tf.int64))
        image = tf.image.resize(image, tf.cast(tf.stack([new_h, new_w]), tf.int32), method=self.interpolation,
                                antialias=True)
        top = tf.cast(tf.round(tf.cast(new_h - self.image_size, tf.float64) / 2.0), tf.int64)
        left = tf.cast(tf.round(tf.cast(new_w - self.image_size, tf.float64) / 2.0), tf.int64)
        image = image[top:top + self.image_size, left:left + self.image_size, :]
        return tf.ensure_shape(tf.clip_by_value(image, 0.0, 255.0), [self.image_size, self.image_size, 3])

    def load(self, path):
        """Decode an image file (decode_image) and apply the transform."""
        import tensorflow as tf

        try:
            image = decode_image(tf.io.read_file(str(path)))
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as err:
            raise ValueError(f"{path}: cannot read as an image ({_op_message(err)}).") from None
        return self(image)

    def check_model(self, model, where="the model"):
        """The model's in-model normalisation must be this transform's mean/std (or absent: the
        caller then normalises); a mismatch would silently cost accuracy."""
        layer = next((layer for layer in model.layers if layer.name == "normalization"), None)
        if layer is None:
            return
        mean = np.ravel(keras.ops.convert_to_numpy(layer.mean)) / 255.0
        std = np.sqrt(np.ravel(keras.ops.convert_to_numpy(layer.variance))) / 255.0
        if not (np.allclose(mean, self.mean, atol=1e-4) and np.allclose(std, self.std, atol=1e-4)):
            raise ValueError(
                f"{where} normalises with mean {np.round(mean.astype(float), 4).tolist()} / std "
                f"{np.round(std.astype(float), 4).tolist()}, "
                f"but its weights were evaluated with mean {list(self.mean)} / std {list(self.std)}; build it "
                "with normalization=(mean, std) of the weights.")


def _op_message(err):
    """A TensorFlow op error's own sentence, without the op/device decoration around it."""
    text = re.sub(r"\{\{[^}]*\}\}|\[Op:[^\]]*\].*$", "", err.message.splitlines()[0])
    return text.strip().rstrip(".") or err.message.splitlines()[0]
