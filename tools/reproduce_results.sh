#!/bin/bash
# The commands behind docs/results.md, back to back (about 5 hours on a 2-core CPU).
# Run on a quiet machine: each model's budget is turned into epochs from its speed measured at the
# start of its run, so other work at that moment costs it epochs.
#   KCONVNEXT_DATA_DIR=/path/with/cifar-10-batches-py/and/cats_and_dogs_filtered bash tools/reproduce_results.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/results}
mkdir -p "$out"
python cli.py compare cifar10 convnext_atto resnet18 resnext50_32x4d --budget-minutes 15 \
    --output "$out/cifar10" --quiet 2>&1 | tee "$out/cifar10.log"
# 2a: cats vs dogs from scratch, the shipped catsdogs_small recipe (ConvNeXt at its `families:` lr)
python cli.py compare catsdogs convnext_atto resnet18 --recipe catsdogs_small --budget-minutes 12 \
    --output "$out/catsdogs_shipped" --quiet 2>&1 | tee "$out/catsdogs_shipped.log"
# 2b: the same with RandAugment on (timm's rand-m9-mstd0.5-inc1)
python cli.py compare catsdogs convnext_atto resnet18 --recipe catsdogs_small --budget-minutes 12 \
    --set augment.randaugment=true --output "$out/catsdogs_randaugment" --quiet 2>&1 | tee "$out/catsdogs_randaugment.log"
# The export table (README, Export): ResNet-18 and ConvNeXt-atto trained at 224 px on cats vs dogs
# (18 min each), then every format of them, plus 224 px latency of ConvNeXt-T and ResNet-50
python benchmarks/train_export_models.py 2>&1 | tee "$out/train_export_models.log"
python benchmarks/export.py --latency-models convnext_t resnet50 --latency-size 224 \
    --latency-modes none fp16 dynamic int8 --num-images 200 --num-calibration 50 --runs 10 \
    --json benchmarks/results/export_224.json 2>&1 | tee "$out/export_bench.log"
# What the TFLite export rewrites buy (README, Export): one depthwise conv, then ConvNeXt-T / ResNet-50 at 224 px
python benchmarks/tflite_kernels.py --models convnext_t resnet50 --size 224 --runs 10 2>&1 | tee "$out/tflite_kernels.log"
# 5: the ConvNeXt roadmap on CIFAR-10, 5 minutes per step (about 1.5 hours), then its accuracy-per-step plot
python cli.py compare cifar10 roadmap_00_resnet50 roadmap_01_stage_ratio roadmap_02_patchify_stem \
    roadmap_03_resnextify roadmap_04_inverted_bottleneck roadmap_05_move_up_dwconv roadmap_06_kernel_7x7 \
    roadmap_07_gelu roadmap_08_fewer_activations roadmap_09_fewer_norms roadmap_10_layer_norm roadmap_11_convnext_t \
    --budget-minutes 5 --batch-size 32 --set limit=5000 --output "$out/roadmap" --quiet 2>&1 | tee "$out/roadmap.log"
python cli.py roadmap --image-size 32 --small-input --num-classes 10 --no-speed \
    --accuracy "$out/roadmap/compare.csv" --output "$out/roadmap"
