#!/usr/bin/env python
"""Train the models the export benchmark measures agreement and accuracy on (kept out of git).

Quantization error only shows on weights and normalisation statistics that were trained on
real images, so `benchmarks/export.py` measures ResNet-18 and ConvNeXt-atto trained on
cats_and_dogs_filtered with the shipped from-scratch recipe, through the ordinary CLI:

    python benchmarks/train_export_models.py                          # 224 px, 18 min each (2-core CPU)
    python benchmarks/train_export_models.py --image-size 96 --budget-minutes 6     # a quick look
    python benchmarks/train_export_models.py --budget-minutes 60      # better-trained, a bigger machine

18 minutes at 224 px is 4-5 epochs of the 1,800 training images on a 2-core CPU: enough to move the
weights and BatchNorm/LayerNorm statistics away from their initial values, far from a good model.

Each run goes to runs/export-bench/MODEL-SIZEpx/ (runs/ is git-ignored); re-running resumes or
skips a finished run. ConvNeXt gets base_lr 5e-4: at the recipe's 4e-3 it collapses to one
class on these 2,000 images (recipes/catsdogs_small.yaml).
"""
import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs" / "export-bench"
DATA = Path(os.environ.get("KCONVNEXT_SHARED_DATA", ROOT.parent / "shared" / "data")) / "cats_and_dogs_filtered"
RECIPE = "catsdogs_small"
MODELS = {"resnet18": [], "convnext_atto": ["--set", "base_lr=5e-4"]}


def run_folder(model, image_size):
    return RUNS / f"{model}-{image_size}px"


def train_command(model, image_size, budget_minutes, data_dir=DATA):
    return [sys.executable, str(ROOT / "cli.py"), "train", "catsdogs", model, "--recipe", RECIPE,
            "--data-dir", str(data_dir),
            "--budget-minutes", str(budget_minutes), "--set", f"image_size={image_size}",
            *MODELS[model], "--output", str(run_folder(model, image_size)), "--quiet"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--budget-minutes", type=float, default=18.0, help="training time per model")
    p.add_argument("--data-dir", default=str(DATA), help="cats_and_dogs_filtered (train/ and validation/)")
    args = p.parse_args()
    for model in args.models:
        command = train_command(model, args.image_size, args.budget_minutes, args.data_dir)
        print("+", " ".join(command), flush=True)
        subprocess.run(command, check=True, cwd=ROOT)
        print(f"trained {run_folder(model, args.image_size)}", flush=True)


if __name__ == "__main__":
    main()
