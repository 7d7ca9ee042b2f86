"""SIGTERM during training = Ctrl-C: save a mid-epoch checkpoint and stop, so the same command resumes.

Schedulers stop a job with SIGTERM (docker stop, Kubernetes eviction, Slurm preemption), then
SIGKILL after a grace period. Python's default for SIGTERM is to die at once, losing the epoch in
progress; Ctrl-C raises KeyboardInterrupt, which the trainer turns into a checkpoint. While
training runs, SIGTERM raises `Terminated` (a KeyboardInterrupt) and takes that same path; further
SIGTERMs while the checkpoint is written are ignored so they cannot cut the save short. Outside
training (and in threads other than the main one, where Python cannot install handlers) the
previous handler is untouched. The CLI exits with Ctrl-C's code, 130, for both.
"""
import contextlib
import signal
import threading


class Terminated(KeyboardInterrupt):
    """Training was stopped by SIGTERM (handled exactly like Ctrl-C)."""


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Inside: SIGTERM raises Terminated in the main thread (once); the previous handler is restored
    on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []

    def handler(signum, frame):
        if not received:  # a second SIGTERM while the checkpoint is saved must not interrupt the save
            received.append(signum)
            raise Terminated(f"received signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
