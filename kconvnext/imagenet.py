"""The 1,000 ImageNet-1k class names (torchvision's wording, index order of every preset's head)
and `decode_predictions`, so `weights="imagenet"` models can be read without a download."""
import functools
from pathlib import Path

import numpy as np

_CLASSES_FILE = Path(__file__).with_name("imagenet_classes.txt")


@functools.lru_cache(maxsize=1)
def imagenet_classes():
    names = _CLASSES_FILE.read_text(encoding="utf-8").splitlines()
    if len(names) != 1000:
        raise RuntimeError(f"{_CLASSES_FILE} holds {len(names)} class names, expected 1000; reinstall kconvnext.")
    return tuple(names)


def decode_predictions(probs, top=5, class_names=None):
    """[(class index, class name, probability), ...top] per row of `probs` (N, C) or one (C,) row.

    class_names default to the ImageNet-1k names (C must then be 1000). Pass logits through a
    softmax first if you want probabilities (kconvnext models output logits).
    """
    probs = np.asarray(probs, dtype=np.float64)
    single = probs.ndim == 1
    probs = probs[None] if single else probs
    if probs.ndim != 2:
        raise ValueError(f"decode_predictions expects (N, C) or (C,) scores, got shape {probs.shape}.")
    names = list(class_names) if class_names is not None else list(imagenet_classes())
    if probs.shape[1] != len(names):
        raise ValueError(f"decode_predictions: {probs.shape[1]} scores per row, but {len(names)} class names "
                         "(ImageNet has 1000; pass class_names= for another head).")
    top = max(1, min(int(top), len(names)))
    out = []
    for row in probs:
        order = np.argsort(-row, kind="stable")[:top]
        out.append([(int(i), names[i], float(row[i])) for i in order])
    return out[0] if single else out
