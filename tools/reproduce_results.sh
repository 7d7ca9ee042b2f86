#!/bin/bash
# The commands behind docs/results.md, back to back (about 3.5 hours on a 2-core CPU).
# Run on a quiet machine: each model's budget is turned into epochs from its speed measured at the
# start of its run, so other work at that moment costs it epochs.
#   KCONVNEXT_DATA_DIR=/path/with/cifar-10-batches-py/and/cats_and_dogs_filtered bash tools/reproduce_results.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/results}
mkdir -p "$out"
python cli.py compare cifar10 convnext_atto resnet18 resnext50_32x4d --budget-minutes 15 \
    --output "$out/cifar10" --quiet 2>&1 | tee "$out/cifar10.log"
# 2b: the first cats-vs-dogs comparison (the recipe catsdogs_small had then)
python cli.py compare catsdogs convnext_atto resnet18 --recipe catsdogs_small --budget-minutes 12 \
    --set augment.randaugment=true --set augment.randaugment_magnitude=5 --set base_lr=2e-3 \
    --output "$out/catsdogs" --quiet 2>&1 | tee "$out/catsdogs.log"
# 2a: the shipped catsdogs_small recipe
python cli.py train catsdogs resnet18 --recipe catsdogs_small --budget-minutes 12 \
    --output "$out/catsdogs-resnet18-12min" --quiet 2>&1 | tee "$out/catsdogs-resnet18-12min.log"
python cli.py train catsdogs resnet18 --recipe catsdogs_small --budget-minutes 40 \
    --output "$out/catsdogs-resnet18-40min" --quiet 2>&1 | tee "$out/catsdogs-resnet18-40min.log"
python cli.py train catsdogs convnext_atto --recipe catsdogs_small --epochs 28 --set base_lr=5e-4 \
    --output "$out/catsdogs-convnext_atto-lr5e-4" --quiet 2>&1 | tee "$out/catsdogs-convnext_atto-lr5e-4.log"
