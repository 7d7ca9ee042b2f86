"""Batch Mixup / CutMix as timm's `Mixup(mode='batch', correct_lam=True)` (timm/data/mixup.py).

Per batch, from the batch's element seed (seeds.seed_stream; stateless, so parallel maps reproduce):
with probability mix_prob the batch is mixed, else it passes unchanged. A mixed batch is CutMix
with probability mix_switch_prob when both alphas are > 0 (else the one that is), with ONE
lambda ~ Beta(alpha, alpha) for the whole batch, and image i is mixed with image B-1-i (the batch
reversed, timm's x.flip(0)):
- MixUp: lam * x + (1 - lam) * x_reversed.
- CutMix (timm's rand_bbox): a box of cut_h = int(H sqrt(1 - lam)) by cut_w = int(W sqrt(1 - lam))
  centred on a uniform integer pixel anywhere in the image, clipped to the image, is pasted from
  x_reversed; lam becomes 1 - pasted area / image area. Clipping makes the mean pasted area ~0.32
  for alpha 1 (85% of the boxes touch an edge), where keras.layers.CutMix keeps boxes inside (0.50).
Targets: lam * y + (1 - lam) * y_reversed. With label smoothing the per-image targets are already
timm's smoothed one-hot (pipeline.py), and mixing smoothed one-hots is exactly timm's mixup_target,
for mixed and unmixed batches alike.
"""
import tensorflow as tf

from kconvnext.data.seeds import split as _split


def beta_sample(alpha, seed):
    """One stateless Beta(alpha, alpha) draw, as G1 / (G1 + G2) of Gamma(alpha) draws (float64: for
    small alpha a float32 gamma draw underflows to 0 far more often)."""
    g = tf.random.stateless_gamma((2,), seed, alpha=tf.cast(alpha, tf.float64), dtype=tf.float64)
    return tf.math.divide_no_nan(g[0], g[0] + g[1])


def cutmix_box(height, width, lam, seed):
    """timm's rand_bbox + the lambda correction: (inside mask (H, W, 1) bool, corrected lam)."""
    ratio = tf.sqrt(1.0 - lam)
    cut_h = tf.cast(tf.floor(height * ratio), tf.int32)  # int(H * ratio), H * ratio >= 0
    cut_w = tf.cast(tf.floor(width * ratio), tf.int32)
    y_seed, x_seed = _split(seed, 2)
    cy = tf.random.stateless_uniform((), y_seed, minval=0, maxval=height, dtype=tf.int32)
    cx = tf.random.stateless_uniform((), x_seed, minval=0, maxval=width, dtype=tf.int32)
    top, bottom = tf.clip_by_value(cy - cut_h // 2, 0, height), tf.clip_by_value(cy + cut_h // 2, 0, height)
    left, right = tf.clip_by_value(cx - cut_w // 2, 0, width), tf.clip_by_value(cx + cut_w // 2, 0, width)
    rows, cols = tf.range(height), tf.range(width)
    inside = (((rows >= top) & (rows < bottom))[:, None, None]
              & ((cols >= left) & (cols < right))[None, :, None])
    area = tf.cast((bottom - top) * (right - left), tf.float64)
    return inside, 1.0 - area / float(height * width)


class BatchMix:
    """timm's Mixup(mode='batch') on a batch of (images (B, H, W, C) float32, targets (B, K) float32)."""

    def __init__(self, config):
        self.mixup_alpha = float(config.mixup_alpha)
        self.cutmix_alpha = float(config.cutmix_alpha)
        self.mix_prob = float(config.mix_prob)
        self.switch_prob = float(config.mix_switch_prob)
        self.active = bool(config.mixes)

    def _use_cutmix(self, u):
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            return u < self.switch_prob
        return tf.constant(self.cutmix_alpha > 0)

    def __call__(self, images, labels, seed):
        if not self.active:
            return images, labels
        apply_seed, switch_seed, lam_seed, box_seed = _split(seed, 4)
        apply_u = tf.random.stateless_uniform((), apply_seed)
        use_cutmix = self._use_cutmix(tf.random.stateless_uniform((), switch_seed))
        alpha = tf.where(use_cutmix, tf.constant(self.cutmix_alpha, tf.float64),
                         tf.constant(self.mixup_alpha, tf.float64))
        lam = beta_sample(alpha, lam_seed)
        height, width = images.shape[1], images.shape[2]
        partner = tf.reverse(images, axis=[0])

        def cutmix():
            inside, corrected = cutmix_box(height, width, lam, box_seed)
            return tf.where(inside[None], partner, images), corrected

        def mixup():
            weight = tf.cast(lam, images.dtype)
            return images * weight + partner * (1.0 - weight), lam

        def keep():
            return images, tf.constant(1.0, tf.float64)

        mixed, lam = tf.cond(apply_u < self.mix_prob,
                             lambda: tf.cond(use_cutmix, cutmix, mixup), keep)
        weight = tf.cast(lam, labels.dtype)
        return mixed, labels * weight + tf.reverse(labels, axis=[0]) * (1.0 - weight)
