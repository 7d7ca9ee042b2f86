"""Export-time rewrites: the same function, traced into TFLite ops that every delegate runs, fast.

Only the graph traced for conversion changes; the Keras model, its weights and its `.keras` file
stay as they are. `python benchmarks/tflite_kernels.py` measures each rewrite against the plain
trace in one run.

- Large depthwise convs in row bands. XNNPACK has single-pass depthwise kernels for up to 25 taps
  (5x5) and a multi-pass path above, which this machine measures about 15x slower than a 5x5 in
  float32 and 50x+ in int8 for ConvNeXt's 7x7. A 7x7 kernel is exactly the sum of its row bands
  (3x7 + 3x7 + 1x7) applied to the matching rows of the padded input.
- Grouped convs as per-group CONV_2D + CONCATENATION: TF's grouped Conv2D also converts (to a
  grouped CONV_2D), but not every TFLite delegate runs grouped CONV_2D; per-group convs they all do.
"""
import contextlib
import functools

import keras
from keras import ops

from kconvnext.layers.grouped_conv import GroupedConv2D

#: The largest kernel (in taps) XNNPACK's single-pass depthwise kernels take.
MAX_TAPS = 25


def row_bands(kernel_h, kernel_w, max_taps=MAX_TAPS):
    """[(first row, end row)] of a kernel cut into bands of at most `max_taps` taps."""
    rows = max(1, max_taps // kernel_w)
    return [(start, min(start + rows, kernel_h)) for start in range(0, kernel_h, rows)]


def needs_bands(layer, max_taps=MAX_TAPS):
    """A stride-1, undilated, channels-last DepthwiseConv2D above `max_taps` taps whose rows fit."""
    if not isinstance(layer, keras.layers.DepthwiseConv2D):
        return False
    kernel_h, kernel_w = layer.kernel_size
    return (kernel_h * kernel_w > max_taps and kernel_w <= max_taps and tuple(layer.strides) == (1, 1)
            and tuple(layer.dilation_rate) == (1, 1) and layer.data_format == "channels_last")


def _bias_and_activation(layer, out):
    if layer.use_bias:
        out = out + layer.bias
    return layer.activation(out) if layer.activation is not None else out


def banded_depthwise_call(layer, inputs, max_taps=MAX_TAPS, **_):
    """What a large DepthwiseConv2D computes, as a sum of row-band depthwise convolutions.

    Maps no larger than the padding (ConvNeXt's last stage on small images) keep the single conv:
    XNNPACK cannot prepare an int8 PAD that wide, and such a conv costs little.
    """
    kernel_h, kernel_w = layer.kernel_size
    x = inputs
    if layer.padding == "same":
        top, left = (kernel_h - 1) // 2, (kernel_w - 1) // 2
        height, width = inputs.shape[1:3]
        if height is None or width is None or min(height, width) <= max(kernel_h - 1 - top, kernel_w - 1 - left):
            return type(layer).call(layer, inputs)
        x = ops.pad(x, [[0, 0], [top, kernel_h - 1 - top], [left, kernel_w - 1 - left], [0, 0]])
    out = None
    for start, end in row_bands(kernel_h, kernel_w, max_taps):
        rows = x[:, start:(end - kernel_h) or None]  # the input rows this band's kernel rows see
        part = ops.depthwise_conv(rows, layer.kernel[start:end], strides=1, padding="valid",
                                  data_format="channels_last")
        out = part if out is None else out + part
    return _bias_and_activation(layer, out)


@contextlib.contextmanager
def banded_depthwise_convs(model, max_taps=MAX_TAPS):
    """While inside, every large depthwise conv of `model` computes in row bands. Yields their number."""
    layers = [layer for layer in model._flatten_layers(include_self=False, recursive=True)
              if needs_bands(layer, max_taps)]
    try:
        for layer in layers:
            layer.call = functools.partial(banded_depthwise_call, layer, max_taps=max_taps)
        yield len(layers)
    finally:
        for layer in layers:
            layer.__dict__.pop("call", None)  # back to the class's call


@contextlib.contextmanager
def split_grouped_convs(model):
    """Compute every GroupedConv2D as per-group CONV_2D + CONCATENATION while tracing."""
    layers = [layer for layer in model._flatten_layers(include_self=False, recursive=True)
              if isinstance(layer, GroupedConv2D)]
    saved = [layer.implementation for layer in layers]
    try:
        for layer in layers:
            layer.implementation = "split"
        yield len(layers)
    finally:
        for layer, impl in zip(layers, saved):
            layer.implementation = impl


@contextlib.contextmanager
def for_xnnpack(model, enabled=True):
    """All the rewrites (enabled=False: only the grouped-conv split, which conversion needs)."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(split_grouped_convs(model))
        if enabled:
            stack.enter_context(banded_depthwise_convs(model))
        yield
