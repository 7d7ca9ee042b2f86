"""Cats vs dogs from scratch on this machine: our shipped recipe against the two textbook models
(benchmarks/textbook.py), one after the other, each under the same wall-clock budget.

    python benchmarks/scratch_catsdogs.py                       # 60 minutes a run, about 3.5 hours
    python benchmarks/scratch_catsdogs.py --budget-minutes 20 --runs ours

Data: cats_and_dogs_filtered (2,000 train / 1,000 validation images). Every run holds out the same
10% of the training images (kconvnext.data.load(selection_fraction=0.1, seed=0)), keeps the epoch
that scores best on that hold-out, and is evaluated once on the 1,000 validation images; with 1,000
images one standard error of an accuracy near 85% is about 1.1 points. A budget covers the whole
run (data loading, tracing, the per-epoch hold-out check); the validation curve for the plot is
measured on the side about every budget / 20 minutes and its time is not counted.

Writes benchmarks/results/scratch_catsdogs.json ({"runs": [...]}) and scratch_catsdogs.png
(validation accuracy against training minutes, every run).
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the checkout

from benchmarks.common import RESULTS, print_table, write_json  # noqa: E402

OURS = {"model": "resnet18", "recipe": "catsdogs_scratch"}
CURVE_POINTS = 20  # validation points per run for the plot (about one per budget / 20 minutes)
TEXTBOOK_REPORTED = {"textbook_convnet": 0.835, "textbook_mini_xception": 0.908}  # DLwP 2nd ed., 100 GPU epochs


class Clock:
    """Seconds since the run started, less the time spent measuring the plot's validation curve."""

    def __init__(self):
        self.start, self.excluded = time.perf_counter(), 0.0

    def seconds(self):
        return time.perf_counter() - self.start - self.excluded


def _labels(dataset):
    return np.concatenate([np.argmax(np.asarray(labels), -1) for _, labels in dataset])


def accuracy(model, dataset, labels=None):
    labels = _labels(dataset) if labels is None else labels
    predictions = np.argmax(model.predict(dataset, verbose=0), -1)
    return float(np.mean(predictions == labels))


def validation_curve(dataset, clock, every_minutes):
    """A callback: validation accuracy against training minutes (not counted), after the first epoch
    and then after the first epoch that ends at least every_minutes after the last point: 1,000
    images after each of ~80 short epochs would add a quarter to the benchmark's wall time."""
    import keras

    labels = _labels(dataset)

    class ValidationCurve(keras.callbacks.Callback):
        points = []

        def on_epoch_end(self, epoch, logs=None):
            minutes, started = clock.seconds() / 60, time.perf_counter()
            if self.points and minutes - self.points[-1][0] < every_minutes:
                return
            self.points.append([round(minutes, 2), round(accuracy(self.model, dataset, labels), 4)])
            clock.excluded += time.perf_counter() - started

    return ValidationCurve()


def run_ours(model, recipe, budget_minutes, data_dir, output, limit=None):
    from kconvnext import get_spec
    from kconvnext.training import load_recipe, train
    from kconvnext.training.run_setup import load_data

    clock, started = Clock(), time.time()  # (the budget covers the data loading below, as in a CLI run)
    overrides = {"budget_minutes": budget_minutes, **({"limit": limit} if limit else {})}
    config, _ = load_recipe(recipe, family=get_spec(model).family, overrides=overrides)
    # Loaded once, as train() would load it; the curve reads the same validation images the run validates on.
    data = load_data("catsdogs", config, data_dir, output, config.seed, model_name=model)
    curve = validation_curve(data.validation, clock, budget_minutes / CURVE_POINTS)
    result = train("catsdogs", model, recipe=recipe, output=output, data_dir=data_dir, resume=False,
                   overrides=overrides, data=data, callbacks=[curve], verbose=2, started=started)
    return {"model": model, "recipe": f"recipes/{recipe}.yaml", "val_top1": round(result.report["top1"], 4),
            "selection_top1": round(result.best_accuracy, 4), "epochs": result.epochs_completed,
            "wall_minutes": round(clock.seconds() / 60, 2), "images_per_sec": round(result.train_images_per_sec or result.budget_plan.images_per_sec, 1),
            "curve": curve.points}


def _load(data_dir, limit, image_size, batch_size, augment=False):
    import kconvnext

    return kconvnext.data.load("catsdogs", data_dir=data_dir, image_size=image_size, batch_size=batch_size,
                               augment=augment, selection_fraction=0.1, seed=0, limit=limit)


