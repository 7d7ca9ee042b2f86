"""The labels file every export carries: one class name a line, named labels.txt.

labels.txt is TFLite Model Maker's name for it (`label_filename="labels.txt"`) and what the TFLite
Task Library / Android examples load; TF Serving finds it in a SavedModel's assets/. Beside a
.tflite it is shared by the exports of one model in one folder (fp32, fp16, int8 ...): a
labels.txt there that lists other classes is never replaced silently.
"""
from pathlib import Path

LABELS_FILE = "labels.txt"


def labels_text(class_names):
    """One class name a line, as TFLite tooling reads it."""
    bad = [n for n in class_names if not str(n).strip() or "\n" in str(n) or "\r" in str(n)]
    if bad:
        raise ValueError(f"class names must be non-empty and on one line each for {LABELS_FILE}; got {bad!r}.")
    return "".join(f"{n}\n" for n in class_names)


def tflite_labels_target(tflite_path, class_names, overwrite=False):
    """labels.txt beside `tflite_path`; one listing other classes needs overwrite (checked before any work)."""
    path = Path(tflite_path).with_name(LABELS_FILE)
    text = labels_text(class_names)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; the labels of {Path(tflite_path).name} are written there.")
    if path.exists() and not overwrite and path.read_text(encoding="utf-8") != text:
        raise FileExistsError(
            f"{path} lists other class names than {', '.join(class_names)}; pass --overwrite to replace it, "
            "or --output a .tflite in another folder.")
    return path
