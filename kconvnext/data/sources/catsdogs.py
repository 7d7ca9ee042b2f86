"""Cats vs dogs in both layouts users have.

- cats_and_dogs_filtered (the TF tutorials' zip): train/{cats,dogs}/, validation/{cats,dogs}/.
- the full Kaggle competition: train/cat.123.jpg, train/dog.45.jpg, no validation split, so a seeded,
  stratified hold-out. Both give the class names ["cats", "dogs"], so models trained on either agree.
"""
import re
from pathlib import Path

import numpy as np

from kconvnext.data.sources import folder
from kconvnext.data.sources.base import FileSplit, Source
from kconvnext.data.sources.locate import keras_download, locate
from kconvnext.data.split import holdout_split

FOLDER = "cats_and_dogs_filtered"
ORIGIN = "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip"
# TODO(maintainers): the official SHA-256 of the zip; not recorded here because this was written
# offline. Keras then skips the check.
FILE_HASH = None
CLASS_NAMES = ["cats", "dogs"]
_FLAT_NAME = re.compile(r"^(cat|dog)\.", re.IGNORECASE)


def _flat_files(folder_path):
    return [p for p in folder.image_files(folder_path) if _FLAT_NAME.match(Path(p).name)]


def _is_dataset(path):
    path = Path(path)
    return (path / "train").is_dir() or bool(_flat_files(path))


def _download():
    return keras_download(f"{FOLDER}.zip", ORIGIN, FILE_HASH, inner=FOLDER)


def load_source(data_dir, *, validation_fraction, seed):
    root = locate(FOLDER, data_dir, is_valid=_is_dataset, download=_download,
                  what="cats-vs-dogs (train/cats + train/dogs, or Kaggle's flat train/cat.N.jpg)")
    train_dir = root / "train" if (root / "train").is_dir() else root
    flat = _flat_files(train_dir)
    if flat:
        return _flat_source(train_dir, flat, validation_fraction, seed)
    source = folder.load_source(root, validation_fraction=validation_fraction, seed=seed)
    if source.class_names != CLASS_NAMES:
        raise ValueError(f"{str(root)!r}: expected class folders {CLASS_NAMES}, found {source.class_names}. "
                         "Use the 'folder' data set for other classes.")
    return source


def _flat_source(train_dir, files, validation_fraction, seed):
    labels = np.array([0 if Path(p).name.lower().startswith("cat") else 1 for p in files], dtype=np.int64)
    for label, name in enumerate(CLASS_NAMES):
        if not (labels == label).any():
            raise ValueError(f"{str(train_dir)!r} has no {name[:-1]}.*.jpg files; the flat Kaggle layout needs "
                             "both cat.N.jpg and dog.N.jpg.")
    everything = FileSplit(files, labels)
    train_idx, val_idx = holdout_split(labels, validation_fraction, seed)
    return Source(list(CLASS_NAMES), everything.subset(train_idx), everything.subset(val_idx),
                  location=str(train_dir))
