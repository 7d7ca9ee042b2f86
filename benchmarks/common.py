"""Timing helpers shared by the benchmarks: medians after warm-up, a matmul peak, table + JSON."""
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from kconvnext.timing import median_seconds, random_images  # noqa: F401  (re-exported for the benchmarks)

RESULTS = Path(__file__).resolve().parent / "results"


def matmul_peak_gflops(n=2048, repeats=10):
    """Best fp32 GFLOP/s of a large TF matmul: the machine's practical compute ceiling.

    The best (not median) of several runs, so that a moment of load from elsewhere does not
    lower the ceiling and flatter the models measured against it.
    """
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    mm = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    mm().numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        mm().numpy()
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


def machine():
    import keras
    import tensorflow as tf

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def print_table(rows, columns):
    """rows: list of dicts; columns: list of (key, header, format)."""
    widths = [max(len(h), *(len(fmt.format(r[k])) for r in rows)) for k, h, fmt in columns]
    print("  ".join(h.ljust(w) for (_, h, _), w in zip(columns, widths)))
    for r in rows:
        print("  ".join(fmt.format(r[k]).ljust(w) for (k, _, fmt), w in zip(columns, widths)))


def write_json(name, payload):
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"machine": machine(), **payload}
    path.write_text(json.dumps(payload, indent=2, default=float))
    print(f"wrote {path}")
    return path


def timed_in_turns(variants, pixels, runs):
    """Median batch-1 ms of each (content, threads, interpreter options) variant, one invoke of each per
    round, so that load from elsewhere on a shared machine costs every variant alike. Each round starts
    one variant further on and every other round runs backwards: a variant's time must not depend on
    which one ran just before it."""
    from kconvnext.export import tflite

    invokes = []
    for content, threads, options in variants:
        interpreter = tflite.make_interpreter(content, num_threads=threads, **options)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], tflite.quantize_input(pixels, detail))
        interpreter.invoke()  # warm-up: XNNPACK packs weights and plans here
        invokes.append(interpreter.invoke)
    spent = [[] for _ in invokes]
    for round_index in range(runs):
        order = [(round_index + i) % len(invokes) for i in range(len(invokes))]
        for i in order[::-1] if round_index % 2 else order:
            start = time.perf_counter()
            invokes[i]()
            spent[i].append(time.perf_counter() - start)
    return [1000 * float(np.median(times)) for times in spent]
