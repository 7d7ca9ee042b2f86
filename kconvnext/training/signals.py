"""SIGTERM during training = Ctrl-C: save a mid-epoch checkpoint and stop, so the same command resumes.

Schedulers stop a job with SIGTERM (docker stop, Kubernetes eviction, Slurm preemption), then
SIGKILL after a grace period. Python's default for SIGTERM is to die at once, losing the epoch in
progress; Ctrl-C raises KeyboardInterrupt, which the trainer turns into a checkpoint. While
training runs, SIGTERM makes the end of the current training batch raise `Terminated` (a
KeyboardInterrupt), which takes that same path. Not at once, at whatever line the signal lands on:
a batch boundary is where the trainer's record of the position (batches done, optimizer steps)
is consistent, so the resume neither repeats nor skips a batch. Further SIGTERMs are ignored so
they cannot cut the checkpoint save short. Outside training (and in threads other than the main
one, where Python cannot install handlers) the previous handler is untouched. The CLI exits with
Ctrl-C's code, 130, for both.
"""
import contextlib
import signal
import threading

import keras


class Terminated(KeyboardInterrupt):
    """Training was stopped by SIGTERM (handled exactly like Ctrl-C)."""


class StopOnSigterm(keras.callbacks.Callback):
    """Raises Terminated at the first training batch end after a SIGTERM (goes after the
    callbacks that record the position, so they have counted the batch)."""

    def __init__(self):
        super().__init__()
        self.received = None

    def on_train_batch_end(self, batch, logs=None):
        if self.received is not None:
            raise Terminated(f"received signal {self.received}")


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Inside: a StopOnSigterm callback for fit, armed by SIGTERM in the main thread; the previous
    handler is restored on the way out."""
    stop = StopOnSigterm()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):
        if stop.received is None:
            stop.received = signal.Signals(signum).name

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)
