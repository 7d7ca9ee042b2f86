"""Multiply-accumulate counts, in the papers' convention ("GFLOPs" = 10^9 multiply-adds).

Counted over convolutions and dense layers only, as fvcore/timm do for their published figures
(ConvNeXt-T 4.5, ResNet-50 4.1 at 224 px). The count comes from one symbolic forward pass at
batch 1 that records each weighted layer's kernel size and output size, so it follows whatever
the model really computes, including grouped and depthwise convs and small-input stems, without
computing anything (an eager 224-px pass of convnext_xl is 61 G multiply-adds; with its build, 13.6 s
of CPU to measure it, 0.9 s now).
"""
import contextlib

import keras
import numpy as np

from kconvnext.layers.grouped_conv import GroupedConv2D

_COUNTED = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense, GroupedConv2D)


def _kernel_size(layer):
    kernel = getattr(layer, "kernel", None)
    if kernel is None:
        kernel = layer.depthwise_kernel
    return int(np.prod(kernel.shape))


@contextlib.contextmanager
def _recording(records):
    patched = []
    for cls in _COUNTED:
        original = cls.call

        def call(self, inputs, *args, _original=original, **kwargs):
            outputs = _original(self, inputs, *args, **kwargs)
            # Every counted kernel has out-channels (or depthwise in*multiplier) as its
            # output width, so kernel.size / out_channels is the MACs per output value.
            records.append(_kernel_size(self) // int(outputs.shape[-1]) * int(np.prod(outputs.shape)))
            return outputs

        had_own = "call" in cls.__dict__
        patched.append((cls, had_own, cls.__dict__.get("call")))
        cls.call = call
    try:
        yield
    finally:
        for cls, had_own, own in patched:
            if had_own:
                cls.call = own
            else:
                del cls.call


def count_macs(model, input_shape=None):
    """Multiply-accumulates of one image through `model` (inference)."""
    shape = tuple(input_shape or model.input_shape[1:])
    if any(d is None for d in shape):
        raise ValueError(f"count_macs needs a fixed input shape, got {shape}; pass input_shape=(H, W, C).")
    records = []
    with _recording(records):
        _CallTraced(model).compute_output_spec(keras.KerasTensor((1, *shape)))
    return int(sum(records))


class _CallTraced(keras.layers.Layer):
    """Keras infers a layer's output by tracing its call() on placeholders, so every layer inside
    the model runs call() (and is recorded) on shapes only. The model's own compute_output_spec
    would not do: a functional model asks its convolutions for compute_output_shape instead.

    The variables read as zeros, one tensor per shape: a variable without a value (measure's
    deferred initialisation) would otherwise build its initializer's random ops into the trace at
    every read, a quarter of the time to count a model."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def call(self, inputs):
        zeros, mapping = {}, []
        for v in self.model.weights:
            key = (tuple(v.shape), v.dtype)
            if key not in zeros:
                zeros[key] = keras.ops.zeros(*key)
            mapping.append((v, zeros[key]))
        with keras.StatelessScope(state_mapping=mapping):
            return self.model(inputs, training=False)


def count_params(model):
    """Trainable-by-design parameters, as PyTorch counts them (BatchNorm running stats excluded)."""
    return int(sum(np.prod(v.shape) for v in model.weights if v.trainable))
