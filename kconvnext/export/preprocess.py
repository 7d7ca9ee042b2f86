"""Image decoding and evaluation geometry for export, as TF ops (they run inside the SavedModel).

There is one implementation of the evaluation preprocessing, in the data pipeline
(kconvnext.data: `augment.center_crop` then a clip to [0, 255], after `tf.io.decode_image`);
these functions only call it for one image so that serving and evaluation cannot disagree.
"""
import tensorflow as tf

from kconvnext.data import augment as _data_augment

DEFAULT_CROP_RATIO = 0.875


def check_crop_ratio(crop_ratio):
    if not 0.0 < float(crop_ratio) <= 1.0:
        raise ValueError(f"eval_crop_ratio must be in (0, 1], got {crop_ratio!r}.")
    return float(crop_ratio)


def eval_resize_crop(image, image_size, crop_ratio=DEFAULT_CROP_RATIO):
    """One image (H, W, 3), any numeric dtype -> float32 (image_size, image_size, 3) in [0, 255].

    Exactly the validation pipeline's geometry for image files (kconvnext.data): shorter side to
    image_size / crop_ratio (bilinear, antialiased), central image_size crop, clip to [0, 255].
    """
    image_size = int(image_size)
    image = tf.cast(image, tf.float32)
    out = _data_augment.center_crop(image, image_size, check_crop_ratio(crop_ratio))
    out = tf.clip_by_value(out, *map(float, _data_augment.VALUE_RANGE))
    return tf.ensure_shape(out, [image_size, image_size, 3])


def decode_image(encoded):
    """JPEG/PNG/GIF/BMP bytes (scalar string) -> uint8 (H, W, 3), as the data pipeline decodes files.

    Note: TF decodes JPEG with libjpeg's fast integer IDCT, which differs from PIL/Pillow (the
    accurate IDCT) by up to 4 levels on most pixels; clients that decode with PIL and use the
    float-pixel signature see slightly different probabilities than the string signature.
    """
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    return tf.ensure_shape(image, [None, None, 3])


def decode_and_preprocess(encoded, image_size, crop_ratio=DEFAULT_CROP_RATIO):
    """Encoded bytes -> float32 (image_size, image_size, 3) pixels in [0, 255], as evaluation."""
    return eval_resize_crop(decode_image(encoded), image_size, crop_ratio)


def preprocess_batch(encoded_batch, image_size, crop_ratio=DEFAULT_CROP_RATIO):
    """A 1-D string tensor of encoded images -> float32 (B, image_size, image_size, 3)."""
    return tf.map_fn(
        lambda b: decode_and_preprocess(b, image_size, crop_ratio),
        encoded_batch,
        fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32),
    )