def run_textbook(name, budget_minutes, data_dir, limit=None):
    """The book's model and training (RMSprop, its augmentation layers, 100 epochs), stopped before
    an epoch that would not finish within the budget, best hold-out epoch kept."""
    import keras

    from benchmarks import textbook

    clock = Clock()
    data = _load(data_dir, limit, textbook.IMAGE_SIZE, textbook.BATCH_SIZE)
    model = textbook.compile_as_the_book(textbook.MODELS[name]())
    selection_labels = _labels(data.selection)
    budget = budget_minutes * 60

    class KeepBestAndStop(keras.callbacks.Callback):
        best, weights, train_seconds, images, epochs = -1.0, None, 0.0, 0, 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_started = clock.seconds()

        def on_epoch_end(self, epoch, logs=None):
            self.train_seconds += clock.seconds() - self.epoch_started
            self.images += len(data.train) * textbook.BATCH_SIZE
            self.epochs = epoch + 1
            score = accuracy(self.model, data.selection, selection_labels)
            if score > self.best:
                self.best, self.weights = score, self.model.get_weights()
            epoch_cost = clock.seconds() - self.epoch_started
            if clock.seconds() + epoch_cost > budget:
                self.model.stop_training = True

    keep = KeepBestAndStop()
    curve = validation_curve(data.validation, clock, budget_minutes / CURVE_POINTS)
    model.fit(data.train, epochs=textbook.EPOCHS, callbacks=[keep, curve], verbose=2)
    model.set_weights(keep.weights)
    top1 = accuracy(model, data.validation)
    return {"model": name, "recipe": "Deep Learning with Python (2nd ed.): RMSprop, flip/rotation/zoom, 180 px",
            "val_top1": round(top1, 4), "selection_top1": round(keep.best, 4), "epochs": keep.epochs,
            "wall_minutes": round(clock.seconds() / 60, 2),
            "images_per_sec": round(keep.images / max(keep.train_seconds, 1e-9), 1), "curve": curve.points}


def _beside_checkout():
    """../shared/data next to the checkout when it is there (this project's machines), else None:
    $KCONVNEXT_DATA_DIR or the download."""
    import os

    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    return None if os.environ.get("KCONVNEXT_DATA_DIR") or not shared.is_dir() else str(shared)


def standard_error(p, n=1000):
    return math.sqrt(p * (1 - p) / n)


def plot(runs, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for run in runs:
        minutes, acc = zip(*run["curve"]) if run["curve"] else ((), ())
        ax.plot(minutes, acc, marker=".", label=f"{run['name']}: {run['val_top1']:.1%}")
    for name, reported in TEXTBOOK_REPORTED.items():
        ax.axhline(reported, linestyle=":", color="grey")
        ax.text(0, reported, f" {name} as published (100 GPU epochs)", va="bottom", fontsize=8, color="grey")
    ax.set_xlabel("training minutes (2-core CPU)")
    ax.set_ylabel("validation accuracy (1,000 images)")
    ax.set_title("cats vs dogs from scratch")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget-minutes", type=float, default=60.0)
    p.add_argument("--runs", nargs="+", default=["ours", *TEXTBOOK_REPORTED],
                   choices=["ours", *TEXTBOOK_REPORTED])
    p.add_argument("--model", default=OURS["model"], help="our run's model (default %(default)s)")
    p.add_argument("--recipe", default=OURS["recipe"], help="our run's shipped recipe (default %(default)s)")
    p.add_argument("--data-dir", default=None, help="folder holding cats_and_dogs_filtered (default: ../shared/data)")
    p.add_argument("--output", type=Path, default=Path("runs/scratch_catsdogs"), help="run folders")
    p.add_argument("--limit", type=int, default=None, help="images per split (a smoke test, not a result)")
    p.add_argument("--results", default="scratch_catsdogs", help="name of the JSON/plot in benchmarks/results")
    args = p.parse_args(argv)
    args.data_dir = args.data_dir or _beside_checkout()

    runs = []
    for which in args.runs:
        if which == "ours":
            run = run_ours(args.model, args.recipe, args.budget_minutes, args.data_dir, args.output / args.model,
                           args.limit)
            run["name"] = f"kconvnext {args.model} ({args.recipe})"
        else:
            run = run_textbook(which, args.budget_minutes, args.data_dir, args.limit)
            run["name"] = which.replace("_", " ")
        runs.append({"name": run.pop("name"), "budget_minutes": args.budget_minutes, **run})
        print(json.dumps({k: v for k, v in runs[-1].items() if k != "curve"}), flush=True)

    print_table(runs, [("name", "run", "{}"), ("val_top1", "val top-1", "{:.1%}"),
                       ("selection_top1", "hold-out top-1", "{:.1%}"), ("epochs", "epochs", "{}"),
                       ("wall_minutes", "wall min", "{:.1f}"), ("images_per_sec", "train img/s", "{:.1f}")])
    print(f"one standard error on 1,000 validation images: ~{standard_error(0.85):.1%} at 85%")
    write_json(args.results, {"budget_minutes": args.budget_minutes, "runs": runs,
                              "standard_error_at_85": round(standard_error(0.85), 4)})
    plot(runs, RESULTS / f"{args.results}.png")
    print(f"wrote {RESULTS / f'{args.results}.png'}")


if __name__ == "__main__":
    main()
