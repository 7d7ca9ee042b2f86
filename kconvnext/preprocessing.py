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


def resolve_normalization(spec):
    """'imagenet' | 'cifar10' | (mean, std) on [0, 1] | None -> (mean, std) or None."""
    if spec is None or spec is False or spec == "none":
        return None
    if isinstance(spec, str):
        if spec not in NORMALIZATIONS:
            raise ValueError(
                f"Unknown normalization {spec!r}; use one of {sorted(NORMALIZATIONS)}, None, "
                "or a (mean, std) pair of per-channel values on [0, 1]."
            )
        return NORMALIZATIONS[spec]
    mean, std = spec
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f"normalization mean and std need 3 values each, got {spec!r}.")
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def normalization_layer(spec, name="normalization"):
    """A built-in `keras.layers.Normalization` mapping [0, 255] pixels to (x/255 - mean) / std."""
    resolved = resolve_normalization(spec)
    if resolved is None:
        return None
    mean, std = resolved
    return keras.layers.Normalization(
        mean=[255.0 * m for m in mean],
        variance=[(255.0 * s) ** 2 for s in std],
        name=name,
    )
