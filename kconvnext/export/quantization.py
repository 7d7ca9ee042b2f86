"""Which TFLite quantization mode to use, which layers stay in float, and which ops compute in float.

Modes (TFLite):
  none        float32.
  fp16        float16 weights, float32 compute.
  dynamic     int8 weights, float activations (dynamic-range).
  int8_full   full integer: int8 weights and activations, uint8 pixels in (calibrated).
  int8_mixed  int8 everywhere except the LayerNormalization layers, GELU, softmax and convs on
              fewer than 8 channels (the stem's, on RGB), which stay float32. LayerNorm for
              accuracy: TFLite's quantization debugger
              (tf.lite.experimental.QuantizationDebugger) showed its MEAN (of the
              variance), RSQRT and affine MULs losing 4-1000x the rounding error of
              every other op on ConvNeXt. GELU and softmax for speed (they quantize as
              well as a convolution does): XNNPACK has no int8 kernel for them, so in int8 each
              GELU splits the XNNPACK graph and runs in TFLite's reference kernel
              (`tflite.delegation` reports it), while in float32 XNNPACK runs them. The stem
              conv for speed too (FEW_CHANNELS below).
  int16x8     int16 activations, int8 weights (calibrated); no fast CPU kernels (see README).
  int8        the default: int8_mixed for any model with a layer int8_mixed keeps in float (all the
              shipped ones: every stem convolves RGB), else int8_full; from benchmarks/int8_speed.py.
"""
import re

import keras
import numpy as np

QUANTIZATIONS = ("none", "fp16", "dynamic", "int8", "int8_full", "int8_mixed", "int16x8")
CALIBRATED = ("int8", "int8_full", "int8_mixed", "int16x8")
# Ops that only move data between float and integer tensors at the edges of quantized regions.
BOUNDARY_OPS = ("QUANTIZE", "DEQUANTIZE")
FLOAT_LAYER_TYPES = (keras.layers.LayerNormalization,)
# TFLite ops int8_mixed keeps in float32 wherever they occur (GELU is inline in the blocks, not a layer).
FLOAT_OP_TYPES = ("GELU", "SOFTMAX")


# XNNPACK's int8 convolutions work on blocks of 8 input channels, so a conv on RGB pixels (3 channels)
# does 8/3 of its work: ResNet-50's 7x7 stem took 14.0 ms in int8 against 5.4 ms in float32 on one
# core (benchmarks/int8_speed.py), 7% of the whole network's time. Such convs stay float.
FEW_CHANNELS = 8


def _few_channel_conv(layer):
    kernel = getattr(layer, "kernel", None)
    return (isinstance(layer, keras.layers.Conv2D) and kernel is not None
            and int(kernel.shape[-2]) * int(getattr(layer, "groups", 1)) < FEW_CHANNELS)


def float_layer_paths(model):
    """Keras paths ("stages_0_blocks_0/norm", "conv1") of the layers int8_mixed keeps in float."""
    return [layer.path for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, FLOAT_LAYER_TYPES) or _few_channel_conv(layer)]


def label(quantize):
    """A mode as messages and file names call it: "none" (no quantization) is fp32."""
    return "fp32" if quantize == "none" else quantize


def resolve(quantize, model):
    """`int8` -> `int8_mixed` (the model has a layer that stays float) or `int8_full`; others unchanged."""
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, got {quantize!r}.")
    if quantize != "int8":
        return quantize
    return "int8_mixed" if float_layer_paths(model) else "int8_full"


def _layer_segments(name):
    """'cx_1/stages_0_blocks_0_1/norm_1/moments/mean1' -> ['stages_0_blocks_0', 'norm', 'moments', 'mean1'].

    TF suffixes every name scope with `_N` when it traces the model; the first segment is the
    model's own scope.
    """
    return [re.sub(r"_\d+$", "", part) for part in name.split("/")[1:]]


def in_layers(tensor_name, layer_paths):
    """Whether a TFLite tensor was computed inside one of the Keras layers at `layer_paths`. A fused
    op names every op it fused ("m/relu/Relu;m/conv1/convolution": a conv with its ReLU): any counts."""
    for name in tensor_name.split(";"):
        segments = _layer_segments(name)
        for path in layer_paths:
            parts = path.split("/")
            if segments[:len(parts)] == parts:
                return True
    return False


def op_details(model_content):
    """[(op name, output tensor name, operand dtypes, result dtypes)] in execution order."""
    from kconvnext.export.interpreter import make_interpreter

    interpreter = make_interpreter(model_content)
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    return [(op["op_name"], names.get(int(op["outputs"][0]), "") if len(op["outputs"]) else "",
             [np.dtype(t) for t in op["operand_types"]], [np.dtype(t) for t in op["result_types"]])
            for op in interpreter._get_ops_details()]


def float_ops(model_content):
    """The ops that compute in float32 (not counting QUANTIZE/DEQUANTIZE at the edges): [(op, tensor)].

    An op computes in float when it produces a float32 result; integer ops may still take a
    float32 constant (none do in these models) and ARG_MAX yields int32 from int8.
    """
    return [(name, tensor) for name, tensor, _, results in op_details(model_content)
            if name not in BOUNDARY_OPS and any(r == np.float32 for r in results)]
