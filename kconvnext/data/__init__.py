"""Input pipelines: `load(name, ...)` gives train/validation tf.data datasets for the models.

Pixels are float32 in [0, 255]; the models normalise (kconvnext/preprocessing.py).
"""
from kconvnext.data.config import AugmentConfig, DataBundle
from kconvnext.data.loader import load

__all__ = ["AugmentConfig", "DataBundle", "load"]
