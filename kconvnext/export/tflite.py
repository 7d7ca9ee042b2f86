"""TFLite conversion (fp32, fp16, dynamic-range, int8 full/mixed, 16x8; see quantization.py) and a runner.

Conversion goes Keras -> SavedModel (batch 1, probabilities out) -> TFLiteConverter, as Keras'
own litert export does, with built-in ops only: a model that needs Flex/custom ops is refused.
The TFLite model takes one image, float32 [1, S, S, 3] pixels in [0, 255] (uint8 for int8_full),
and returns `probabilities` float32 [1, C] and `class_index` int32 [1].
"""
import contextlib
import re
import tempfile

import keras
import numpy as np
import tensorflow as tf

from kconvnext.export import quantization
from kconvnext.export.quantization import CALIBRATED
from kconvnext.export.saved_model import write_archive
from kconvnext.layers.grouped_conv import GroupedConv2D

SIGNATURE = "serving_default"


def make_interpreter(model_content=None, model_path=None, num_threads=None, xnnpack=True, **options):
    """A LiteRT interpreter; xnnpack=False runs TFLite's own kernels (no default XNNPACK delegate)."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:  # pragma: no cover - ai-edge-litert is a dependency; tf.lite as fallback.
        Interpreter, OpResolverType = tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    if not xnnpack:
        options["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    return Interpreter(model_content=model_content, model_path=None if model_content else str(model_path),
                       num_threads=num_threads, **options)


def op_names(model_content):
    interpreter = make_interpreter(model_content)
    return sorted({op["op_name"] for op in interpreter._get_ops_details()})


@contextlib.contextmanager
def split_grouped_convs(model):
    """Compute every GroupedConv2D as per-group CONV_2D + CONCATENATION while tracing.

    The weights are the same in every implementation; TF's grouped Conv2D also converts (to a
    grouped CONV_2D) but not every TFLite delegate runs grouped CONV_2D, per-group convs they all do.
    """
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
def batch1_saved_model(model, image_size):
    """A temporary SavedModel of `model` for TFLite: one image in, probabilities and class_index out."""

    def serve(images):
        probs = tf.nn.softmax(tf.cast(model(images, training=False), tf.float32), axis=-1)
        return {"probabilities": probs, "class_index": tf.argmax(probs, axis=-1, output_type=tf.int32)}

    with tempfile.TemporaryDirectory(prefix="kconvnext-tflite-") as tmp, split_grouped_convs(model):
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(SIGNATURE, serve, input_signature=[
            tf.TensorSpec([1, image_size, image_size, 3], tf.float32, name="images")])
        write_archive(archive, tmp)
        yield tmp


def make_converter(saved_model_dir, quantize="none", calibration_pixels=None):
    """A TFLiteConverter for one of QUANTIZATIONS (int8 already resolved), built-in ops only."""
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize in CALIBRATED:
        def representative():
            for x in calibration_pixels:
                yield [np.asarray(x, np.float32)[None]]

        converter.representative_dataset = representative
    if quantize == "int8_full":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
    if quantize == "int16x8":
        # Ops with no 16x8 kernel (NEG in LayerNorm) stay float32; export reports which.
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter


def _mixed_int8(converter, float_layers):
    """int8 with the ops of `float_layers` (Keras paths) left in float32, via the quantization debugger."""
    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter)
    interpreter = make_interpreter(debugger.calibrated_model)
    nodes = sorted({t["name"] for t in interpreter.get_tensor_details()
                    if quantization.in_layers(t["name"], float_layers)})
    debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=nodes)
    return debugger.get_nondebug_quantized_model()


def convert(model, image_size, quantize="none", calibration_pixels=None):
    """Keras model -> TFLite flatbuffer bytes. calibration_pixels: float32 (N, S, S, 3), calibrated modes only."""
    quantize = quantization.resolve(quantize, model)
    if quantize in CALIBRATED and (calibration_pixels is None or len(calibration_pixels) == 0):
        raise ValueError(f"{quantize} quantization needs calibration images; pass "
                         "--calibration-dir with a folder of training images.")
    with batch1_saved_model(model, image_size) as tmp:
        converter = make_converter(tmp, quantize, calibration_pixels)
        try:
            if quantize == "int8_mixed":
                content = _mixed_int8(converter, quantization.float_layer_paths(model))
            else:
                content = converter.convert()
        except Exception as err:  # ConverterError and friends: say which ops failed.
            raise ValueError(_conversion_error(model.name, quantize, str(err))) from None
    if quantize == "int16x8":
        _check_runs(content, model.name, image_size)
    ops = op_names(content)
    bad = [op for op in ops if op.startswith("Flex") or op == "CUSTOM" or op.startswith("Custom")]
    if bad:
        raise ValueError(f"{model.name}: the TFLite model needs non-built-in ops {bad}; refusing to export it.")
    return content


def _check_runs(content, name, image_size):
    """16x8 converts ops the runtime has no int16 kernel for (LayerNorm's SQUARED_DIFFERENCE): fail now."""
    try:
        Runner(model_content=content)(np.zeros((1, image_size, image_size, 3), np.float32))
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise ValueError(f"{name} converts to int16x8 but TFLite cannot run it ({first}); LayerNorm has "
                         "no 16x8 kernels. Use --quantize int8_mixed (LayerNorm in float32) or fp16.") from None


def _conversion_error(name, quantize, text):
    unsupported = sorted(set(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", text)))
    if unsupported:
        detail = (f"TensorFlow ops with no TFLite built-in: {', '.join(unsupported)}. Replace the "
                  "layers that use them (grouped convolutions are already split into per-group convs).")
    else:
        lines = [line.strip() for line in text.splitlines() if "error" in line.lower()] or text.splitlines()
        detail = "\n  ".join(lines[:5])[:1500]
    return f"{name} cannot be converted to TFLite ({quantize}) with built-in ops only: {detail}"


class Runner:
    """Runs a .tflite model on float [0, 255] pixels, one image at a time; returns probabilities."""

    def __init__(self, model_content=None, model_path=None, num_threads=None, **options):
        self.interpreter = make_interpreter(model_content, model_path, num_threads, **options)
        self.runner = self.interpreter.get_signature_runner(SIGNATURE)
        self.input = self.runner.get_input_details()["images"]

    def _prepare(self, image):
        image = np.asarray(image, np.float32)[None]
        if self.input["dtype"] == np.float32:
            return image
        scale, zero = self.input["quantization"]
        info = np.iinfo(self.input["dtype"])
        return np.clip(np.round(image / scale + zero), info.min, info.max).astype(self.input["dtype"])

    def prepare(self, pixels):
        return [self._prepare(x) for x in pixels]

    def run_prepared(self, prepared):
        return self.runner(images=prepared)

    def __call__(self, pixels):
        return np.concatenate([self.run_prepared(x)["probabilities"] for x in self.prepare(pixels)])
