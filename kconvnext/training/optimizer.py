"""AdamW as the ConvNeXt recipe uses it: torch.optim.AdamW's arithmetic (see update_step), no decay
on biases/norms/layer-scale, optional layer-wise lr, and an EMA that covers the BatchNorm statistics
as well as the weights. tests/test_adamw_torch.py checks the steps against torch's own numbers.

Why a subclass rather than `AdamW(...).exclude_from_weight_decay(var_names=...)` on a stock
optimizer: the exclusion is not part of the optimizer's config, so a `.keras` checkpoint reloaded
for `--resume` would silently decay every variable again. Here the exclusion names and the
per-layer lr scales are constructor arguments, saved with the checkpoint and re-applied on load.

Exclusion matches `variable.name` (Keras' rule), which for our layers is the last path component:
"bias" (every bias), "gamma"/"beta" (LayerNorm, BatchNorm and LayerScale's `gamma`).

Layer-wise lr decay (BEiT / ConvNeXt fine-tuning): parameters near the input learn slower,
lr_scale = decay ** (num_layers - layer_id). Scaling *gradients* would not work (Adam is invariant to
gradient scale), so `update_step` scales the learning rate per variable, and the decoupled weight
decay uses that same scaled lr (torch AdamW with the official parameter groups: p -= lr_group * wd * p);
Keras' own decay would use the unscaled lr, decaying the stem decay**-depth times too much.

EMA of buffers (timm's ModelEmaV3 averages BatchNorm running stats with the weights): Keras' EMA
covers trainable variables only, so EMA weights would be validated and saved with the raw model's
BatchNorm statistics. `average_buffers(model)` adds an EMA of the model's non-trainable float
variables, updated in the train step with the weights' momentum and saved with the optimizer
(so `--resume` keeps it); kconvnext.training.callbacks swaps it in and out with the EMA weights.
"""
import contextlib
import math
import re
import types

import keras
import numpy as np
from keras import ops

from kconvnext.models import get_spec


@keras.saving.register_keras_serializable(package="kconvnext")
class RecipeAdamW(keras.optimizers.AdamW):
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
        self._set_buffers((), ())
        self._pending_buffer_averages = None  # read from a checkpoint, waiting for average_buffers

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

    # --- EMA of buffers (BatchNorm statistics) -------------------------------------------------

    def _set_buffers(self, buffers, averages):
        # In a plain namespace: Keras tracks variables (and lists of them) set as attributes, and
        # the model's buffers must not join the optimizer's own variables.
        self._buffer_state = types.SimpleNamespace(buffers=tuple(buffers), averages=tuple(averages))

    @property
    def _buffers(self):
        return self._buffer_state.buffers

    @property
    def _buffer_averages(self):
        return self._buffer_state.averages

    @property
    def buffer_averages(self):
        return self._buffer_averages

    def average_buffers(self, model):
        """Keep an EMA of `model`'s buffers next to the weights' EMA; returns how many.

        Call after the optimizer is built (and inside the distribution strategy's scope). After a
        reload the averages continue from the checkpoint. Only on the TensorFlow backend: JAX's
        stateless train step does not show the optimizer the step's new statistics (returns 0).
        """
        if not self.use_ema or keras.backend.backend() != "tensorflow":
            return 0
        if not self.built:
            raise RuntimeError("average_buffers: build the optimizer on the model's trainable variables first.")
        buffers = model_buffers(model)
        if self._buffers:
            if [id(b) for b in buffers] != [id(b) for b in self._buffers]:
                raise ValueError("average_buffers: this optimizer already averages another model's buffers.")
            return len(buffers)
        pending, self._pending_buffer_averages = self._pending_buffer_averages, None
        if pending is not None and [p.shape for p in pending] != [tuple(b.shape) for b in buffers]:
            raise ValueError(
                f"The checkpoint's optimizer holds {len(pending)} buffer averages that do not match "
                f"the model's {len(buffers)} BatchNorm statistics (another model's checkpoint?)."
            )
        averages = []
        for i, buffer in enumerate(buffers):
            average = self._untracked_variable_like(buffer)
            self._assign_each_device(average, buffer if pending is None else pending[i])
            averages.append(average)
        self._set_buffers(buffers, averages)
        return len(buffers)

    def _untracked_variable_like(self, reference):
        """A variable outside `self.variables`: a LossScaleOptimizer (mixed precision) reloads only
        when its and its inner optimizer's variable counts match a fresh build's, so the averages
        are appended to the saved variables by save_own_variables instead."""
        strategy = getattr(self, "_distribution_strategy", None)
        colocated = (strategy.extended.colocate_vars_with(reference.value) if strategy is not None
                     else contextlib.nullcontext())
        with colocated:
            return keras.Variable(keras.initializers.Zeros(), shape=reference.shape, dtype=reference.dtype,
                                  trainable=False, name=reference.path.replace("/", "_") + "_average")

    def _update_model_variables_moving_average(self, trainable_variables):
        super()._update_model_variables_moving_average(trainable_variables)
        if not self._buffer_averages:
            return
        # Same rule as Keras' weight EMA: the first step copies, later steps average.
        momentum = ops.cast(ops.not_equal(self.iterations, 0), "float32") * self.ema_momentum
        for buffer, average in zip(self._buffers, self._buffer_averages):
            m = ops.cast(momentum, average.dtype)
            average.assign(m * average + (1 - m) * ops.cast(buffer, average.dtype))

    def swap_buffer_averages(self):
        """Exchange the buffers' values with their averages (per device, as SwapEMAWeights does)."""
        for buffer, average in zip(self._buffers, self._buffer_averages):
            if keras.backend.backend() == "tensorflow":
                self._each_device(buffer, lambda a, b: a.assign_add(b), average)
                self._each_device(buffer, lambda a, b: b.assign(a - b), average)
                self._each_device(buffer, lambda a, b: a.assign(a - b), average)
            else:
                value = ops.convert_to_numpy(buffer)
                buffer.assign(average)
                average.assign(value)

    def copy_buffers_to_averages(self):
        """averages := buffers (what SwapEMAWeights' finalize does for the weights)."""
        for buffer, average in zip(self._buffers, self._buffer_averages):
            self._assign_each_device(average, buffer)

    def finalize_variable_values(self, var_list):
        """End of fit: Keras puts the EMA weights in the model; their statistics go with them."""
        super().finalize_variable_values(var_list)
        if self.use_ema:
            for buffer, average in zip(self._buffers, self._buffer_averages):
                self._assign_each_device(buffer, average)

    def _each_device(self, target, fn, source):
        strategy = getattr(self, "_distribution_strategy", None)
        if strategy is None:
            return fn(target, source)
        strategy.extended.update(target.value, fn, args=(source.value,))

    def _assign_each_device(self, target, source):
        if isinstance(source, np.ndarray):
            target.assign(source)
        else:
            self._each_device(target, lambda a, b: a.assign(b), source)

    def save_own_variables(self, store):
        super().save_own_variables(store)
        own = len(self.variables)
        for i, average in enumerate(self._buffer_averages):
            store[str(own + i)] = ops.convert_to_numpy(average)

    def load_own_variables(self, store):
        """A checkpoint with buffer averages has more variables than a freshly built optimizer: load
        the optimizer's own, keep the averages for average_buffers (Keras would skip them all)."""
        own = len(self.variables)
        if self.built and not self._buffer_averages and len(store.keys()) > own:
            for i, variable in enumerate(self.variables):
                variable.assign(store[str(i)])
            self._pending_buffer_averages = [np.asarray(store[str(i)]) for i in range(own, len(store.keys()))]
            return
        super().load_own_variables(store)

    def get_config(self):
        return {**super().get_config(), "no_weight_decay": self.no_weight_decay,
                "lr_scales": self.lr_scales}


