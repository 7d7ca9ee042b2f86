#!/usr/bin/env python
"""Export benchmark: SavedModel and every TFLite variant on this CPU, in one table.

For each export: file size, latency per image (batch 1, median of --runs after warm-up), and
agreement with the Keras model (top-1 agreement, max |dp|, accuracy) on cats_and_dogs_filtered
validation images. Prints the table and writes benchmarks/results/export.json.

    python benchmarks/export.py                       # quick-trained convnext_atto at 64 px
    python benchmarks/export.py runs/catsdogs         # a real run folder / .keras checkpoint

Without MODEL_FILE a convnext_atto is trained for --train-steps steps (no augmentation) so the
weights and BatchNorm/LayerNorm statistics are not random; the accuracy column then says little
about the architecture, the agreement columns are what this benchmark is for.
"""
import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import kconvnext.export as kx  # noqa: E402
from kconvnext.export import tflite, validate  # noqa: E402
from kconvnext.models import create_model  # noqa: E402
from common import median_seconds  # noqa: E402

DATA = Path(os.environ.get("KCONVNEXT_SHARED_DATA", ROOT.parent / "shared" / "data")) / "cats_and_dogs_filtered"


def quick_trained_run(folder, model_name, image_size, steps, batch_size=32):
    train = validate.folder_images(DATA / "train", steps * batch_size)
    classes = sorted({label for label in train.labels})
    x = validate.preprocess_all(train.encoded, image_size, 0.875)
    y = keras.utils.to_categorical([classes.index(label) for label in train.labels], len(classes))
    keras.utils.set_random_seed(0)
    model = create_model(model_name, input_shape=(image_size, image_size, 3), num_classes=len(classes))
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), jit_compile=False,
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=True, verbose=0)
    (folder / "checkpoints").mkdir(parents=True)
    model.save(folder / "checkpoints" / "last.keras")
    (folder / "run.json").write_text(json.dumps({"class_names": classes, "image_size": image_size,
                                                 "eval_crop_ratio": 0.875}))
    return folder


def latency_ms(fn, runs, warmup=5):
    return 1000 * median_seconds(fn, warmup=warmup, repeats=runs)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_file", nargs="?", help=".keras checkpoint or run folder (default: quick-train one)")
    p.add_argument("--model", default="convnext_atto", help="architecture to quick-train without MODEL_FILE")
    p.add_argument("--image-size", type=int, default=64, help="for the quick-trained model")
    p.add_argument("--train-steps", type=int, default=30)
    p.add_argument("--num-images", type=int, default=200, help="validation images for agreement")
    p.add_argument("--num-calibration", type=int, default=100)
    p.add_argument("--runs", type=int, default=50, help="timed batch-1 runs per variant")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "export.json"))
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kconvnext-export-bench-"))
    try:
        source = Path(args.model_file) if args.model_file else quick_trained_run(
            work / "run", args.model, args.image_size, args.train_steps)
        common = dict(validation_dir=DATA / "validation", num_validation=args.num_images, verbose=False)
        rows = []

        sm = kx.export(source, output=work / "saved_model", **common)
        model = keras.saving.load_model(
            source if str(source).endswith(".keras") else next(
                (source / "checkpoints" / n) for n in ("best.keras", "last.keras")
                if (source / "checkpoints" / n).is_file()), compile=False)
        size = sm.image_size
        images = validate.folder_images(DATA / "validation", 1)
        pixel = validate.preprocess_all(images.encoded, size, 0.875)
        keras_fn = tf.function(lambda x: model(x, training=False))
        rows.append({"variant": "keras (reference)", "size_mb": None,
                     "latency_ms": latency_ms(lambda: keras_fn(pixel).numpy(), args.runs),
                     "top1_agreement": 1.0, "max_abs_diff": 0.0,
                     "accuracy": sm.validation[0].keras_accuracy})
        loaded = tf.saved_model.load(str(sm.path))
        by_bytes, by_pixels = loaded.signatures["serving_default"], loaded.signatures["serving_pixels"]
        encoded = tf.constant(images.encoded)
        for check, fn in ((sm.validation[0], lambda: by_bytes(image_bytes=encoded)),
                          (sm.validation[1], lambda: by_pixels(images=tf.constant(pixel)))):
            rows.append({"variant": check.name.replace("saved_model ", "SavedModel "), "size_mb": sm.size_bytes / 1e6,
                         "latency_ms": latency_ms(fn, args.runs), "top1_agreement": check.top1_agreement,
                         "max_abs_diff": check.max_abs_diff, "accuracy": check.accuracy})
        for quantize in ("none", "fp16", "dynamic", "int8"):
            r = kx.export(source, format="tflite", quantize=quantize, output=work / f"{quantize}.tflite",
                          calibration_dir=DATA / "train", num_calibration=args.num_calibration, **common)
            runner = tflite.Runner(model_path=r.path, num_threads=args.threads)
            prepared = runner.prepare(pixel)[0]
            check = r.validation[0]
            rows.append({"variant": check.name.replace("tflite", "TFLite"), "size_mb": r.size_bytes / 1e6,
                         "latency_ms": latency_ms(lambda: runner.run_prepared(prepared), args.runs),
                         "top1_agreement": check.top1_agreement, "max_abs_diff": check.max_abs_diff,
                         "accuracy": check.accuracy})
    finally:
        shutil.rmtree(work, ignore_errors=True)

    name = args.model_file or f"{args.model} @ {args.image_size} px, quick-trained {args.train_steps} steps"
    print(f"\nExport benchmark: {name}; {args.num_images} cats_and_dogs_filtered validation images; "
          f"latency = batch 1, median of {args.runs}, {args.threads} threads, {platform.processor() or platform.machine()}")
    widths = (28, 8, 8, 11, 10, 8)
    titles = ("variant", "size MB", "ms/image", "top-1 agree", "max abs dp", "accuracy")
    print("| " + " | ".join(f"{t:<{w}}" if i == 0 else f"{t:>{w}}" for i, (t, w) in enumerate(zip(titles, widths))) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        size_mb = "" if r["size_mb"] is None else f"{r['size_mb']:.2f}"
        acc = "" if r["accuracy"] is None else f"{r['accuracy']:.3f}"
        print(f"| {r['variant']:<28} | {size_mb:>8} | {r['latency_ms']:>8.2f} | "
              f"{r['top1_agreement'] * 100:>10.1f}% | {r['max_abs_diff']:>10.2e} | {acc:>8} |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"model": name, "num_images": args.num_images, "runs": args.runs, "threads": args.threads,
                   "tensorflow": tf.__version__, "keras": keras.__version__, "rows": rows}, f, indent=2)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
