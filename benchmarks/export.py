#!/usr/bin/env python
"""Export benchmark: what each export format costs in accuracy and buys in size and speed.

Part 1, trained models (run folders from benchmarks/train_export_models.py, trained on
cats_and_dogs_filtered): for SavedModel and every TFLite mode, size, latency at batch 1 and 8,
top-1 agreement with Keras and accuracy on --num-images validation images. TFLite latency is
also measured without XNNPACK (TFLite's own kernels), which shows which modes XNNPACK runs.
Part 2, --latency-models at --latency-size px with random weights: size and latency only
(agreement of an untrained model says nothing), plus SavedModel serving latency of both
signatures (JPEG bytes in, pixels in) next to the Keras model.

    python benchmarks/train_export_models.py             # once: runs/export-bench/*
    python benchmarks/export.py                          # both parts, defaults below
    python benchmarks/export.py --latency-models         # part 1 only
    python benchmarks/export.py --trained --latency-models resnet50 --latency-size 224

Goals (issue 13) are printed as ratios at the end. Batch 8 for TFLite is one invoke of the
interpreter resized to 8 images. Prints the tables and writes benchmarks/results/export.json.
"""
import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import kconvnext.export as kx  # noqa: E402
from kconvnext.export import quantization, tflite, validate  # noqa: E402
from kconvnext.run_folder import resolve_model_file  # noqa: E402
from kconvnext import create_model  # noqa: E402
from common import median_seconds  # noqa: E402
from train_export_models import run_folder  # noqa: E402

DATA = Path(os.environ.get("KCONVNEXT_SHARED_DATA", ROOT.parent / "shared" / "data")) / "cats_and_dogs_filtered"
TRAINED = [run_folder("resnet18", 224), run_folder("convnext_atto", 224)]
LATENCY_MODELS = ["convnext_t", "resnet50", "resnext50_32x4d"]
SERVING_MODELS = ("convnext_t", "resnet50")
TFLITE_MODES = ("none", "fp16", "dynamic", "int8_full", "int8_mixed", "int16x8")
GOALS = {"int8_agreement": 0.99, "int8_accuracy_drop_pt": 0.5, "fp16_agreement": 0.995,
         "int8_latency_ratio": {"resnet50": 0.6, "convnext_t": 0.8}}


