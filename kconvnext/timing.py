"""The one timing rule for every speed figure kconvnext prints (`cli.py roadmap`, benchmarks/):
the median of a few calls after warm-up calls, on random pixels of the model's input range; and the
CPU's instruction flags, which decide the kernels (and so the speed) a library picks at run time."""
import statistics
import time

import numpy as np


def median_seconds(fn, warmup=2, repeats=5):
    """Median wall time of fn() over `repeats` calls after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def random_images(batch, size, seed=0):
    return np.random.RandomState(seed).uniform(0, 255, (batch, size, size, 3)).astype("float32")


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The instruction-set flags this (virtual) machine shows (its first `flags` line); empty when
    there is no /proc/cpuinfo (not Linux)."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()
