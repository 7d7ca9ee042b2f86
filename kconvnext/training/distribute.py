"""Choosing the tf.distribute strategy and the mixed-precision policy for a run.

"auto": MultiWorkerMirroredStrategy when TF_CONFIG names several workers, MirroredStrategy when
several GPUs are visible, else the default (single-device) strategy. "mirrored" can be forced on a
CPU-only machine with `cpu_devices: N` logical CPU devices, which is how the tests exercise the
multi-replica code path without GPUs. Logical devices must be configured before TensorFlow
initialises its runtime, so call `select_strategy` before building any tensor.

On other Keras backends (JAX, PyTorch: a GPU machine without TensorFlow) there is no tf.distribute;
the run is single-process with keras' own device placement (`NoStrategy`), and TensorFlow is
never imported.
"""
import contextlib
import json
import os

import keras


def tensorflow_backend():
    return keras.backend.backend() == "tensorflow"


class NoStrategy:
    """What the trainer needs of a tf.distribute strategy, for backends without one."""

    num_replicas_in_sync = 1

    def scope(self):
        return contextlib.nullcontext()


def is_chief(strategy):
    """The process that decides (resume) and writes (checkpoints, logs): the cluster's chief, or
    worker 0 when there is none; always true outside MultiWorkerMirroredStrategy. It holds global
    replica 0 (tf.distribute numbers the chief first), which multiworker.broadcast_bytes relies on."""
    resolver = getattr(strategy, "cluster_resolver", None)
    return resolver is None or resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().jobs)


def tf_config_workers():
    """Number of workers named in $TF_CONFIG (0 when unset)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON: {err}") from None
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def _configure_cpu_devices(n):
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    current = tf.config.get_logical_device_configuration(cpus[0])
    if current and len(current) == n:
        return
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError as err:
        raise ValueError(
            f"cpu_devices={n} needs to be set before TensorFlow starts its runtime ({err}); "
            "run training in a fresh process (the CLI does this)."
        ) from None


def select_strategy(name="auto", cpu_devices=None):
    """-> (strategy, kind) with kind in {"default", "mirrored", "multiworker"}."""
    if not tensorflow_backend():
        if name in ("mirrored", "multiworker"):
            raise ValueError(f"strategy={name} needs the TensorFlow backend (KERAS_BACKEND=tensorflow); "
                             f"on {keras.backend.backend()} use strategy: auto or default.")
        return NoStrategy(), "default"
    import tensorflow as tf

    if cpu_devices and cpu_devices > 1:
        _configure_cpu_devices(int(cpu_devices))
    if name == "multiworker" or (name == "auto" and tf_config_workers() > 1):
        if tf_config_workers() < 1:
            raise ValueError("strategy=multiworker needs TF_CONFIG with a cluster of workers.")
        return tf.distribute.MultiWorkerMirroredStrategy(), "multiworker"
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        if len(devices) < 2 and name == "mirrored":
            print("note: strategy=mirrored with a single device (set cpu_devices: 2 to split a CPU).")
        cross = tf.distribute.ReductionToOneDevice() if not gpus else None
        return tf.distribute.MirroredStrategy(devices, cross_device_ops=cross), "mirrored"
    return tf.distribute.get_strategy(), "default"


def _cpu_has_bf16():
    from kconvnext.timing import cpu_flags

    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def resolve_precision(setting):
    """null/float32 -> "float32"; auto -> mixed precision on GPU, mixed_bfloat16 on bf16 CPUs."""
    if setting in (None, "float32"):
        return "float32"
    if setting == "auto":
        if _has_gpu():
            # TF: float16 with keras' loss scaling (the path TF GPUs are tuned for); JAX/torch on
            # current GPUs: bfloat16, which needs no loss scaling.
            return "mixed_float16" if tensorflow_backend() else "mixed_bfloat16"
        return "mixed_bfloat16" if _cpu_has_bf16() else "float32"
    return setting


def _has_gpu():
    if tensorflow_backend():
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if keras.backend.backend() == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    if keras.backend.backend() == "torch":
        import torch

        return torch.cuda.is_available()
    return False
