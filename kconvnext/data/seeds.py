"""Stateless per-element random seeds for the tf.data augmentations.

A stateful random op (or a Keras SeedGenerator variable) in a parallel tf.data map races: the order
of its updates decides the draws, so batches would not be reproducible. Instead every element
(image or batch) is zipped with its own stateless seed (seed_stream) and every draw derives from it
(`split`), so maps run in parallel and the same seed still gives the same batches; every epoch draws
new element seeds (Dataset.random(rerandomize_each_iteration=True)), so augmentation differs per epoch.
"""
import tensorflow as tf


def seed_stream(seed):
    """Dataset of int64 [2] seeds, deterministic for `seed` and different every epoch."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)


def split(seed, n):
    """n independent stateless seeds from one."""
    return tf.unstack(tf.random.experimental.stateless_split(seed, n))
