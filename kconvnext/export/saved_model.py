"""SavedModel for TF Serving: string-image and float-pixel signatures with named outputs.

Signatures (both return the same outputs):
  serving_default  image_bytes: string [B]  encoded JPEG/PNG (REST: {"b64": ...}); decoded,
                   resized and center-cropped in the graph exactly as evaluation does.
  serving_pixels   images: float32 [B, S, S, 3], pixels in [0, 255] already resized/cropped.
Outputs: probabilities float32 [B, C]; class_index int64 [B]; class_name string [B] (top-1);
         class_names string [B, C] (the label of each probabilities column, TF Serving's
         Classify-style "classes").
assets/labels.txt: the class names, one a line (a tf.saved_model.Asset, so copies of the model
carry it); assets.extra/kconvnext.json: class names, image size and crop ratio.
"""
import json
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kconvnext.export.labels import LABELS_FILE, labels_text
from kconvnext.export.preprocess import as_transform, preprocess_batch

DEFAULT_SIGNATURE = "serving_default"
PIXELS_SIGNATURE = "serving_pixels"
OUTPUT_KEYS = ("probabilities", "class_index", "class_name", "class_names")
METADATA_FILE = "assets.extra/kconvnext.json"

def write_saved_model(model, path, *, class_names, image_size, crop_ratio, metadata=None):
    """Write `model` (logits out, [0, 255] pixels in) as a SavedModel at `path` (a version folder)."""
    names = tf.constant(list(class_names), dtype=tf.string)

    # The model is traced for one signature: the bytes one calls the pixels one's concrete function
    # (calling the tf.function inside another graph would trace it again), and the model is not
    # `track`ed (ExportArchive finds the variables in the endpoints; tracking only adds a walk for
    # lookup tables, which traces the model's default save signature too). ConvNeXt-T: 5 traces ->
    # 2 (TensorFlow traces a new tf.function's first concrete function twice), 7.0 -> 4.05 s.
    @tf.function(input_signature=[tf.TensorSpec([None, image_size, image_size, 3], tf.float32, name="images")],
                 autograph=False)
    def outputs(pixels):
        probs = tf.nn.softmax(tf.cast(model(pixels, training=False), tf.float32), axis=-1)
        index = tf.argmax(probs, axis=-1, output_type=tf.int64)
        return {
            "probabilities": probs,
            "class_index": index,
            "class_name": tf.gather(names, index),
            "class_names": tf.tile(names[tf.newaxis, :], [tf.shape(probs)[0], 1]),
        }

    from_pixels = outputs.get_concrete_function()

    def from_bytes(image_bytes):
        return from_pixels(preprocess_batch(image_bytes, image_size, crop_ratio))

    archive = keras.export.ExportArchive()
    archive.add_endpoint(
        DEFAULT_SIGNATURE, from_bytes,
        input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")],
    )
    archive.add_endpoint(PIXELS_SIGNATURE, outputs)
    with tempfile.TemporaryDirectory(prefix="kconvnext-labels-") as tmp:
        labels = Path(tmp) / LABELS_FILE
        labels.write_text(labels_text(class_names), encoding="utf-8")
        write_archive(archive, path, assets={"labels_file": tf.saved_model.Asset(str(labels))})
    extra = path / "assets.extra"
    extra.mkdir(exist_ok=True)
    with open(path / METADATA_FILE, "w", encoding="utf-8") as f:
        transform = as_transform(image_size, crop_ratio)
        json.dump({"class_names": list(class_names), "image_size": int(image_size),
                   "eval_crop_ratio": transform.crop_pct, "eval_transform": transform.to_dict(),
                   **(metadata or {})}, f, indent=2)


def write_archive(archive, path, assets=None):
    """ExportArchive.write_out, saving each weight once, plus `assets` ({attribute: tf.saved_model.Asset}:
    copied into assets/, found after loading as `loaded.<attribute>.asset_path`).

    Keras' archive keeps its tracked Keras variables in `variables`/`trainable_variables`/
    `non_trainable_variables` *and* the tf.Variables the endpoints use in `_all_variables`, and
    both get written: every weight twice (2x the size on disk and in TF Serving's memory). The
    endpoints only need the latter, so the public lists are emptied before writing.
    """
    trackable = getattr(archive, "_tf_trackable", None)
    if trackable is not None and hasattr(trackable, "variables"):
        for attr in ("variables", "trainable_variables", "non_trainable_variables"):
            setattr(trackable, attr, [])
    if assets:
        # ExportArchive.track keeps only TrackableResources (lookup tables); an Asset is saved
        # when it is an attribute of the object tf.saved_model.save writes.
        if trackable is None:
            raise RuntimeError("This Keras version's ExportArchive has no TensorFlow trackable to attach assets to.")
        for attr, asset in assets.items():
            setattr(trackable, attr, asset)
    archive.write_out(str(path), verbose=False)


def run_signatures(path, encoded, pixels, batch_size=16):
    """Load the SavedModel and call both signatures -> (outputs of serving_default, of serving_pixels)."""
    loaded = tf.saved_model.load(str(path))
    by_bytes = loaded.signatures[DEFAULT_SIGNATURE]
    by_pixels = loaded.signatures[PIXELS_SIGNATURE]

    def batched(fn, kwarg, data):
        parts = [fn(**{kwarg: tf.constant(data[i:i + batch_size])}) for i in range(0, len(data), batch_size)]
        return {k: np.concatenate([p[k].numpy() for p in parts]) for k in OUTPUT_KEYS}

    return batched(by_bytes, "image_bytes", list(encoded)), batched(by_pixels, "images", pixels)
