"""TFLite conversion (fp32, fp16, dynamic-range, int8 full/mixed, 16x8; see quantization.py) and a runner.

Conversion goes Keras -> SavedModel (batch 1, probabilities out) -> TFLiteConverter, as Keras'
own litert export does, with built-in ops only: a model that needs Flex/custom ops is refused.
The TFLite model takes one image, float32 [1, S, S, 3] pixels in [0, 255] (uint8 for int8_full),
and returns `probabilities` float32 [1, C] and `class_index` int32 [1].
"""
import collections
import contextlib
import dataclasses
import re
import tempfile

import keras
import numpy as np
import tensorflow as tf

from kconvnext.export import quantization, rewrites
from kconvnext.export.quantization import CALIBRATED
from kconvnext.export.interpreter import make_interpreter  # noqa: F401  (public here too)
from kconvnext.export.saved_model import write_archive

SIGNATURE = "serving_default"


def op_names(model_content):
    interpreter = make_interpreter(model_content)
    return sorted({op["op_name"] for op in interpreter._get_ops_details()})


@dataclasses.dataclass
class Delegation:
    """How much of a TFLite graph the default XNNPACK delegate runs. Every op it cannot take
    splits the graph: the tensors cross between XNNPACK and TFLite's own (often reference,
    single-threaded) kernels there, which is what makes a quantized model slower than float."""
    ops: int
    delegated: int
    partitions: int
    outside: dict  # {"GELU(int8)": count} of the ops TFLite runs itself

    def line(self):
        rest = ", ".join(f"{op} x{n}" for op, n in self.outside.items()) or "none"
        return (f"XNNPACK runs {self.delegated}/{self.ops} ops in {self.partitions} partition(s); "
                f"outside it: {rest}")


def delegation(model_content):
    """Delegation of `model_content` under the default interpreter (XNNPACK on).

    The interpreter lists the original ops and one DELEGATE op per XNNPACK partition; a
    partition holds the ops between its inputs and its outputs, found by walking back from them.
    """
    interpreter = make_interpreter(model_content)
    interpreter.allocate_tensors()
    details = interpreter._get_ops_details()
    ops = {op["index"]: op for op in details if op["op_name"] != "DELEGATE"}
    producer = {int(t): i for i, op in ops.items() for t in op["outputs"]}
    inside = set()
    partitions = [op for op in details if op["op_name"] == "DELEGATE"]
    for part in partitions:
        boundary = {int(t) for t in part["inputs"]}
        todo = [producer[int(t)] for t in part["outputs"] if int(t) in producer]
        while todo:
            index = todo.pop()
            if index not in inside:
                inside.add(index)
                todo += [producer[int(t)] for t in ops[index]["inputs"]
                         if int(t) in producer and int(t) not in boundary]
    outside = collections.Counter(
        f"{op['op_name']}({np.dtype(op['operand_types'][0]).name})" if len(op["operand_types"]) else op["op_name"]
        for i, op in ops.items() if i not in inside)
    return Delegation(len(ops), len(inside), len(partitions), dict(outside.most_common()))


@contextlib.contextmanager
def batch1_saved_model(model, image_size, rewrite=True):
    """A temporary SavedModel of `model` for TFLite: one image in, probabilities and class_index out,
    traced through rewrites.for_xnnpack (rewrite=False: as Keras computes it, for comparisons).
    The model is not `track`ed, as in saved_model.write_saved_model (one trace less)."""

    def serve(images):
        probs = tf.nn.softmax(tf.cast(model(images, training=False), tf.float32), axis=-1)
        return {"probabilities": probs, "class_index": tf.argmax(probs, axis=-1, output_type=tf.int32)}

    with tempfile.TemporaryDirectory(prefix="kconvnext-tflite-") as tmp, rewrites.for_xnnpack(model, rewrite):
        archive = keras.export.ExportArchive()
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


def _mixed_int8(converter, float_layers, float_op_types):
    """int8 with the ops of `float_layers` (Keras paths) and of `float_op_types` (TFLite op names)
    left in float32, via the quantization debugger."""
    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter)
    interpreter = make_interpreter(debugger.calibrated_model)
    nodes = sorted({t["name"] for t in interpreter.get_tensor_details()
                    if quantization.in_layers(t["name"], float_layers)})
    debugger.options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_nodes=nodes, denylisted_ops=list(float_op_types))
    return debugger.get_nondebug_quantized_model()


def convert(model, image_size, quantize="none", calibration_pixels=None, rewrite=True):
    """Keras model -> TFLite flatbuffer bytes. calibration_pixels: float32 (N, S, S, 3), calibrated modes
    only; rewrite=False skips the speed rewrites (rewrites.py), to measure what they buy."""
    quantize = quantization.resolve(quantize, model)
    if quantize in CALIBRATED and (calibration_pixels is None or len(calibration_pixels) == 0):
        raise ValueError(f"{quantize} quantization needs calibration images; pass "
                         "--calibration-dir with a folder of training images.")
    with batch1_saved_model(model, image_size, rewrite) as tmp:
        converter = make_converter(tmp, quantize, calibration_pixels)
        try:
            if quantize == "int8_mixed":
                content = _mixed_int8(converter, quantization.float_layer_paths(model), quantization.FLOAT_OP_TYPES)
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


def quantize_input(pixels, detail):
    """Float [0, 255] pixels -> what the model's input takes (an int input by its scale and zero point)."""
    pixels = np.asarray(pixels, np.float32)
    if detail["dtype"] == np.float32:
        return pixels
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(pixels / scale + zero), info.min, info.max).astype(detail["dtype"])


class Runner:
    """Runs a .tflite model on float [0, 255] pixels, one image at a time; returns probabilities."""

    def __init__(self, model_content=None, model_path=None, num_threads=None, **options):
        self.interpreter = make_interpreter(model_content, model_path, num_threads, **options)
        self.runner = self.interpreter.get_signature_runner(SIGNATURE)
        self.input = self.runner.get_input_details()["images"]

    def prepare(self, pixels):
        return [quantize_input(np.asarray(x)[None], self.input) for x in pixels]

    def run_prepared(self, prepared):
        return self.runner(images=prepared)

    def __call__(self, pixels):
        return np.concatenate([self.run_prepared(x)["probabilities"] for x in self.prepare(pixels)])
