"""Image decoding and evaluation geometry for export, as TF ops (they run inside the SavedModel).

There is one implementation of each: decoding is kconvnext.preprocessing.decode_image and the
resize + crop is kconvnext.preprocessing.EvalTransform, which the data pipeline's validation,
`eval`, `predict` and the probe use too, so serving and evaluation cannot disagree.
Where these functions take `crop_ratio` it is either a crop fraction (bilinear, as the training
pipeline validates) or an EvalTransform (a preset's or a run's: run.json `eval_transform`).
"""
import tensorflow as tf

from kconvnext.preprocessing import DEFAULT_CROP_PCT, EvalTransform
from kconvnext.preprocessing import decode_image as _decode_image

DEFAULT_CROP_RATIO = DEFAULT_CROP_PCT


def check_crop_ratio(crop_ratio):
    if not 0.0 < float(crop_ratio) <= 1.0:
        raise ValueError(f"eval_crop_ratio must be in (0, 1], got {crop_ratio!r}.")
    return float(crop_ratio)


def as_transform(image_size, crop_ratio=DEFAULT_CROP_RATIO):
    """An EvalTransform at image_size from a crop fraction or a transform."""
    if isinstance(crop_ratio, EvalTransform):
        return crop_ratio.at_size(image_size)
    return EvalTransform(int(image_size), check_crop_ratio(crop_ratio))


def transform_for(metadata, image_size, eval_crop_ratio=None):
    """The export's transform: the model's run info (run.json), an explicit crop fraction winning."""
    transform = EvalTransform.from_run_info(metadata or {}, image_size=image_size)
    return transform.with_crop_pct(check_crop_ratio(eval_crop_ratio)) if eval_crop_ratio else transform


def eval_resize_crop(image, image_size, crop_ratio=DEFAULT_CROP_RATIO):
    """One image (H, W, 3), any numeric dtype -> float32 (image_size, image_size, 3) in [0, 255]:
    shorter side resized (antialiased), central crop, clipped to [0, 255]."""
    return as_transform(image_size, crop_ratio)(image)


def decode_image(encoded):
    """JPEG/PNG/GIF/BMP bytes (scalar string) -> uint8 (H, W, 3), as the data pipeline decodes files
    (JPEG with the accurate IDCT, as PIL: float-pixel clients decoding with PIL see the same pixels)."""
    return _decode_image(encoded)


def decode_and_preprocess(encoded, image_size, crop_ratio=DEFAULT_CROP_RATIO):
    """Encoded bytes -> float32 (image_size, image_size, 3) pixels in [0, 255], as evaluation."""
    return eval_resize_crop(decode_image(encoded), image_size, crop_ratio)


def preprocess_batch(encoded_batch, image_size, crop_ratio=DEFAULT_CROP_RATIO):
    """A 1-D string tensor of encoded images -> float32 (B, image_size, image_size, 3)."""
    transform = as_transform(image_size, crop_ratio)
    return tf.map_fn(
        lambda b: transform(decode_image(b)),
        encoded_batch,
        fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32),
    )
