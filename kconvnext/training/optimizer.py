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
import types

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
        self._terms = None  # _step_terms

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
        terms = self._step_terms(learning_rate, variable.dtype)
        lr_over_correction_1, decay_factor = terms.scaled(self._lr_scale_list[index])
        grad = ops.cast(gradient, variable.dtype)
        m_slot, v_slot = self._momentums[index], self._velocities[index]
        m = m_slot + (grad - m_slot) * terms.one_minus_beta_1
        v = v_slot * terms.beta_2 + terms.one_minus_beta_2 * grad * grad
        self.assign(m_slot, m)
        self.assign(v_slot, v)
        value = variable * decay_factor if self._decay_list[index] else variable
        update = lr_over_correction_1 * (m / (ops.sqrt(v) / terms.sqrt_correction_2 + terms.epsilon))
        self.assign(variable, value - update)

    def apply(self, grads, trainable_variables=None):
        """Keras' apply (every step comes through it: fit, apply_gradients, stateless_apply, a
        LossScaleOptimizer's), with the shared terms of _step_terms made anew for each step."""
        self._terms = None
        try:
            return super().apply(grads, trainable_variables)
        finally:
            self._terms = None

    def _step_terms(self, learning_rate, dtype):
        """What every variable's update in one step shares (the step's bias corrections, the lr at
        each layer scale, the constants), built on the step's first variable and reused by the rest
        of the step (apply): built per variable they were over half of the train step's graph, whose
        building (tracing) is most of a short run's time."""
        terms = self._terms
        if terms is not None and terms.dtype == dtype:
            return terms
        lr = ops.cast(learning_rate, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        correction_1 = -ops.expm1(step * math.log(float(self.beta_1)))
        correction_2 = -ops.expm1(step * math.log(float(self.beta_2)))
        weight_decay = ops.cast(self.weight_decay or 0.0, dtype)
        scaled = {}

        def at_scale(scale):  # (lr * scale / correction_1, 1 - lr * scale * wd)
            if scale not in scaled:
                lr_scaled = lr * scale if scale != 1.0 else lr
                scaled[scale] = (lr_scaled / correction_1, 1 - lr_scaled * weight_decay)
            return scaled[scale]

        constant = lambda x: ops.convert_to_tensor(x, dtype)  # noqa: E731
        self._terms = types.SimpleNamespace(  # a plain namespace: Keras tracks attributes it knows
            dtype=dtype, scaled=at_scale,
            sqrt_correction_2=ops.sqrt(correction_2), epsilon=constant(self.epsilon),
            beta_2=constant(float(self.beta_2)), one_minus_beta_1=constant(1 - float(self.beta_1)),
            one_minus_beta_2=constant(1 - float(self.beta_2)))
        return self._terms

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