def model_buffers(model):
    """The model's non-trainable float variables (timm's buffers): BatchNorm moving mean/variance."""
    return [v for v in model.non_trainable_variables if "float" in str(v.dtype)]


def _layer_ids(model, family):
    """Top-level layer name -> depth id (0 = stem ... max = head), grouped as the official code."""
    names = [layer.name for layer in model.layers]
    ids = {}
    if family == "convnext":
        blocks = [re.match(r"stages_(\d+)_blocks_(\d+)$", n) for n in names]
        depth2 = 1 + max([int(m.group(2)) for m in blocks if m and m.group(1) == "2"], default=0)
        last = 3 + (depth2 - 1) // 3 + 1  # the official grouping: stage 2 in groups of 3 blocks
        for n in names:
            m = re.match(r"stages_(\d+)_blocks_(\d+)$", n)
            d = re.match(r"stages_(\d+)_downsample$", n)
            if n == "stem":
                ids[n] = 0
            elif d:
                s = int(d.group(1))
                ids[n] = s + 1 if s in (1, 2) else last
            elif m:
                s, b = int(m.group(1)), int(m.group(2))
                ids[n] = s + 1 if s < 2 else (3 + b // 3 if s == 2 else last)
        head = last + 1
    else:  # resnet / resnext: stem = 0, layer{i}_* = i, head = 5
        for n in names:
            m = re.match(r"layer(\d+)_\d+$", n)
            if n in ("conv1", "bn1", "conv1_pad") or n.startswith("conv1"):
                ids[n] = 0
            elif m:
                ids[n] = int(m.group(1))
        head = 5
    for n in names:
        ids.setdefault(n, head)
    return ids, head


def layer_decay_scales(model, model_name, decay):
    """{top-level layer name: decay ** (head_id - layer_id)} for layer-wise lr decay."""
    ids, head = _layer_ids(model, get_spec(model_name).family)
    return {n: float(decay ** (head - i)) for n, i in ids.items()}


def build_optimizer(config, model, model_name, learning_rate):
    """The recipe's optimizer for `model` (built inside the strategy scope by the caller)."""
    scales = layer_decay_scales(model, model_name, config.layer_decay) if config.layer_decay else None
    return RecipeAdamW(
        learning_rate=learning_rate, weight_decay=config.weight_decay, beta_1=config.beta_1,
        beta_2=config.beta_2, epsilon=config.epsilon, global_clipnorm=config.global_clipnorm,
        use_ema=config.ema, ema_momentum=config.ema_momentum,
        no_weight_decay=config.no_weight_decay, lr_scales=scales,
    )
