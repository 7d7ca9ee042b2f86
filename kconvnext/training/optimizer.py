"""AdamW as the ConvNeXt recipe uses it: torch.optim.AdamW's arithmetic (see update_step), no decay
on biases/norms/layer-scale, optional per-layer lr (and decay) scales, and an EMA that covers the
BatchNorm statistics as well as the weights. tests/test_adamw_torch.py checks the steps against torch's own numbers.

Why a subclass rather than `AdamW(...).exclude_from_weight_decay(var_names=...)` on a stock
optimizer: the exclusion is not part of the optimizer's config, so a `.keras` checkpoint reloaded
for `--resume` would silently decay every variable again. Here the exclusion names and the
per-layer lr scales are constructor arguments, saved with the checkpoint and re-applied on load.

Exclusion matches `variable.name` (Keras' rule), which for our layers is the last path component:
"bias" (every bias), "gamma"/"beta" (LayerNorm, BatchNorm and LayerScale's `gamma`).

Layer-wise lr scales come from layer_decay.py and the EMA of BatchNorm statistics from buffer_ema.py
(BufferEMA, a mixin).
"""
import math

import keras
from keras import ops

from kconvnext.training.buffer_ema import BufferEMA
from kconvnext.training.layer_decay import layer_decay_scales


@keras.saving.register_keras_serializable(package="kconvnext")
class RecipeAdamW(BufferEMA, keras.optimizers.AdamW):
    """keras AdamW with torch's update + persistent weight-decay exclusions + per-layer lr (and
    weight decay) scales + an optional EMA of the model's buffers.

    lr_scales: {top-level layer name (first component of variable.path): scale}; missing -> 1.0.
    """

    def __init__(self, no_weight_decay=("bias", "gamma", "beta"), lr_scales=None, **kwargs):
        super().__init__(**kwargs)
        self.no_weight_decay = list(no_weight_decay or [])
        self.lr_scales = dict(lr_scales or {})
        if self.no_weight_decay:
            self.exclude_from_weight_decay(var_names=self.no_weight_decay)
        self._init_buffer_ema()

    def build(self, variables):
        super().build(variables)
        self._lr_scale_list = [self.lr_scales.get(v.path.split("/")[0], 1.0) for v in variables]
        self._decay_list = [bool(self.weight_decay) and self._use_weight_decay(v) for v in variables]

    def _apply_weight_decay(self, variables):
        """No-op: update_step applies the decay, with the variable's own (layer-scaled) lr."""

    # --- Clipping the all-reduced gradient -------------------------------------------------------

    def _clip_gradients(self, grads):
        """On TensorFlow, deferred to _all_reduce_sum_gradients (see there); elsewhere Keras' own."""
        if keras.backend.backend() == "tensorflow":
            return grads
        return super()._clip_gradients(grads)

    def _all_reduce_sum_gradients(self, grads_and_vars):
        """Clip (global_clipnorm / clipnorm / clipvalue) the gradient summed over all replicas.

        Keras clips in `apply`, per replica, before its TensorFlow optimizer all-reduces in
        `_backend_update_step`: under MirroredStrategy each replica's share of the batch gradient
        (its loss is already divided by the replica count) was clipped to the norm on its own, then
        the clipped parts were summed: neither the norm nor the direction of timm's/torch's
        clip_grad_norm_ on the whole batch's gradient. Here the clip comes after the sum, on
        identical values in every replica, so N replicas update as one device on the global batch.
        (With one device the all-reduce is the identity and this is Keras' order.)
        """
        reduced = list(super()._all_reduce_sum_gradients(grads_and_vars))
        clipped = super()._clip_gradients([g for g, _ in reduced])
        return [(g, v) for g, (_, v) in zip(clipped, reduced)]

    def update_step(self, gradient, variable, learning_rate):
        """torch.optim.AdamW's step (timm's optimizer for the recipe), at this variable's scaled lr.

        p *= 1 - lr * wd (decoupled, decayed variables only), then
        p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
        Keras' Adam divides by sqrt(v) + eps and bias-corrects afterwards, so epsilon weighs
        1 / sqrt(1 - b2^t) times more: ~3x at step 100 for a 1e-6 layer-scale gamma whose
        gradients are near epsilon. The bias corrections come from expm1(t * log(beta)) with the
        log taken in float64, as torch computes them in Python floats; 1 - beta**t in float32 is off by
        ~1e-5 relative (0.999 is not a float32). m and v are Keras' own variables with torch's
        meaning (uncorrected averages), so checkpoints of either arithmetic load into the other.
        """
        index = self._get_variable_index(variable)
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        if self._lr_scale_list[index] != 1.0:
            lr = lr * self._lr_scale_list[index]
        if self._decay_list[index]:
            self.assign(variable, variable * (1 - lr * ops.cast(self.weight_decay, dtype)))
        grad = ops.cast(gradient, dtype)
        m, v = self._momentums[index], self._velocities[index]
        beta_1, beta_2 = float(self.beta_1), float(self.beta_2)
        self.assign_add(m, (grad - m) * (1 - beta_1))
        self.assign(v, v * beta_2 + (1 - beta_2) * grad * grad)
        step = ops.cast(self.iterations + 1, dtype)
        correction_1 = -ops.expm1(step * math.log(beta_1))
        correction_2 = -ops.expm1(step * math.log(beta_2))
        denominator = ops.sqrt(v) / ops.sqrt(correction_2) + self.epsilon
        self.assign_sub(variable, (lr / correction_1) * (m / denominator))

    def get_config(self):
        return {**super().get_config(), "no_weight_decay": self.no_weight_decay,
                "lr_scales": self.lr_scales}


def build_optimizer(config, model, model_name, learning_rate):
    """The recipe's optimizer for `model` (built inside the strategy scope by the caller)."""
    scales = layer_decay_scales(model, model_name, config.layer_decay) if config.layer_decay else None
    return RecipeAdamW(
        learning_rate=learning_rate, weight_decay=config.weight_decay, beta_1=config.beta_1,
        beta_2=config.beta_2, epsilon=config.epsilon, global_clipnorm=config.global_clipnorm,
        use_ema=config.ema, ema_momentum=config.ema_momentum,
        no_weight_decay=config.no_weight_decay, lr_scales=scales,
    )
