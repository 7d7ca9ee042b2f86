"""The LiteRT interpreter every TFLite reader uses (export validation, calibration checks, benchmarks):
its own module so that quantization.py and tflite.py both import it without importing each other."""
import os

import tensorflow as tf


def make_interpreter(model_content=None, model_path=None, num_threads=None, xnnpack=True, **options):
    """A LiteRT interpreter; xnnpack=False runs TFLite's own kernels (no default XNNPACK delegate).

    num_threads=None means every core: LiteRT's own default runs XNNPACK on one thread, which took
    ResNet-50 twice as long on a 2-core CPU (benchmarks/int8_speed.py, threads 1 vs 2).
    """
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:  # pragma: no cover - ai-edge-litert is a dependency; tf.lite as fallback.
        Interpreter, OpResolverType = tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    if not xnnpack:
        options["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    return Interpreter(model_content=model_content, model_path=None if model_content else str(model_path),
                       num_threads=os.cpu_count() if num_threads is None else num_threads, **options)