def ms(fn, runs, budget_s=None):
    """Median ms of fn() over `runs` calls (fewer when one call would blow `budget_s`)."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    if budget_s:
        runs = max(1, min(runs, int(budget_s / max(first, 1e-6))))
    return 1000 * median_seconds(fn, warmup=1, repeats=runs)


def tflite_latency(path, pixels, threads, runs, batch, xnnpack=True, budget_s=20):
    """ms per call at `batch` images (one invoke; the interpreter is resized to the batch)."""
    interpreter = tflite.make_interpreter(model_path=path, num_threads=threads, xnnpack=xnnpack)
    detail = interpreter.get_input_details()[0]
    if batch != detail["shape"][0]:
        interpreter.resize_tensor_input(detail["index"], [batch, *detail["shape"][1:]])
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], tflite.quantize_input(np.repeat(pixels[:1], batch, axis=0), detail))
    return ms(interpreter.invoke, runs, budget_s)


def keras_model(source):
    return keras.saving.load_model(resolve_model_file(source).keras_path, compile=False)


def trained_rows(source, args, work):
    """Every format for one trained run folder -> rows."""
    common = dict(validation_dir=DATA / "validation", num_validation=args.num_images, verbose=False,
                  calibration_dir=DATA / "train", num_calibration=args.num_calibration)
    model = keras_model(source)
    name = model.name
    sm = kx.export(source, output=work / f"{name}_saved_model", validation_dir=DATA / "validation",
                   num_validation=args.num_images, verbose=False)
    pixels = validate.preprocess_all(validate.folder_images(DATA / "validation", 8).encoded, sm.image_size, 0.875)
    fn = tf.function(lambda x: model(x, training=False))
    base = {"model": name, "image_size": sm.image_size, "weights": f"trained ({source.name})",
            "int8_default": quantization.resolve("int8", model)}
    rows = [{**base, "variant": "keras", "size_mb": None,
             "b1_ms": ms(lambda: fn(pixels[:1]).numpy(), args.runs),
             "b8_ms": ms(lambda: fn(pixels).numpy(), args.runs),
             "top1_agreement": 1.0, "accuracy": sm.validation[0].keras_accuracy,
             "keras_accuracy": sm.validation[0].keras_accuracy}]
    for quantize in TFLITE_MODES:
        if quantize == "int8_mixed" and not quantization.float_layer_paths(model):
            continue  # no LayerNorm: identical to int8_full
        try:
            r = kx.export(source, format="tflite", quantize=quantize, output=work / f"{name}_{quantize}.tflite",
                          **common)
        except ValueError as err:
            print(f"{name} {quantize}: not exported: {err}")
            rows.append({**base, "variant": f"tflite {quantize}", "error": str(err).split(";")[0]})
            continue
        check = r.validation[0]
        print(f"{name}: {check.line()}; float32 ops: {r.float_ops}", flush=True)
        rows.append({**base, "variant": f"tflite {quantize}", "size_mb": r.size_bytes / 1e6,
                     "b1_ms": tflite_latency(r.path, pixels, args.threads, args.runs, 1),
                     "b8_ms": tflite_latency(r.path, pixels, args.threads, args.runs, 8),
                     "b1_ms_no_xnnpack": tflite_latency(r.path, pixels, args.threads, args.runs, 1, xnnpack=False),
                     "top1_agreement": check.top1_agreement, "max_abs_diff": check.max_abs_diff,
                     "accuracy": check.accuracy, "keras_accuracy": check.keras_accuracy,
                     "float_ops": r.float_ops})
    return rows


def latency_rows(name, args, work):
    """Random-weight `name` at --latency-size: Keras, SavedModel (both signatures), TFLite modes."""
    size = args.latency_size
    keras.utils.set_random_seed(0)
    model = create_model(name, input_shape=(size, size, 3), num_classes=1000)
    images = validate.folder_images(DATA / "validation", 8)
    pixels = validate.preprocess_all(images.encoded, size, 0.875)
    base = {"model": name, "image_size": size, "weights": "random (latency/size only)",
            "int8_default": quantization.resolve("int8", model)}
    fn = tf.function(lambda x: model(x, training=False))
    rows = [{**base, "variant": "keras", "size_mb": None,
             "b1_ms": ms(lambda: fn(pixels[:1]).numpy(), args.runs),
             "b8_ms": ms(lambda: fn(pixels).numpy(), args.runs)}]
    classes = [f"c{i}" for i in range(1000)]
    common = dict(class_names=classes, num_validation=2, verbose=False)
    if name in SERVING_MODELS:
        sm = kx.export(model, output=work / f"{name}_saved_model", **common)
        loaded = tf.saved_model.load(str(sm.path))
        by_bytes, by_pixels = loaded.signatures["serving_default"], loaded.signatures["serving_pixels"]
        for sig, call in (("serving_default (JPEG bytes)", lambda n: by_bytes(image_bytes=tf.constant(images.encoded[:n]))),
                          ("serving_pixels", lambda n: by_pixels(images=tf.constant(pixels[:n])))):
            rows.append({**base, "variant": f"saved_model {sig}", "size_mb": sm.size_bytes / 1e6,
                         "b1_ms": ms(lambda: call(1), args.runs), "b8_ms": ms(lambda: call(8), args.runs)})
    for quantize in args.latency_modes:
        try:
            r = kx.export(model, format="tflite", quantize=quantize, output=work / f"{name}_{quantize}.tflite",
                          calibration_dir=DATA / "train", num_calibration=args.latency_calibration, **common)
        except ValueError as err:
            print(f"{name} {quantize}: not exported: {err}")
            rows.append({**base, "variant": f"tflite {quantize}", "error": str(err).split(";")[0]})
            continue
        rows.append({**base, "variant": f"tflite {r.quantize}", "size_mb": r.size_bytes / 1e6,
                     "b1_ms": tflite_latency(r.path, pixels, args.threads, args.runs, 1),
                     "b8_ms": tflite_latency(r.path, pixels, args.threads, max(2, args.runs // 4), 8),
                     "float_ops": r.float_ops})
        r.path.unlink()
    return rows


def fmt(value, spec, empty=""):
    return empty if value is None else format(value, spec)


def print_table(rows, title):
    print(f"\n{title}")
    head = ("model", "px", "variant", "size MB", "b1 ms", "x fp32", "b8 ms", "b1 no-XNNPACK", "top-1 agree", "accuracy", "delta pt")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    fp32 = {r["model"]: r["b1_ms"] for r in rows if r["variant"] == "tflite none" and "b1_ms" in r}
    for r in rows:
        if "error" in r:
            print(f"| {r['model']} | {r['image_size']} | {r['variant']} | not exported: {r['error'][:90]} |")
            continue
        ratio = r["b1_ms"] / fp32[r["model"]] if r["variant"].startswith("tflite") and r["model"] in fp32 else None
        delta = None if r.get("accuracy") is None else 100 * (r["accuracy"] - r["keras_accuracy"])
        agree = r.get("top1_agreement")
        print(f"| {r['model']} | {r['image_size']} | {r['variant']} | {fmt(r['size_mb'], '.1f')} | "
              f"{r['b1_ms']:.1f} | {fmt(ratio, '.2f')} | {r['b8_ms']:.1f} | {fmt(r.get('b1_ms_no_xnnpack'), '.1f')} | "
              f"{fmt(agree and 100 * agree, '.1f', '')}{'%' if agree else ''} | {fmt(r.get('accuracy'), '.3f')} | "
              f"{fmt(delta, '+.1f')} |")


def goal_lines(rows):
    """The issue's goals as measured/goal ratios (>= 1 meets a 'at least' goal, <= 1 a 'at most')."""
    lines = []
    by = {(r["model"], r["variant"]): r for r in rows if "error" not in r}
    for (model, variant), r in by.items():
        if not r["weights"].startswith("trained"):
            continue
        default = r["int8_default"]
        if variant == f"tflite {default}":
            a, d = r["top1_agreement"], 100 * (r["accuracy"] - r["keras_accuracy"])
            lines.append(f"{model} int8 (= {default}): agreement {100 * a:.1f}% / goal 99% = {a / 0.99:.3f} "
                         f"({'met' if a >= 0.99 else f'missed by {100 * (0.99 - a):.1f} pt'}); accuracy "
                         f"delta {d:+.1f} pt ({'met' if d >= -0.5 else f'missed by {-0.5 - d:.1f} pt'})")
        if variant == "tflite fp16":
            a = r["top1_agreement"]
            lines.append(f"{model} fp16: agreement {100 * a:.1f}% / goal 99.5% = {a / 0.995:.3f} "
                         f"({'met' if a >= 0.995 else 'missed'})")
    for model, goal in GOALS["int8_latency_ratio"].items():
        fp32 = by.get((model, "tflite none"))
        int8 = [r for (m, v), r in by.items() if m == model and v in ("tflite int8_full", "tflite int8_mixed")]
        for r in int8:
            ratio = r["b1_ms"] / fp32["b1_ms"]
            lines.append(f"{model} {r['variant']} latency / fp32 = {ratio:.2f} (goal <= {goal}: "
                         f"{'met' if ratio <= goal else f'missed by {ratio - goal:.2f}'})")
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trained", nargs="*", default=[str(t) for t in TRAINED],
                   help="run folders / .keras files (default: runs/export-bench/*-224px); none to skip part 1")
    p.add_argument("--latency-models", nargs="*", default=LATENCY_MODELS, help="none to skip part 2")
    p.add_argument("--latency-size", type=int, default=224)
    p.add_argument("--latency-modes", nargs="+", default=["none", "fp16", "dynamic", "int8"])
    p.add_argument("--latency-calibration", type=int, default=8, help="calibration images for part 2")
    p.add_argument("--num-images", type=int, default=200, help="validation images for agreement/accuracy")
    p.add_argument("--num-calibration", type=int, default=100)
    p.add_argument("--runs", type=int, default=20, help="timed runs per latency (fewer for slow ones)")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "export.json"))
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kconvnext-export-bench-"))
    rows = []
    try:
        for source in args.trained:
            if not Path(source).exists():
                raise SystemExit(f"{source} does not exist: run benchmarks/train_export_models.py first, "
                                 "or pass --trained RUN_FOLDER ... (or --trained with nothing to skip part 1).")
            rows += trained_rows(Path(source), args, work)
        for name in args.latency_models:
            rows += latency_rows(name, args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    header = (f"latency: median ms per call, batch 1 and batch 8, {args.threads} threads, "
              f"{platform.processor() or platform.machine()}, TF {tf.__version__}")
    trained = [r for r in rows if r["weights"].startswith("trained")]
    if trained:
        print_table(trained, f"Trained on cats_and_dogs_filtered; agreement/accuracy on {args.num_images} "
                             f"validation images; {header}")
    random = [r for r in rows if not r["weights"].startswith("trained")]
    if random:
        print_table(random, f"Random weights at {args.latency_size} px (size and latency only); {header}")
    goals = goal_lines(rows)
    print("\nGoals (issue 13):")
    for line in goals:
        print("  " + line)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"threads": args.threads, "runs": args.runs, "num_images": args.num_images,
                   "tensorflow": tf.__version__, "keras": keras.__version__, "cpu": platform.processor(),
                   "cores": os.cpu_count(), "command": " ".join(sys.argv), "rows": rows, "goals": goals},
                  f, indent=2, default=str)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
