"""Held-out images for export checks, and agreement between an export and the Keras model."""
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from kconvnext.export.preprocess import decode_and_preprocess

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
DEFAULT_NUM_VALIDATION = 32
DEFAULT_NUM_CALIBRATION = 100


@dataclass
class ImageSet:
    encoded: list  # encoded image bytes (JPEG/PNG/...)
    source: str  # human-readable: which folder, or "random"
    paths: list = None
    labels: list = None  # class folder names when read from a class-per-folder tree


def list_images(folder):
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"Image folder {str(folder)!r} does not exist; pass a folder of images.")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ValueError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) found under {str(folder)!r}.")
    return files


def sample_evenly(items, count):
    """`count` items spread evenly over the sorted list (so every class folder is represented)."""
    if count is None or count >= len(items):
        return list(items)
    idx = np.linspace(0, len(items) - 1, num=count).round().astype(int)
    return [items[i] for i in idx]


def folder_images(folder, count):
    files = sample_evenly(list_images(folder), count)
    return ImageSet(
        encoded=[p.read_bytes() for p in files],
        source=f"{len(files)} images from {folder}",
        paths=files,
        labels=[p.parent.name for p in files],
    )


def random_images(count, image_size, seed=0):
    """Deterministic random images, PNG-encoded (lossless), of varied sizes and aspect ratios."""
    rng = np.random.RandomState(seed)
    encoded = []
    for _ in range(count):
        h = int(image_size * rng.uniform(1.0, 1.6)) + 1
        w = int(image_size * rng.uniform(1.0, 1.6)) + 1
        # Smooth-ish random images (low-res noise upsampled) so they look more like photos.
        small = rng.randint(0, 256, size=(max(h // 4, 2), max(w // 4, 2), 3)).astype(np.float32)
        img = tf.image.resize(small, [h, w], method="bilinear").numpy()
        img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
        encoded.append(tf.io.encode_png(img).numpy())
    return ImageSet(encoded=encoded, source=f"{count} deterministic random images (seed {seed}; "
                                            "pass --validation-dir for real held-out images)")


def load_validation_images(validation_dir, count, image_size):
    if validation_dir:
        return folder_images(validation_dir, count)
    return random_images(count, image_size)


def preprocess_all(encoded, image_size, crop_ratio):
    """Encoded bytes -> float32 (N, S, S, 3) with the evaluation geometry."""
    return np.stack([
        decode_and_preprocess(tf.constant(b), image_size, crop_ratio).numpy() for b in encoded
    ])


def softmax(logits):
    logits = np.asarray(logits, dtype=np.float64)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def keras_probabilities(model, pixels, batch_size=16):
    out = [np.asarray(model(pixels[i:i + batch_size], training=False)) for i in range(0, len(pixels), batch_size)]
    return softmax(np.concatenate(out))


@dataclass
class Agreement:
    name: str  # what was compared, e.g. "tflite int8" or "saved_model serving_default"
    num_images: int
    top1_agreement: float  # fraction of images with the same top-1 class as the Keras model
    max_abs_diff: float  # max |p_export - p_keras| over images and classes
    images: str = ""  # where the images came from
    accuracy: float = None  # of the export, when labels are known
    keras_accuracy: float = None
    # Images whose Keras top-1 leads the runner-up by at most 2 x max_abs_diff: the only ones an
    # error of this size can flip. Many of them means the model is unsure, not the export broken.
    within_reach: int = 0

    def line(self):
        acc = ""
        if self.accuracy is not None:
            delta = 100 * (self.accuracy - self.keras_accuracy)
            acc = f", accuracy {self.accuracy:.3f} (Keras {self.keras_accuracy:.3f}, {delta:+.1f} pt)"
        reach = ""
        if self.top1_agreement < 1:
            reach = f" ({self.within_reach} image(s) with a Keras top-1 margin within 2x that)"
        return (f"{self.name}: top-1 agreement {self.top1_agreement * 100:.1f}% "
                f"({round(self.top1_agreement * self.num_images)}/{self.num_images}), "
                f"max |dp| {self.max_abs_diff:.2e}{reach}{acc}")

    def to_dict(self):
        return asdict(self)


def compare(name, probs, reference, images=None):
    probs, reference = np.asarray(probs, np.float32), np.asarray(reference, np.float32)
    if probs.shape != reference.shape:
        raise ValueError(f"{name}: output shape {probs.shape} != Keras {reference.shape}.")
    max_abs_diff = float(np.abs(probs - reference).max())
    top2 = np.sort(reference, axis=-1)[:, -2:]
    return Agreement(
        name=name,
        num_images=len(probs),
        top1_agreement=float(np.mean(probs.argmax(-1) == reference.argmax(-1))),
        max_abs_diff=max_abs_diff,
        images=images.source if images is not None else "",
        within_reach=int(np.sum(top2[:, 1] - top2[:, 0] <= 2 * max_abs_diff)),
    )


def add_accuracy(agreement, probs, reference, images, class_names):
    """Accuracy against folder labels, when every label is one of the class names."""
    if images is None or not images.labels or not set(images.labels) <= set(class_names):
        return agreement
    y = np.array([class_names.index(label) for label in images.labels])
    agreement.accuracy = float(np.mean(np.asarray(probs).argmax(-1) == y))
    agreement.keras_accuracy = float(np.mean(np.asarray(reference).argmax(-1) == y))
    return agreement
