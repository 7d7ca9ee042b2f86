"""CIFAR-10 from the official python batches, read with a restricted unpickler.

keras.datasets.cifar10 only accepts the official tarball (by hash), and plain pickle.load would run
whatever a tampered batch file asks for. The batches only ever hold a dict of bytes keys, a uint8
numpy array and lists of ints/bytes, so only numpy's array reconstruction is allowed through.
"""
import io
import pickle
from pathlib import Path

import numpy as np

from kconvnext.data.sources.base import ArraySplit, Source
from kconvnext.data.sources.locate import keras_download, locate

FOLDER = "cifar-10-batches-py"
ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
FILE_HASH = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"  # as in keras.datasets.cifar10
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
DEFAULT_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class SafeUnpickler(pickle.Unpickler):
    """Refuses every global except numpy's ndarray reconstruction."""

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refused to load {module}.{name}: a CIFAR-10 batch holds only numpy arrays and lists of ints."
        )


def read_pickle(path):
    try:
        with open(path, "rb") as f:
            return SafeUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise ValueError(f"{str(path)!r} is not a valid CIFAR-10 batch: {error}") from error


def read_batch(path):
    """(images uint8 (N, 32, 32, 3), labels int64 (N,)) from one batch file, validated."""
    batch = read_pickle(path)
    data = batch.get(b"data") if isinstance(batch, dict) else None
    labels = batch.get(b"labels") if isinstance(batch, dict) else None
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072
            or not isinstance(labels, list) or len(labels) != len(data)
            or not all(isinstance(v, int) and 0 <= v < 10 for v in labels)):
        raise ValueError(f"{str(path)!r} is not a CIFAR-10 batch: expected a dict with b'data' uint8 (N, 3072) "
                         "and b'labels' (N ints in 0..9).")
    # Rows are the R, G, then B planes, each 32x32 row-major.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.asarray(labels, dtype=np.int64)


def _read_split(root, names):
    parts = [read_batch(root / n) for n in names]
    return ArraySplit(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def _class_names(root):
    meta = root / "batches.meta"
    if meta.is_file():
        names = read_pickle(meta).get(b"label_names")
        if isinstance(names, list) and len(names) == 10 and all(isinstance(n, bytes) for n in names):
            return [n.decode() for n in names]
    return list(DEFAULT_NAMES)


def _is_dataset(path):
    return all((Path(path) / n).is_file() for n in [*TRAIN_BATCHES, TEST_BATCH])


def _download():
    return keras_download("cifar-10-python.tar.gz", ORIGIN, FILE_HASH, inner=FOLDER)


def load_source(data_dir, *, validation_fraction=None, seed=None):
    """The official split: data_batch_1..5 train, test_batch validation (validation_fraction unused)."""
    root = locate(FOLDER, data_dir, is_valid=_is_dataset, download=_download,
                  what=f"CIFAR-10 python batches ({', '.join(TRAIN_BATCHES)}, {TEST_BATCH})")
    return Source(_class_names(root), _read_split(root, TRAIN_BATCHES), _read_split(root, [TEST_BATCH]),
                  normalization="cifar10", native_size=32, location=str(root))
