"""The one place where pixel normalisation is defined.

Models take float pixels in [0, 255] (what JPEG decoding, the augmentation layers, TF Serving
clients and TFLite callers all naturally have) and normalise as their first layer, so training,
evaluation, export and serving cannot disagree about it.
"""
import keras

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
