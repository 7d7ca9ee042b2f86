"""timm's RandAugment "rand-m9-mstd0.5-inc1" (the ConvNeXt paper's setting) as seeded per-image TF ops.

Why not keras.layers.RandAugment: its `factor` f becomes a one-sided (0, f) range for every op, so at
f = 0.9 rotations go anywhere in 0-324 degrees, translations 0 to +90% one way only, brightness only
adds (0-230 grey levels), contrast and colour move one way, and every chosen op is always applied.
The paper trained with timm's policy instead, which this module follows:

- `num_ops` ops per image, drawn with replacement from the 15 "increasing" ops of OPS;
- each applied with probability 0.5 (APPLY_PROB), so on average half of the drawn ops are skipped;
- magnitude m (0..10) plus N(0, magnitude_std) noise, drawn anew for each op, clipped to [0, 10];
- a random sign for the signed ops: rotate +-30 deg x m/10, shear +-0.3 x m/10, translate
  +-45% x m/10 of the size; colour/contrast/brightness/sharpness blend factor 1 +- 0.9 x m/10;
- posterize/solarize grow stronger with m ("increasing"), solarize-add adds up to 110 x m/10;
- affine ops fill the uncovered area with the data set's mean colour (timm's img_mean).

Departures from timm's PIL code: affine ops interpolate bilinearly (timm's ConvNeXt recipe uses
bicubic; TF's projective transform has only nearest and bilinear), and pixels stay float32 (PIL
rounds to uint8 after every op; the integer ops here round first, every op clips to [0, 255]).
"""
import math

import tensorflow as tf

APPLY_PROB = 0.5      # timm's rand_augment_ops: every op is applied with probability 0.5
MAX_MAGNITUDE = 10.0  # timm's _LEVEL_DENOM: magnitude m means level m / 10
IMAGENET_FILL = (124.0, 116.0, 104.0)  # timm's img_mean for ImageNet: round(255 x mean)
_LUMA = (0.299, 0.587, 0.114)  # PIL's RGB -> "L" weights (ImageEnhance's grey)


def _clip(image):
    return tf.clip_by_value(image, 0.0, 255.0)


def _as_int(image):
    """The uint8 value PIL would hold, as int32 for the bit and histogram ops."""
    return tf.cast(tf.round(_clip(image)), tf.int32)


def _grey(image):
    return tf.tensordot(image, tf.constant(_LUMA), axes=1)[..., None]


def _blend(degenerate, image, factor):
    """PIL ImageEnhance: factor 0 gives `degenerate`, 1 the image, >1 moves past it."""
    return _clip(degenerate + factor * (image - degenerate))


def _affine(image, matrix, fill):
    """Resample with the 2x3 `matrix` mapping output (x, y) to input pixel coordinates (PIL's convention).

    The transform fills with one scalar, so the image is shifted by the fill colour, filled with 0 and
    shifted back: bilinear weights sum to 1, so inside pixels are unchanged and outside ones get `fill`.
    """
    fill = tf.constant(fill, tf.float32)
    transform = tf.concat([tf.reshape(tf.cast(matrix, tf.float32), [6]), tf.zeros([2])], 0)[None]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=(image - fill)[None], transforms=transform, output_shape=tf.shape(image)[:2],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")
    return _clip(out[0] + fill)


def rotation_degrees(level, sign):
    """timm's Rotate: +-30 degrees at level 1 (m10); positive is counter-clockwise, as PIL's rotate."""
    return sign * level * 30.0


def enhance_factor(level, sign):
    """timm's *Increasing enhance ops: 1 +- 0.9 x level, kept >= 0.1."""
    return tf.maximum(0.1, 1.0 + sign * 0.9 * level)


def rotate(image, level, sign, fill):
    theta = rotation_degrees(level, sign) * (math.pi / 180.0)
    hw = tf.cast(tf.shape(image)[:2], tf.float32)
    cy, cx = (hw[0] - 1.0) / 2.0, (hw[1] - 1.0) / 2.0
    cos, sin = tf.cos(theta), tf.sin(theta)
    # Output pixel (x, y) reads input c + R(-theta)(p - c), with y pointing down: counter-clockwise.
    return _affine(image, [cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy], fill)


