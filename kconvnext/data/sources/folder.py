"""Any directory of class sub-folders (the image_dataset_from_directory / ImageFolder layout).

Either ROOT/train/<class>/* with ROOT/validation/ (or val/) beside it, or ROOT/<class>/* with a
seeded, stratified hold-out of validation_fraction.
"""
from pathlib import Path

import numpy as np

from kconvnext.data.sources.base import FileSplit, Source
from kconvnext.data.split import holdout_split

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
VALIDATION_NAMES = ("validation", "val")


def require_dir(path, expected):
    path = Path(path)
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise FileNotFoundError(f"{str(path)!r} {what}; expected {expected}.")
    return path


def image_files(folder, recursive=False):
    """Image files in `folder` (and below, if recursive, as ImageFolder does), sorted; hidden ones skipped."""
    found = Path(folder).rglob("*") if recursive else Path(folder).iterdir()
    return sorted(str(p) for p in found if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def read_class_folders(root):
    """{class_name: [paths]} for every sub-folder of root; errors name the folder and the fix."""
    root = require_dir(root, "a folder with one sub-folder of images per class")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"{str(root)!r} has no class sub-folders; expected {root}/<class_name>/<images> "
                         f"with at least 2 classes (files found directly in it are not labelled).")
    found = {c.name: image_files(c, recursive=True) for c in classes}
    empty = [str(root / name) for name, files in found.items() if not files]
    if empty:
        raise ValueError(f"Empty class folder(s) {empty}: no {'/'.join(IMAGE_EXTENSIONS)} files inside. "
                         "Add images or remove the folder.")
    require_classes(list(found), root)
    return found


def require_classes(class_names, where):
    if len(class_names) < 2:
        raise ValueError(f"{str(where)!r} has a single class {class_names}; a classifier needs at least 2 "
                         "class folders (one per class).")


def to_split(found, class_names):
    paths, labels = [], []
    for label, name in enumerate(class_names):
        paths.extend(found[name])
        labels.extend([label] * len(found[name]))
    return FileSplit(paths, np.array(labels, dtype=np.int64))


def validation_dir(root):
    return next((root / n for n in VALIDATION_NAMES if (root / n).is_dir()), None)


def load_source(data_dir, *, validation_fraction, seed):
    if data_dir is None:
        raise ValueError("The 'folder' data set needs data_dir (--data-dir): a folder of class sub-folders.")
    root = require_dir(data_dir, "a folder of class sub-folders (or train/ and validation/ with them)")
    val_dir = validation_dir(root)
    if (root / "train").is_dir() and val_dir is not None:
        return split_layout(root / "train", val_dir)
    found = read_class_folders(root)
    class_names = sorted(found)
    everything = to_split(found, class_names)
    train_idx, val_idx = holdout_split(everything.labels, validation_fraction, seed)
    return Source(class_names, everything.subset(train_idx), everything.subset(val_idx), location=str(root))


def split_layout(train_dir, val_dir):
    """train/ and validation/ folders that must hold the same classes."""
    train, val = read_class_folders(train_dir), read_class_folders(val_dir)
    if set(train) != set(val):
        raise ValueError(
            f"Class folders differ between {str(train_dir)!r} {sorted(train)} and {str(val_dir)!r} {sorted(val)}; "
            f"expected the same classes in both (only in train: {sorted(set(train) - set(val))}, "
            f"only in validation: {sorted(set(val) - set(train))})."
        )
    class_names = sorted(train)
    return Source(class_names, to_split(train, class_names), to_split(val, class_names),
                  location=str(train_dir.parent))
