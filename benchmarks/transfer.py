"""Transfer learning on this CPU: the linear probe end to end vs. plain inference vs. fine-tuning.

For each model, in one run: (1) plain inference img/s (model.predict on random 224 px batches);
(2) the probe's feature extraction over the real cats-vs-dogs images (decode, resize + center crop,
backbone), img/s; it matches (1) where decoding and resizing are cheap next to the forward pass
(ResNet-50: 1.01x of it; ConvNeXt-T only 0.62x, not explained yet: README, Transfer learning);
(3) the head's training on the cached features (seconds); (4) one fine-tuning step (all weights,
AdamW, batch 16) as img/s. The probe's total is (2) + (3); a fine-tuning epoch over the 2,000
training images is 2,000 / (4). Weights are random (no download here); speed does not depend on them.

Usage: python benchmarks/transfer.py [--models convnext_t resnet50] [--limit N] [--repeats 3]
"""
import argparse
import shutil
import sys
import time
from pathlib import Path

import keras
import numpy as np

import kconvnext
from common import median_seconds, print_table, random_images, write_json
from kconvnext.data.loader import select_splits
from kconvnext.training import probe
from kconvnext.training.recipes import load_recipe

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cats_and_dogs_filtered"
SIZE = 224


def measure(name, data_dir, limit, repeats, tmp, image_size=SIZE, **model_kwargs):
    # The main job's probe (its ImageNet preset's transform included) on random weights: the model is
    # built here without loading any, since speed does not depend on them.
    config, _ = load_recipe("catsdogs_probe", overrides={"pretrained": "imagenet", "limit": limit, "epochs": 30,
                                                         "image_size": image_size})
    splits = select_splits("catsdogs", data_dir=str(data_dir), image_size=image_size, batch_size=config.batch_size,
                           limit=limit)
    shape = (image_size, image_size, 3)
    net = kconvnext.create_model(name, num_classes=2, input_shape=shape, **model_kwargs)
    batch = random_images(config.batch_size, image_size)
    infer = config.batch_size / median_seconds(lambda: net.predict(batch, verbose=0), warmup=1, repeats=repeats)

    shutil.rmtree(tmp / name, ignore_errors=True)  # a cached feature file would time nothing
    started = time.perf_counter()
    features = probe.compute_features(net, splits, config, tmp / name, probe.probe_transform(name, config),
                                      print_fn=lambda *a: None, verbose=0)
    head_started = time.perf_counter()
    probe.train_head(net, features, config, 2, tmp / name / "logs", verbose=0)
    head_seconds = time.perf_counter() - head_started
    total = time.perf_counter() - started

    tune = kconvnext.create_model(name, num_classes=2, input_shape=shape, **model_kwargs)
    tune.compile(optimizer=keras.optimizers.AdamW(1e-4), loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    tune.optimizer.build(tune.trainable_variables)  # as a run does before fit, not inside the first traced step
    x, y = random_images(16, image_size), keras.utils.to_categorical(np.arange(16) % 2, 2)
    finetune = 16 / median_seconds(lambda: tune.train_on_batch(x, y), warmup=1, repeats=repeats)
    n = features["images"]
    return {
        "model": name, "images": n, "inference_ips": infer, "extract_ips": n / features["seconds"],
        "extract_vs_inference": (n / features["seconds"]) / infer, "head_seconds": head_seconds,
        "probe_minutes": total / 60, "finetune_ips": finetune,
        "finetune_epoch_minutes": len(splits.train) / finetune / 60,
        "probe_vs_finetune_epoch": (len(splits.train) / finetune) / total,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["convnext_t", "resnet50"])
    parser.add_argument("--data-dir", default=str(DATA))
    parser.add_argument("--limit", type=int, default=None, help="images per split (default: all 3,000)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scratch", default="/tmp/kconvnext-transfer-bench")
    args = parser.parse_args(argv)
    rows = []
    for name in args.models:
        rows.append(measure(name, args.data_dir, args.limit, args.repeats, Path(args.scratch)))
        print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)
    print_table(rows, [
        ("model", "model", "{}"), ("images", "images", "{}"), ("inference_ips", "inference img/s", "{:.1f}"),
        ("extract_ips", "probe features img/s", "{:.1f}"), ("extract_vs_inference", "features/inference", "{:.2f}"),
        ("head_seconds", "head training s", "{:.1f}"), ("probe_minutes", "probe total min", "{:.1f}"),
        ("finetune_ips", "fine-tune img/s", "{:.2f}"), ("finetune_epoch_minutes", "fine-tune epoch min", "{:.1f}"),
        ("probe_vs_finetune_epoch", "fine-tune epoch / probe", "{:.1f}x"),
    ])
    write_json("transfer", {"command": " ".join(["python benchmarks/transfer.py", *(argv or sys.argv[1:])]),
                            "rows": rows})


if __name__ == "__main__":
    main()
