"""The one timing rule for every speed figure kconvnext prints (`cli.py roadmap`, benchmarks/):
the median of a few calls after warm-up calls, on random pixels of the model's input range; the
CPU's instruction flags, which decide the kernels (and so the speed) a library picks at run time;
and when this process started, which a command's time budget counts from."""
import os
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


def process_start_time():
    """time.time() at which this process started (Linux: /proc), or None where that is unknown.

    `cli.py train --budget-minutes` passes it to train(started=...) so that the budget covers the
    whole command, the interpreter and TensorFlow starting included, not only the train() call.
    """
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime (after "pid (comm)")
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