def shear_x(image, level, sign, fill):
    return _affine(image, [1.0, sign * level * 0.3, 0.0, 0.0, 1.0, 0.0], fill)


def shear_y(image, level, sign, fill):
    return _affine(image, [1.0, 0.0, 0.0, sign * level * 0.3, 1.0, 0.0], fill)


def translate_x(image, level, sign, fill):
    pixels = sign * level * 0.45 * tf.cast(tf.shape(image)[1], tf.float32)
    return _affine(image, [1.0, 0.0, pixels, 0.0, 1.0, 0.0], fill)


def translate_y(image, level, sign, fill):
    pixels = sign * level * 0.45 * tf.cast(tf.shape(image)[0], tf.float32)
    return _affine(image, [1.0, 0.0, 0.0, 0.0, 1.0, pixels], fill)


def auto_contrast(image, level, sign, fill):
    """Stretch each channel to the full range (PIL's autocontrast, no cutoff); flat channels stay."""
    low = tf.reduce_min(image, axis=(0, 1), keepdims=True)
    high = tf.reduce_max(image, axis=(0, 1), keepdims=True)
    scale = tf.where(high > low, 255.0 / tf.maximum(high - low, 1e-6), 1.0)
    return _clip(tf.where(high > low, (image - low) * scale, image))


def equalize(image, level, sign, fill):
    """PIL's per-channel histogram equalisation (identity when a channel has one value)."""
    values = _as_int(image)
    flat = tf.reshape(values, [-1, 3]) + tf.constant([0, 256, 512])
    hist = tf.reshape(tf.math.bincount(tf.reshape(flat, [-1]), minlength=768, maxlength=768), [3, 256])
    top = tf.reduce_max(tf.reshape(values, [-1, 3]), axis=0)  # the last non-empty bin of each channel
    step = (tf.reduce_sum(hist, axis=1) - tf.gather(hist, top, batch_dims=1)) // 255
    safe_step = tf.maximum(step, 1)[:, None]
    lut = tf.minimum((safe_step // 2 + tf.cumsum(hist, axis=1, exclusive=True)) // safe_step, 255)
    lut = tf.where(step[:, None] > 0, lut, tf.range(256)[None])
    out = tf.stack([tf.gather(lut[c], values[..., c]) for c in range(3)], axis=-1)
    return tf.cast(out, tf.float32)


def invert(image, level, sign, fill):
    return 255.0 - _clip(image)


def posterize(image, level, sign, fill):
    """Keep 4 - int(4 x level) high bits (timm's PosterizeIncreasing; 1 bit at m9, 0 = black at m10)."""
    shift = 4 + tf.cast(tf.floor(level * 4.0), tf.int32)
    return tf.cast(tf.bitwise.left_shift(tf.bitwise.right_shift(_as_int(image), shift), shift), tf.float32)


def solarize(image, level, sign, fill):
    """Invert values >= 256 - int(256 x level) (timm's SolarizeIncreasing)."""
    threshold = 256.0 - tf.floor(level * 256.0)
    values = tf.cast(_as_int(image), tf.float32)
    return tf.where(values >= threshold, 255.0 - values, values)


def solarize_add(image, level, sign, fill):
    """Add int(110 x level) to values below 128."""
    values = tf.cast(_as_int(image), tf.float32)
    return tf.where(values < 128.0, tf.minimum(255.0, values + tf.floor(level * 110.0)), values)


def color(image, level, sign, fill):
    return _blend(_grey(image), image, enhance_factor(level, sign))


def contrast(image, level, sign, fill):
    """Blend with the image's mean grey (PIL's Contrast)."""
    mean = tf.round(tf.reduce_mean(_grey(image)))
    return _blend(mean, image, enhance_factor(level, sign))


def brightness(image, level, sign, fill):
    return _blend(tf.zeros_like(image), image, enhance_factor(level, sign))


def sharpness(image, level, sign, fill):
    """Blend with PIL's SMOOTH filter (3x3, centre weight 5 of 13); border pixels stay as they are."""
    kernel = tf.constant([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]) / 13.0
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, 3, 1])
    smooth = tf.nn.depthwise_conv2d(image[None], kernel, [1, 1, 1, 1], "VALID")[0]
    inner = tf.pad(tf.ones_like(smooth, tf.bool), [[1, 1], [1, 1], [0, 0]])
    degenerate = tf.where(inner, tf.pad(smooth, [[1, 1], [1, 1], [0, 0]]), image)
    return _blend(degenerate, image, enhance_factor(level, sign))


