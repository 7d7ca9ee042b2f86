#!/usr/bin/env python
"""Models trained at 224 px for int8_speed.py's agreement, trained where it is quick: a GPU machine
with JAX and no TensorFlow (kconvnext's numpy data path), weights carried back as float16 shards.

On the GPU machine (Keras on JAX; RandAugment / mixing are tf.data-only and are skipped there):
    KERAS_BACKEND=jax python benchmarks/train_224_jax.py train OUT DATA_DIR --minutes 3 --models resnet50
Here (TensorFlow), a run folder that int8_speed.py --trained and `cli.py export` read:
    python benchmarks/train_224_jax.py rebuild OUT/resnet50 runs/int8/resnet50

Shards: weights over 4,096 values as float16 (half the bytes: small machines return small files),
in files of at most 15 MiB, with info.json listing the variable paths in order. The rebuilt model is
the float16-rounded one; agreement compares the export with that same model.
"""
import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the checkout

RECIPES = {"resnet50": "catsdogs_resnet_scratch", "convnext_t": "catsdogs_convnext_scratch"}
SHARD_BYTES = 15 * 2**20
SMALL = 4096  # values; smaller weights (BatchNorm statistics, biases) stay float32


def write_shards(model, name, where):
    import keras
    import numpy as np

    where.mkdir(parents=True, exist_ok=True)
    shard, size, index = {}, 0, 0
    for i, weight in enumerate(model.weights):
        value = np.asarray(keras.ops.convert_to_numpy(weight.value))
        if value.size > SMALL and value.dtype == np.float32:
            value = value.astype(np.float16)
        if shard and size + value.nbytes > SHARD_BYTES:
            np.savez(where / f"{name}_{index}.npz", **shard)
            shard, size, index = {}, 0, index + 1
        shard[f"{i:04d}"], size = value, size + value.nbytes
    np.savez(where / f"{name}_{index}.npz", **shard)
    return [weight.path for weight in model.weights]


def train_models(args):
    import keras

    from kconvnext.training import train

    out = Path(args.out)
    for name in args.models:
        result = train("catsdogs", name, recipe=RECIPES[name], data_dir=args.data_dir, output=f"{args.runs}/{name}",
                       verbose=2, budget_minutes=args.minutes, epochs=args.epochs, batch_size=args.batch_size,
                       mixed_precision="auto", jit_compile=True)
        best = keras.saving.load_model(result.run_dir / "checkpoints" / "best.keras", compile=False)
        paths = write_shards(best, name, out / name)
        run = json.loads((result.run_dir / "run.json").read_text())
        info = {"model": name, "paths": paths, "epochs": len(result.history), "class_names": run["class_names"],
                "image_size": 224, "validation_top1": (result.report or {}).get("top1")}
        (out / name / "info.json").write_text(json.dumps(info))
        print(json.dumps({k: v for k, v in info.items() if k != "paths"}))


def rebuild(args):
    import numpy as np

    import kconvnext

    shards = Path(args.shards)
    info = json.loads((shards / "info.json").read_text())
    arrays = {}
    for file in sorted(shards.glob("*.npz")):
        arrays.update(np.load(file))
    model = kconvnext.create_model(info["model"], num_classes=len(info["class_names"]),
                                   input_shape=(info["image_size"], info["image_size"], 3))
    by_path = {weight.path: weight for weight in model.weights}
    if sorted(by_path) != sorted(info["paths"]):
        raise SystemExit(f"{shards}: the shards hold other variables than {info['model']} has")
    for i, path in enumerate(info["paths"]):
        by_path[path].assign(arrays[f"{i:04d}"].astype("float32"))
    run = Path(args.run_dir)
    (run / "checkpoints").mkdir(parents=True, exist_ok=False)
    model.save(run / "checkpoints" / "best.keras")
    (run / "run.json").write_text(json.dumps({
        "model": info["model"], "dataset": "catsdogs", "class_names": info["class_names"],
        "image_size": info["image_size"], "note": "trained by benchmarks/train_224_jax.py (float16 shards)",
        "validation_top1": info.get("validation_top1")}, indent=1))
    print(f"wrote {run}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="on the GPU machine: train and write float16 shards")
    t.add_argument("out")
    t.add_argument("data_dir", help="folder holding cats_and_dogs_filtered")
    t.add_argument("--models", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    t.add_argument("--minutes", type=float, default=None, help="budget per model (default: none)")
    t.add_argument("--epochs", type=int, default=60)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--runs", default=os.environ.get("TMPDIR", "/tmp") + "/runs", help="where the run folders go")
    r = sub.add_parser("rebuild", help="here: shards -> run folder")
    r.add_argument("shards")
    r.add_argument("run_dir")
    args = p.parse_args()
    if args.command == "train":
        os.environ.setdefault("KERAS_BACKEND", "jax")
        train_models(args)
    else:
        rebuild(args)


if __name__ == "__main__":
    main()
