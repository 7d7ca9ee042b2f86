"""EMA of buffers (timm's ModelEmaV3 averages BatchNorm running stats with the weights): Keras' EMA
covers trainable variables only, so EMA weights would be validated and saved with the raw model's
BatchNorm statistics. RecipeAdamW.average_buffers(model) adds an EMA of the model's non-trainable float
variables, updated in the train step with the weights' momentum and saved with the optimizer
(so `--resume` keeps it); callbacks.py swaps it in and out with the EMA weights.

A mixin (BufferEMA) placed before the Keras optimizer in the bases: its overrides of the EMA
update, finalize and save/load call the optimizer's own through super().
"""
import contextlib
import types

import keras
import numpy as np
from keras import ops


def model_buffers(model):
    """The model's non-trainable float variables (timm's buffers): BatchNorm moving mean/variance."""
    return [v for v in model.non_trainable_variables if "float" in str(v.dtype)]


class BufferEMA:
    """An EMA of the model's buffers beside a Keras optimizer's EMA of its weights."""

    def _init_buffer_ema(self):
        self._set_buffers((), ())
        self._pending_buffer_averages = None  # read from a checkpoint, waiting for average_buffers


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
        """Keras' rule for the weights' EMA (the first step copies, later steps average), applied to
        the weights and the buffers, with the step's momentum built once: Keras builds it for every
        variable (~10 graph ops each, a quarter of a ConvNeXt train step's graph to trace)."""
        if not self.use_ema:
            return
        momentum = ops.cast(ops.not_equal(self.iterations, 0), "float32") * self.ema_momentum
        factors = {}  # dtype -> (momentum, 1 - momentum)
        pairs = [(v, a) for v, a in zip(trainable_variables, self._model_variables_moving_average) if a is not None]
        for value, average in pairs + list(zip(self._buffers, self._buffer_averages)):
            if average.dtype not in factors:
                m = ops.cast(momentum, average.dtype)
                factors[average.dtype] = (m, 1 - m)
            m, one_minus_m = factors[average.dtype]
            average.assign(m * average + one_minus_m * ops.cast(value, average.dtype))

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
