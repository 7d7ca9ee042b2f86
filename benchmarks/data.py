"""Is the input pipeline ever the bottleneck? Pipeline images/s next to model training images/s.

Training pipeline (decode + augment + batch, as load() builds it) for cats-vs-dogs at 224 and 96 px
and CIFAR-10 at 32: the full recipe, the recipe without each augmentation, and no augmentation. Image
files are timed twice: decoded every epoch (cache_limit_bytes=None) and from the decoded-image cache
(timed after one full epoch has filled it). In the same run: AdamW train_on_batch images/s of
convnext_t at 224 and convnext_atto at 96 and (small_input) at 32, median after one warm-up step.
Target: pipeline >= 2x what the model consumes. The machine may be shared, so numbers are noisy;
compare ratios within one run.
Usage: python benchmarks/data.py [--batches 6] [--model-steps 3] [--catsdogs DIR] [--cifar DIR]
"""
import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import kconvnext  # noqa: E402
from common import median_seconds, print_table, random_images, write_json  # noqa: E402
from kconvnext.data import AugmentConfig, load  # noqa: E402
from kconvnext.data.loader import CACHE_LIMIT_BYTES  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
OFF = {  # what "without X" switches off
    "random crop + flip": {"random_resized_crop": False, "hflip": False},
    "randaugment": {"randaugment": False},
    "mixup/cutmix": {"mix_prob": 0.0},
    "random erasing": {"random_erasing": 0.0},
}
SETUPS = [  # data set, data dir option, image size, pipeline batch, model, model kwargs, model batch
    ("catsdogs", "catsdogs", 224, 64, "convnext_t", {}, 8),
    ("catsdogs", "catsdogs", 96, 64, "convnext_atto", {}, 32),
    ("cifar10", "cifar", 32, 256, "convnext_atto", {"small_input": True}, 128),
]


def configs():
    yield "full recipe", AugmentConfig()
    for name, fields in OFF.items():
        yield f"without {name}", replace(AugmentConfig(), **fields)
    yield "no augmentation", AugmentConfig.none()


def pipeline_rate(dataset, batches, after_one_epoch=False):
    """Images/s over `batches` batches after two warm-up batches (tracing, autotune start); with
    after_one_epoch, in the second epoch (a decoded-image cache is full by then)."""
    if after_one_epoch:
        for _ in dataset:
            pass
    it = iter(dataset)
    for _ in range(2):
        next(it)
    start, n = time.perf_counter(), 0
    for _ in range(batches):
        n += len(next(it)[0])
    return n / (time.perf_counter() - start)


def model_rate(name, kwargs, size, num_classes, batch, steps):
    model = kconvnext.create_model(name, input_shape=(size, size, 3), num_classes=num_classes, **kwargs)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1))
    x = random_images(batch, size)
    y = np.eye(num_classes, dtype="float32")[np.arange(batch) % num_classes]
    return batch / median_seconds(lambda: model.train_on_batch(x, y), warmup=1, repeats=steps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catsdogs", default=str(SHARED / "cats_and_dogs_filtered"))
    parser.add_argument("--cifar", default=str(SHARED / "cifar-10-batches-py"))
    parser.add_argument("--batches", type=int, default=6, help="timed batches per pipeline configuration")
    parser.add_argument("--model-steps", type=int, default=3, help="timed training steps per model")
    args = parser.parse_args()
    rows = []
    for data_name, dir_arg, size, batch, model_name, model_kwargs, model_batch in SETUPS:
        model = model_rate(model_name, model_kwargs, size, 2 if data_name == "catsdogs" else 10,
                           model_batch, args.model_steps)
        print(f"{model_name} training at {size}px: {model:.1f} img/s", flush=True)
        caching = [("", None, False)] if data_name == "cifar10" else [
            (", decoded every epoch", None, False), (", cached decoded", CACHE_LIMIT_BYTES, True)]
        for config_name, config in configs():
            for suffix, cache_limit, after_one_epoch in caching:
                bundle = load(data_name, data_dir=getattr(args, dir_arg), image_size=size, batch_size=batch,
                              augment=config, cache_limit_bytes=cache_limit)
                rate = pipeline_rate(bundle.train, args.batches, after_one_epoch)
                rows.append({"data": f"{data_name} {size}px", "pipeline": config_name + suffix,
                             "pipeline_img_s": rate, "model": model_name, "model_img_s": model,
                             "ratio": rate / model, "target_met": "yes" if rate >= 2 * model else "NO"})
                print(f"  {config_name + suffix}: {rate:.1f} img/s", flush=True)
    columns = [("data", "data", "{}"), ("pipeline", "pipeline", "{}"), ("pipeline_img_s", "pipeline img/s", "{:.0f}"),
               ("model", "model (AdamW train)", "{}"), ("model_img_s", "model img/s", "{:.1f}"),
               ("ratio", "pipeline/model", "{:.1f}x"), ("target_met", ">=2x", "{}")]
    print()
    print_table(rows, columns)
    write_json("data", {"rows": rows, "batches": args.batches, "model_steps": args.model_steps,
                        "median_ratio": statistics.median(r["ratio"] for r in rows)})


if __name__ == "__main__":
    main()
