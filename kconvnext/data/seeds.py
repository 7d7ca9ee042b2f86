"""Per-element random seeds for Keras' random preprocessing layers inside tf.data.

Keras layers draw randomness from a stateful SeedGenerator variable: in a parallel tf.data map the
order of its updates is a race, so batches would not be reproducible. ElementSeed is a SeedGenerator
whose seeds come from the element being processed (a stateless seed zipped into the dataset), so
maps can run in parallel and the same seed still gives the same batches; every epoch draws new
element seeds (Dataset.random(rerandomize_each_iteration=True)), so augmentation differs per epoch.
"""
import contextlib

import tensorflow as tf
from keras.random import SeedGenerator


class ElementSeed(SeedGenerator):
    """Hands Keras layers seeds derived from the traced element seed; no variable, no state."""

    def __init__(self):  # deliberately no super().__init__(): that would create the state variable
        self._base = None
        self._draws = 0

    @contextlib.contextmanager
    def using(self, seed):
        """Within this block (while tf.data traces the map function) seeds derive from `seed`."""
        self._base, self._draws = tf.cast(seed, tf.int64), 0
        try:
            yield self
        finally:
            self._base = None

    def next(self, ordered=True):
        if self._base is None:
            raise RuntimeError("ElementSeed used outside `with seed.using(element_seed):`.")
        self._draws += 1
        return tf.random.experimental.stateless_fold_in(self._base, self._draws)

    def get_config(self):
        return {}


def seed_stream(seed):
    """Dataset of int64 [2] seeds, deterministic for `seed` and different every epoch."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
