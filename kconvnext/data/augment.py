"""The recipe's augmentations as tf.data functions: geometry per image, Keras layers for the rest.

Per image (parallel map): random resized crop (or CIFAR's pad-and-crop), horizontal flip and
RandAugment, using the ops of keras.layers.RandAugment but choosing them per image with
tf.switch_case (Keras' own call computes all 11 ops and picks one per batch, about 5x the work and
one choice for the whole batch). Per batch: keras.layers.RandomErasing, then MixUp or CutMix.
All randomness comes from element seeds (see seeds.py), so a seed reproduces the batches.
Pixels stay float32 in [0, 255] throughout (value_range=(0, 255); clipped once at the end).
"""
import contextlib
import functools

import keras
import tensorflow as tf

from kconvnext.data.augment_numpy import CIFAR_PAD
from kconvnext.data.seeds import ElementSeed

VALUE_RANGE = (0, 255)


@contextlib.contextmanager
def tf_backend(layers):
    """Run Keras layers on TF ops while tf.data traces them, whatever KERAS_BACKEND is (as Keras does)."""
    layers = [layer for layer in layers if layer is not None]
    for layer in layers:
        layer.backend.set_backend("tensorflow")
    try:
        yield
    finally:
        for layer in layers:
            layer.backend.reset()


def randaugment_factor(magnitude):
    """timm's magnitude (0..10, the recipe's m9) -> keras.layers.RandAugment's factor (0..1)."""
    return float(magnitude) / 10.0


def _split(seed, n):
    return tf.unstack(tf.random.experimental.stateless_split(seed, n))


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
    """Validation: shorter side to size / crop_ratio, then the central size x size."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = (size / crop_ratio) / tf.reduce_min(shape)
    resized_hw = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), size)
    image = resize(image, resized_hw)
    top, left = (resized_hw[0] - size) // 2, (resized_hw[1] - size) // 2
    return image[top:top + size, left:left + size, :]


class RandAugmentPerImage:
    """keras.layers.RandAugment's ops and magnitudes, num_ops of them drawn per image."""

    def __init__(self, magnitude, num_ops, image_size):
        self.layer = keras.layers.RandAugment(value_range=VALUE_RANGE, num_ops=int(num_ops),
                                              factor=randaugment_factor(magnitude))
        self.layer.build((1, image_size, image_size, 3))
        self.ops = [getattr(self.layer, name) for name in self.layer._AUGMENT_LAYERS]
        self.seed = ElementSeed()

    def _apply(self, op, images):
        transformation = op.get_random_transformation(images, training=True, seed=self.seed)
        out = tf.cast(op.transform_images(images, transformation, training=True), tf.float32)
        return tf.ensure_shape(out, images.shape)

    def __call__(self, image, seed):
        choose_seed, ops_seed = _split(seed, 2)
        picks = tf.random.stateless_uniform((self.layer.num_ops,), choose_seed, 0, len(self.ops), tf.int32)

        def one_op(i, images):  # traced once (a while loop), not once per op: tracing 11 branches is slow
            with self.seed.using(tf.random.experimental.stateless_fold_in(ops_seed, tf.cast(i, tf.int64))), \
                    tf_backend(self.ops):
                images = tf.switch_case(picks[i], [functools.partial(self._apply, op, images) for op in self.ops])
            return i + 1, images

        _, images = tf.while_loop(lambda i, _: i < self.layer.num_ops, one_op, (tf.constant(0), image[None]))
        return tf.clip_by_value(images[0], *VALUE_RANGE)


class BatchAugment:
    """Per batch: RandomErasing (per-image probability), then MixUp or CutMix on one-hot labels."""

    def __init__(self, config):
        self.config = config
        self.seed = ElementSeed()
        self.erasing = (keras.layers.RandomErasing(factor=(config.random_erasing,) * 2, value_range=VALUE_RANGE)
                        if config.random_erasing > 0 else None)
        self.mixup = keras.layers.MixUp(alpha=config.mixup_alpha) if config.mixup_alpha > 0 else None
        # CutMix's factor bounds the Beta(alpha, alpha) parameter it samples; (a, a) fixes alpha = a.
        self.cutmix = keras.layers.CutMix(factor=(config.cutmix_alpha,) * 2) if config.cutmix_alpha > 0 else None
        if not config.mix_prob:
            self.mixup = self.cutmix = None

    @property
    def active(self):
        return any(x is not None for x in (self.erasing, self.mixup, self.cutmix))

    def _mix(self, layer, images, labels):
        data = {"images": images, "labels": labels}
        transformation = layer.get_random_transformation(data, training=True, seed=self.seed)
        return (tf.cast(layer.transform_images(images, transformation, training=True), tf.float32),
                tf.cast(layer.transform_labels(labels, transformation, training=True), tf.float32))

    def __call__(self, images, labels, seed):
        draw_seed, layer_seed = _split(seed, 2)
        with self.seed.using(layer_seed), tf_backend([self.erasing, self.mixup, self.cutmix]):
            if self.erasing is not None:
                transformation = self.erasing.get_random_transformation(images, training=True, seed=self.seed)
                images = tf.cast(self.erasing.transform_images(images, transformation, training=True), tf.float32)
            images, labels = self._maybe_mix(images, labels, draw_seed)
        return tf.clip_by_value(images, *VALUE_RANGE), labels

    def _maybe_mix(self, images, labels, seed):
        if self.mixup is None and self.cutmix is None:
            return images, labels
        apply_u, switch_u = tf.unstack(tf.random.stateless_uniform((2,), seed))
        keep = lambda: (images, labels)  # noqa: E731
        mixup = functools.partial(self._mix, self.mixup, images, labels) if self.mixup else None
        cutmix = functools.partial(self._mix, self.cutmix, images, labels) if self.cutmix else None
        if mixup and cutmix:
            mixed = lambda: tf.cond(switch_u < self.config.mix_switch_prob, cutmix, mixup)  # noqa: E731
        else:
            mixed = mixup or cutmix
        return tf.cond(apply_u < self.config.mix_prob, mixed, keep)