# timm's _RAND_INCREASING_TRANSFORMS, in its order (names as timm spells them).
OPS = {
    "AutoContrast": auto_contrast,
    "Equalize": equalize,
    "Invert": invert,
    "Rotate": rotate,
    "PosterizeIncreasing": posterize,
    "SolarizeIncreasing": solarize,
    "SolarizeAdd": solarize_add,
    "ColorIncreasing": color,
    "ContrastIncreasing": contrast,
    "BrightnessIncreasing": brightness,
    "SharpnessIncreasing": sharpness,
    "ShearX": shear_x,
    "ShearY": shear_y,
    "TranslateXRel": translate_x,
    "TranslateYRel": translate_y,
}


def fill_colour(mean_pixels):
    """timm's img_mean: the data set's per-channel mean in whole grey levels ((124, 116, 104) for ImageNet)."""
    return tuple(float(round(m)) for m in mean_pixels)


class RandAugment:
    """rand-m{magnitude}-n{num_ops}-mstd{magnitude_std}-inc1 on one float32 [0, 255] image, seeded.

    `ops` picks a subset of OPS (tests isolate one op this way); `fill` is the affine ops' colour.
    """

    def __init__(self, magnitude=9, num_ops=2, magnitude_std=0.5, fill=IMAGENET_FILL, ops=tuple(OPS)):
        unknown = sorted(set(ops) - set(OPS))
        if unknown:
            raise ValueError(f"RandAugment: unknown op(s) {unknown}; valid: {list(OPS)}.")
        if not (0 <= magnitude <= MAX_MAGNITUDE and 0 <= magnitude_std < math.inf and int(num_ops) >= 1):
            raise ValueError(f"RandAugment: need 0 <= magnitude <= 10, a finite magnitude_std >= 0, num_ops >= 1; "
                             f"got magnitude={magnitude}, magnitude_std={magnitude_std}, num_ops={num_ops}.")
        self.magnitude, self.num_ops, self.magnitude_std = float(magnitude), int(num_ops), float(magnitude_std)
        self.fill = tuple(float(v) for v in fill)
        self.ops = [OPS[name] for name in ops]

    def draw(self, seed):
        """Per op slot: op index, applied?, level (magnitude / 10 after noise and clipping), sign +-1."""
        op_seed, apply_seed, noise_seed, sign_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
        n = (self.num_ops,)
        op = tf.random.stateless_uniform(n, op_seed, 0, len(self.ops), tf.int32)
        applied = tf.random.stateless_uniform(n, apply_seed) < APPLY_PROB
        magnitude = self.magnitude + self.magnitude_std * tf.random.stateless_normal(n, noise_seed)
        level = tf.clip_by_value(magnitude, 0.0, MAX_MAGNITUDE) / MAX_MAGNITUDE
        sign = tf.where(tf.random.stateless_uniform(n, sign_seed) < 0.5, -1.0, 1.0)
        return {"op": op, "applied": applied, "level": level, "sign": sign}

    def __call__(self, image, seed):
        d = self.draw(seed)
        # A skipped op is one more branch (the identity), so one switch_case does both.
        branch = tf.where(d["applied"], d["op"], len(self.ops))

        def one_op(i, image):  # a while loop traces the 15 branches once, not once per op
            branches = [lambda op=op: op(image, d["level"][i], d["sign"][i], self.fill) for op in self.ops]
            out = tf.switch_case(branch[i], branches + [lambda: image])
            return i + 1, tf.ensure_shape(out, image.shape)

        _, image = tf.while_loop(lambda i, _: i < self.num_ops, one_op, (tf.constant(0), image))
        return image
