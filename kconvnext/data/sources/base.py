"""What every source returns: file lists (decoded in tf.data) or in-memory arrays (CIFAR)."""
from dataclasses import dataclass

import numpy as np


@dataclass
class FileSplit:
    paths: list
    labels: np.ndarray

    def __len__(self):
        return len(self.paths)

    def subset(self, idx):
        return FileSplit([self.paths[i] for i in idx], np.asarray(self.labels)[idx])


@dataclass
class ArraySplit:
    images: np.ndarray  # uint8 (N, H, W, 3)
    labels: np.ndarray

    def __len__(self):
        return len(self.labels)

    def subset(self, idx):
        return ArraySplit(self.images[idx], np.asarray(self.labels)[idx])


@dataclass
class Source:
    class_names: list
    train: object
    validation: object
    normalization: str = "imagenet"
    native_size: int = None  # pixel size of array data; None for files of any size
    location: str = ""
