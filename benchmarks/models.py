"""CPU speed of kconvnext models against keras.applications, measured in the same run.

Inference (batch 32, 224 px) and one AdamW training step (batch 16) for convnext_t, resnet50 and
resnext50_32x4d, next to keras.applications.ConvNeXtTiny and ResNet50 (weights=None). Medians
after warm-up. Achieved GFLOP/s is 2 x multiply-adds (x3 for a training step: forward + two
backward products) per second, shown as a fraction of a measured fp32 matmul peak.
Usage: python benchmarks/models.py [--repeats 5] [--infer-batch 32] [--train-batch 16]
"""
import argparse

import keras
import numpy as np
import tensorflow as tf

import kconvnext
from common import matmul_peak_gflops, median_seconds, print_table, random_images, write_json
from kconvnext.flops import count_macs

SIZE = 224


def reference(name):
    if name == "keras.applications.ConvNeXtTiny":
        return keras.applications.ConvNeXtTiny(weights=None, include_preprocessing=True, classifier_activation=None)
    if name == "keras.applications.ResNet50":
        return keras.applications.ResNet50(weights=None, classifier_activation=None)
    raise KeyError(name)


MODELS = [
    ("convnext_t", "keras.applications.ConvNeXtTiny"),
    ("keras.applications.ConvNeXtTiny", None),
    ("resnet50", "keras.applications.ResNet50"),
    ("keras.applications.ResNet50", None),
    ("resnext50_32x4d", None),
]


def build(name):
    return reference(name) if name.startswith("keras.") else kconvnext.create_model(name)


def inference_img_s(model, batch, repeats):
    x = random_images(batch, SIZE)
    fwd = tf.function(lambda x: model(x, training=False))
    return batch / median_seconds(lambda: fwd(x).numpy(), warmup=2, repeats=repeats)


def train_img_s(model, batch, repeats):
    """Images/s of one compiled Keras train step (AdamW, cross-entropy on 1000 classes)."""
    model.compile(optimizer=keras.optimizers.AdamW(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = random_images(batch, SIZE)
    y = np.arange(batch) % 1000
    try:
        return batch / median_seconds(lambda: model.train_on_batch(x, y), warmup=2, repeats=repeats)
    except tf.errors.InvalidArgumentError as err:
        # keras.applications' ConvNeXt uses Conv2D(groups=C), which has no gradient on TF CPU.
        print(f"  training step not supported: {str(err).splitlines()[-1][:120]}")
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--infer-batch", type=int, default=32)
    parser.add_argument("--train-batch", type=int, default=16)
    parser.add_argument("--only", nargs="*", help="subset of model names")
    args = parser.parse_args()
    peak = matmul_peak_gflops()
    print(f"fp32 matmul peak: {peak:.1f} GFLOP/s")
    results = {}
    for name, _ in MODELS:
        if args.only and name not in args.only:
            continue
        print(f"measuring {name} ...", flush=True)
        model = build(name)
        macs = count_macs(model, (SIZE, SIZE, 3))
        infer = inference_img_s(model, args.infer_batch, args.repeats)
        train = train_img_s(model, args.train_batch, args.repeats)
        results[name] = {
            "gflops": macs / 1e9, "infer_img_s": infer, "train_img_s": train,
            "infer_peak_frac": infer * 2 * macs / 1e9 / peak,
            "train_peak_frac": (train * 6 * macs / 1e9 / peak) if train else None,
        }
        del model
        keras.backend.clear_session()
    rows = []
    for name, ref in MODELS:
        if name not in results:
            continue
        r = results[name]
        ref_r = results.get(ref) if ref else None

        def ratio(key):
            if not ref_r or not r[key]:
                return "-"
            return f"{r[key] / ref_r[key]:.2f}x" if ref_r[key] else "ref has none"

        rows.append({
            "model": name, "gflops": f"{r['gflops']:.2f}",
            "infer": f"{r['infer_img_s']:.1f}", "infer_ratio": ratio("infer_img_s"),
            "infer_peak": f"{100 * r['infer_peak_frac']:.0f}%",
            "train": f"{r['train_img_s']:.1f}" if r["train_img_s"] else "unsupported",
            "train_ratio": ratio("train_img_s"),
            "train_peak": f"{100 * r['train_peak_frac']:.0f}%" if r["train_peak_frac"] else "-",
        })
    print()
    print_table(rows, [
        ("model", "model", "{}"), ("gflops", "GFLOPs", "{}"),
        ("infer", f"infer img/s (b{args.infer_batch})", "{}"), ("infer_ratio", "vs keras.applications", "{}"),
        ("infer_peak", "of peak", "{}"),
        ("train", f"train img/s (b{args.train_batch})", "{}"), ("train_ratio", "vs keras.applications", "{}"),
        ("train_peak", "of peak", "{}"),
    ])
    write_json("models", {"matmul_peak_gflops": peak, "infer_batch": args.infer_batch,
                          "train_batch": args.train_batch, "results": results})


if __name__ == "__main__":
    main()
