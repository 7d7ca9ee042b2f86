"""Input pipelines without TensorFlow: keras.utils.PyDataset over numpy, for Keras on JAX or PyTorch.

A GPU machine with JAX but no TensorFlow cannot run tf.data. `load` here has kconvnext.data.load's
signature and contract (batches of float32 [0, 255] images and float32 one-hot labels, a DataBundle
with the same facts), built on the same source / limit / bad-file logic (loader.select_splits).

Augmentation is the geometric part of the recipe, in numpy: CIFAR's reflect-pad-and-crop or
torchvision's random resized crop (bicubic; the tf.data pipeline's algorithm), and horizontal flips. RandAugment, Mixup/CutMix and random erasing
are tf.data-only; `unsupported(config)` names them so the trainer can say so instead of silently
training a different recipe. Randomness comes from (seed, epoch, batch index), so batches do not
depend on worker scheduling and a resumed run can jump to its epoch (`skip_epochs`). Training epochs
drop the last partial batch, as the tf.data pipeline does (see epochs.full_batches).
"""
import math

import keras
import numpy as np
from PIL import Image

from kconvnext.data.augment_numpy import center_crop_pil, cifar_pad, pad_and_crop, random_resized_crop_pil
from kconvnext.data.config import AugmentConfig
from kconvnext.data.loader import check_label_smoothing, select_splits
from kconvnext.data.sources.base import ArraySplit


def unsupported(config):
    """Recipe augmentations this path does not apply (empty when it matches the recipe)."""
    out = []
    if config.randaugment:
        out.append("RandAugment")
    if config.mixes:
        out.append("Mixup/CutMix")
    if config.random_erasing:
        out.append("random erasing")
    return out


class ImageBatches(keras.utils.PyDataset):
    """Batches of one split, augmented (train) or resized + center-cropped (validation)."""

    def __init__(self, split, *, num_classes, image_size, batch_size, config, train, seed=0, workers=4,
                 label_smoothing=0.0):
        super().__init__(workers=workers, use_multiprocessing=False)
        self.split = split
        self.labels = np.asarray(split.labels, dtype=np.int64)
        self.num_classes = int(num_classes)
        self.image_size = int(image_size)
        self.batch_size = int(batch_size)
        self.config = config
        self.train = bool(train)
        self.seed = int(seed)
        self.epoch = 0
        self.max_batches = None
        self._order = self._permutation()
        # Training targets carry the smoothing (as the tf.data pipeline's); validation's are one-hot.
        smoothing = float(label_smoothing) if self.train else 0.0
        self._targets = np.eye(self.num_classes, dtype="float32") * (1 - smoothing) + smoothing / self.num_classes

    def __len__(self):
        count = len(self.labels)
        n = count // self.batch_size if self.train else math.ceil(count / self.batch_size)  # full training batches
        return n if self.max_batches is None else min(n, self.max_batches)

    def limit_batches(self, n):
        """Epochs of only the first n batches (of a fresh shuffle each epoch): a budget under one epoch."""
        self.max_batches = int(n)

    @property
    def num_batches(self):
        return len(self)

    def _permutation(self):
        if not self.train:
            return np.arange(len(self.labels))
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.labels))

    def skip_epochs(self, epochs):
        """Continue as if `epochs` epochs had been read (resume)."""
        self.epoch = int(epochs)
        self._order = self._permutation()

    def on_epoch_end(self):
        if self.train:
            self.skip_epochs(self.epoch + 1)

    def __getitem__(self, index):
        idx = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.train else None
        images = np.stack([self._image(i, rng) for i in idx]).astype("float32")
        if self.train and self.config.hflip:
            flip = rng.random(len(idx)) < 0.5
            images[flip] = images[flip, :, ::-1]
        return images, self._targets[self.labels[idx]]

    def _image(self, i, rng):
        size, config = self.image_size, self.config
        if isinstance(self.split, ArraySplit):
            image = self.split.images[i]
            if image.shape[0] != size:
                image = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
            if self.train and config.random_resized_crop:
                image = pad_and_crop(image, size, rng, cifar_pad(size))
            return image
        with Image.open(self.split.paths[i]) as im:
            im = im.convert("RGB")
            if self.train and config.random_resized_crop:
                return random_resized_crop_pil(im, size, config.crop_scale, rng)
            return center_crop_pil(im, size, config.eval_crop_ratio)


def load(name, *, data_dir=None, image_size=None, batch_size=32, seed=0, augment=None, validation_fraction=0.1,
         limit=None, output_dir=None, workers=4, selection_fraction=0.0, label_smoothing=0.0):
    """kconvnext.data.load without TensorFlow: the DataBundle holds two ImageBatches."""
    config = AugmentConfig.resolve(augment)
    label_smoothing = check_label_smoothing(label_smoothing)
    splits = select_splits(name, data_dir=data_dir, image_size=image_size, batch_size=batch_size, seed=seed,
                           validation_fraction=validation_fraction, limit=limit, output_dir=output_dir,
                           selection_fraction=selection_fraction)
    kwargs = dict(num_classes=splits.num_classes, image_size=splits.image_size, batch_size=int(batch_size),
                  config=config, seed=int(seed), workers=workers)
    selection = ImageBatches(splits.selection, train=False, **kwargs) if splits.selection is not None else None
    return splits.bundle(train=ImageBatches(splits.train, train=True, label_smoothing=label_smoothing, **kwargs),
                         selection=selection, validation=ImageBatches(splits.validation, train=False, **kwargs),
                         label_smoothing=label_smoothing)
