"""kconvnext.data.load: one call from a data set name to train/validation datasets and their facts.

`select_splits` (find the source, apply the limit, drop unreadable files, count) needs no
TensorFlow, so the tf.data pipelines here and the PyDataset ones in portable.py share it.
"""
from dataclasses import dataclass

import numpy as np

from kconvnext.data.config import AugmentConfig, DataBundle
from kconvnext.data.scan import report_skipped, scan_files
from kconvnext.data.sources import SOURCES
from kconvnext.data.sources.base import ArraySplit, FileSplit
from kconvnext.data.split import holdout_split, stratified_limit

DEFAULT_IMAGE_SIZE = 224
CACHE_LIMIT_BYTES = 2 * 1024 ** 3  # decoded training images kept in memory, at most (an estimate)


def load(name, *, data_dir=None, image_size=None, batch_size=32, seed=0, augment=None, validation_fraction=0.1,
         limit=None, output_dir=None, shuffle_buffer=None, cache_limit_bytes=CACHE_LIMIT_BYTES,
         selection_fraction=0.0, eval_transform=None, label_smoothing=0.0):
    """Train and validation tf.data.Datasets of (float32 [0, 255] images, one-hot labels) + class facts.

    name: "catsdogs" | "cifar10" | "folder" (folder needs data_dir). image_size defaults to the data
    set's native size for CIFAR (32) and 224 for image files. limit: at most this many images per split
    (stratified, seeded). Unusable image files are skipped, warned about and listed in
    DataBundle.skipped (and output_dir/skipped_files.txt). cache_limit_bytes: decoded training image
    files are kept in memory when the estimate stays under it (default 2 GiB; None: never).
    augment: None or True (default) applies the ConvNeXt recipe's augmentation (RandAugment,
    MixUp/CutMix, random erasing, ...); False or "none" none; a dict or AugmentConfig, those settings.
    Every dataset has a known length (len() works; model.fit takes exactly len(train) steps an epoch):
    train has full batches only, validation and selection every image.
    selection_fraction: hold out this share of the training images (seeded, stratified) as
    DataBundle.selection, preprocessed like validation, for choosing checkpoints.
    eval_transform: the validation/selection preprocessing of image files (a pretrained preset's
    EvalTransform, kconvnext.preprocessing_for); default: bilinear at augment's eval_crop_ratio.
    label_smoothing: fold this smoothing into the training targets as timm's Mixup does (one-hot
    smoothed to s/K off and 1 - s + s/K on the class, then mixed), so train with a loss that does not
    smooth (CategoricalCrossentropy(label_smoothing=0)); the recipe uses 0.1. Default 0: plain (mixed)
    one-hot targets, for a loss that smooths itself. Validation/selection targets are always one-hot.
    """
    from kconvnext.data.pipeline import train_dataset, validation_dataset

    config = AugmentConfig.resolve(augment)
    label_smoothing = check_label_smoothing(label_smoothing)
    splits = select_splits(name, data_dir=data_dir, image_size=image_size, batch_size=batch_size, seed=seed,
                           validation_fraction=validation_fraction, limit=limit, output_dir=output_dir,
                           selection_fraction=selection_fraction)
    kwargs = dict(num_classes=splits.num_classes, image_size=splits.image_size, batch_size=int(batch_size),
                  config=config)
    evaluation = dict(kwargs, transform=eval_transform)
    return splits.bundle(
        selection=validation_dataset(splits.selection, **evaluation) if splits.selection is not None else None,
        train=train_dataset(splits.train, seed=int(seed), shuffle_buffer=shuffle_buffer,
                            cache_limit_bytes=cache_limit_bytes, normalization=splits.source.normalization,
                            label_smoothing=label_smoothing, **kwargs),
        validation=validation_dataset(splits.validation, **evaluation), label_smoothing=label_smoothing,
    )


def check_label_smoothing(value):
    value = float(value or 0.0)
    if not 0 <= value < 1:
        raise ValueError(f"label_smoothing must be in [0, 1), got {value!r}.")
    return value


@dataclass
class Splits:
    """The chosen train/validation images of a source, before any pipeline reads them."""
    source: object
    train: object
    validation: object
    skipped: list
    counts: dict
    image_size: int
    selection: object = None  # held out of train for checkpoint selection, or None

    @property
    def num_classes(self):
        return len(self.source.class_names)

    def bundle(self, train, validation, selection=None, label_smoothing=0.0):
        return DataBundle(label_smoothing=label_smoothing,
            selection=selection, selection_count=len(self.selection) if self.selection is not None else 0,
            train=train, validation=validation, class_names=list(self.source.class_names),
            train_count=len(self.train), validation_count=len(self.validation), class_counts=self.counts,
            skipped=self.skipped, normalization=self.source.normalization,
            small_input=self.image_size < 64, image_size=self.image_size,
            arrays=isinstance(self.train, ArraySplit),
        )


def select_splits(name, *, data_dir=None, image_size=None, batch_size=32, seed=0, validation_fraction=0.1,
                  limit=None, output_dir=None, selection_fraction=0.0):
    if name not in SOURCES:
        raise ValueError(f"Unknown data set {name!r}; use one of {sorted(SOURCES)} (folder: --data-dir DIR).")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    source = SOURCES[name](data_dir, validation_fraction=validation_fraction, seed=seed)
    image_size = int(image_size or source.native_size or DEFAULT_IMAGE_SIZE)
    train = source.train.subset(stratified_limit(source.train.labels, limit, seed))
    validation = source.validation.subset(stratified_limit(source.validation.labels, limit, seed))
    skipped = []
    if isinstance(train, FileSplit):
        train, validation, skipped = _drop_unusable(train, validation)
        report_skipped(skipped, output_dir)
    selection = None
    if selection_fraction:
        # A seed of its own: the same recipe with and without a hold-out keeps its validation split.
        keep, held = holdout_split(train.labels, selection_fraction, seed + 1, name="selection_fraction")
        train, selection = train.subset(keep), train.subset(held)
    counts = {"train": _counts(train, source, "train"), "validation": _counts(validation, source, "validation")}
    if selection is not None:
        counts["selection"] = _counts(selection, source, "selection")
    return Splits(source, train, validation, skipped, counts, image_size, selection)


def _drop_unusable(train, validation):
    usable, skipped = scan_files(train.paths + validation.paths)
    keep = [
        FileSplit([u for u in part if u is not None], split.labels[[u is not None for u in part]])
        for part, split in ((usable[:len(train)], train), (usable[len(train):], validation))
    ]
    return keep[0], keep[1], skipped


def _counts(split, source, which):
    """{class: n}; never silently train on zero images of a split or (for train) of a class."""
    per_class = np.bincount(np.asarray(split.labels, dtype=np.int64), minlength=len(source.class_names))
    if which == "train" and (per_class == 0).any() or len(split) == 0:
        empty = [n for n, c in zip(source.class_names, per_class) if c == 0]
        raise ValueError(f"No usable {which} images for class(es) {empty} in {source.location!r} "
                         "(all missing or skipped as unreadable); expected at least one image per class.")
    return {name: int(c) for name, c in zip(source.class_names, per_class)}
