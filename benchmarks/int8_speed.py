#!/usr/bin/env python
"""Where int8 time goes in TFLite on this CPU, and whether quantized models beat float32 here.

Part 0, the CPU: the instruction sets the kernel lets programs use (/proc/cpuinfo flags; a VM may
hide what the host has). XNNPACK picks its int8 kernels at run time from these: with AVX512-VNNI
(or AVX-VNNI) one instruction does 64 (32) int8 multiply-adds; with AVX2 only, int8 products are
widened to 16 bits first, which leaves int8 about as fast as float32 FMA.
Part 1, kernels: single-layer models at the shapes of ResNet-50 and ConvNeXt-T stages, float32,
full int8 (per-channel) and dynamic-range (int8 weights), each with XNNPACK (the interpreter's
default delegate, as the product's Runner) and with TFLite's own kernels
(BUILTIN_WITHOUT_DEFAULT_DELEGATES), at every --threads, all timed in turns in one run.
Part 2, models (random weights, --size px: latency only): float32 and each quantized mode,
cumulative sub-graphs cut after the stem and after every stage, each ending in a global
average pool (so per-stage time is the difference), what XNNPACK runs, and top-1 agreement where --trained run folders give models whose
answers mean something (on their own held-out validation images).

    python benchmarks/int8_speed.py                                   # resnet50 convnext_t, 224 px
    python benchmarks/int8_speed.py --models resnet18 --size 96 --runs 3 --no-stages   # a smoke run
    python benchmarks/int8_speed.py --trained runs/int8/resnet50 --images 200
      (a run folder trained at 224 px; benchmarks/train_224_jax.py makes one on a GPU machine)

Prints the tables and writes benchmarks/results/int8_speed.json.
"""
import argparse
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the checkout

import keras
import numpy as np

from benchmarks.common import print_table, timed_in_turns, write_json
from kconvnext import create_model
from kconvnext.timing import cpu_flags
from kconvnext.export import quantization, rewrites, tflite, validate

CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
             "avx512_bf16", "avx512_fp16", "amx_int8", "amx_bf16")
# Interpreter settings compared: the default XNNPACK delegate (as the product's Runner), the same with
# XNNPACK's newest features switched on (dynamically quantized fully-connected and conv kernels among
# them), and TFLite's own kernels without any delegate.
RUNTIMES = {"xnnpack": {}, "xnnpack_latest": {"experimental_default_delegate_latest_features": True},
            "builtin": {"xnnpack": False}}


def cpu_facts(cpuinfo=Path("/proc/cpuinfo")):
    """Model name and the SIMD flags that decide XNNPACK's kernels, as this (virtual) machine shows them."""
    text = cpuinfo.read_text() if cpuinfo.exists() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    present = cpu_flags(cpuinfo)
    try:
        from importlib.metadata import version

        litert = version("ai-edge-litert")
    except Exception:  # noqa: BLE001 - tf.lite fallback: no separate version
        litert = None
    return {"model": model.group(1).strip() if model else None, "cores": os.cpu_count(),
            "flags": {flag: flag in present for flag in CPU_FLAGS}, "ai_edge_litert": litert,
            "int8_dot_product": any(flag in present for flag in ("avx512_vnni", "avx_vnni", "amx_int8"))}


# (name, input shape, layer): the heaviest layer kinds of each network at its stage shapes. ConvNeXt's
# 7x7 depthwise conv goes through the export's row-band rewrite, as the product exports it.
def kernel_cases():
    layers = keras.layers
    return [
        ("resnet50 stem conv 7x7/2 3->64 @224", (224, 224, 3),
         lambda: keras.Sequential([layers.ZeroPadding2D(3), layers.Conv2D(64, 7, strides=2)])),
        ("convnext_t stem conv 4x4/4 3->96 @224", (224, 224, 3), lambda: layers.Conv2D(96, 4, strides=4)),
        ("resnet50 stage 1 conv 3x3 64->64 @56", (56, 56, 64), lambda: layers.Conv2D(64, 3, padding="same")),
        ("resnet50 stage 1 conv 1x1 64->256 @56", (56, 56, 64), lambda: layers.Conv2D(256, 1)),
        ("resnet50 stage 3 conv 3x3 256->256 @14", (14, 14, 256), lambda: layers.Conv2D(256, 3, padding="same")),
        ("resnet50 stage 3 conv 1x1 1024->256 @14", (14, 14, 1024), lambda: layers.Conv2D(256, 1)),
        ("convnext_t stage 1 depthwise 7x7 96 @56", (56, 56, 96), lambda: layers.DepthwiseConv2D(7, padding="same")),
        ("convnext_t stage 1 dense 96->384 @56", (56, 56, 96), lambda: layers.Dense(384)),
        ("convnext_t stage 4 dense 768->3072 @7", (7, 7, 768), lambda: layers.Dense(3072)),
        ("head dense 2048->1000", (2048,), lambda: layers.Dense(1000)),
    ]


def convert_layer(model, mode, calibration):
    """One Keras model -> TFLite bytes: fp32, int8 (full integer, per-channel weights) or dynamic."""
    import tensorflow as tf

    with rewrites.for_xnnpack(model):  # the conversion traces inside, as the product's export does
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if mode != "fp32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if mode == "int8":  # int8 in and out too: the time is the kernel's, no QUANTIZE at the edges
            converter.representative_dataset = lambda: ([x[None]] for x in calibration)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = converter.inference_output_type = tf.int8
        return converter.convert()


def kernel_rows(args):
    rng = np.random.default_rng(0)
    rows = []
    for name, shape, make in kernel_cases():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input(shape), make()])
        calibration = rng.normal(size=(8, *shape)).astype("float32")
        contents = {mode: convert_layer(model, mode, calibration) for mode in ("fp32", "int8", "dynamic")}
        variants = [(mode, runtime, threads) for threads in args.threads for runtime in RUNTIMES
                    for mode in contents]
        timings = timed_in_turns([(contents[m], t, RUNTIMES[r]) for m, r, t in variants], calibration[:1], args.runs)
        ms = dict(zip(variants, timings))
        for threads in args.threads:
            for runtime in RUNTIMES:
                fp32 = ms[("fp32", runtime, threads)]
                rows.append({"kernel": name, "runtime": runtime, "threads": threads, "fp32_ms": fp32,
                             "int8_ms": ms[("int8", runtime, threads)], "dynamic_ms": ms[("dynamic", runtime, threads)],
                             "int8_ratio": ms[("int8", runtime, threads)] / fp32,
                             "dynamic_ratio": ms[("dynamic", runtime, threads)] / fp32})
        for mode, content in contents.items():  # which ops XNNPACK left to TFLite, per mode
            outside = tflite.delegation(content).outside
            for row in rows[-len(args.threads) * len(RUNTIMES):]:
                row[f"{mode}_outside_xnnpack"] = outside
        keras.backend.clear_session()
    return rows


def stage_cuts(model):
    """[(label, sub-model)]: the network cut after its stem and after each stage, then whole.

    Stages are the layers named `stages_N_*` (ConvNeXt) or `layerN_*` (ResNet/ResNeXt); the stem is
    what comes before the first of them.
    """
    stage_of = {}
    first_stage_layer = None
    for layer in model.layers:
        match = re.match(r"^(stages_\d+|layer\d+)_", layer.name)
        if match:
            first_stage_layer = first_stage_layer or layer
            stage_of[match.group(1)] = layer  # the last layer of the stage, in graph order
    if not stage_of:
        return [("whole", model)]
    stem_end = model.layers[model.layers.index(first_stage_layer) - 1]
    cuts = [("stem", stem_end)] + [(f"..{stage}", layer) for stage, layer in stage_of.items()]
    # A cut ends in a global average pool: the export's softmax then runs over C channels, not over a
    # whole feature map (an int8 SOFTMAX of 56x56x64 runs outside XNNPACK and would swamp the stem).
    pooled = [(label, keras.layers.GlobalAveragePooling2D(name=f"cut_pool_{i}")(layer.output))
              for i, (label, layer) in enumerate(cuts)]
    return [(label, keras.Model(model.inputs, out, name=f"{model.name}_to_{label.strip('.')}"))
            for label, out in pooled] + [("whole", model)]


def model_rows(name, args, pixels):
    model = create_model(name, num_classes=1000, input_shape=(args.size, args.size, 3))
    modes = ["none", *args.modes]
    modes = [m for m in dict.fromkeys(quantization.resolve(m, model) for m in modes)
             if m != "int8_mixed" or quantization.float_layer_paths(model)]
    cuts = stage_cuts(model) if args.stages else [("whole", model)]
    rows = []
    for label, sub in cuts:
        contents = {mode: tflite.convert(sub, args.size, mode, pixels) for mode in modes}
        variants = [(mode, threads) for threads in args.threads for mode in modes]
        timings = timed_in_turns([(contents[m], t, {}) for m, t in variants], pixels[:1], args.runs)
        ms = dict(zip(variants, timings))
        for mode in modes:
            delegation = tflite.delegation(contents[mode])
            for threads in args.threads:
                fp32 = ms[("none", threads)]
                rows.append({"model": name, "cut": label, "mode": quantization.label(mode), "threads": threads,
                             "fp32_ms": fp32, "quant_ms": ms[(mode, threads)], "ratio": ms[(mode, threads)] / fp32,
                             "partitions": delegation.partitions, "outside_xnnpack": delegation.outside,
                             "agreement": None})
    if args.stages:  # what each stage adds: the difference of consecutive cuts
        for threads in args.threads:
            for mode in dict.fromkeys(r["mode"] for r in rows):
                mine = [r for r in rows if r["mode"] == mode and r["threads"] == threads]
                for before, after in zip([None, *mine], mine):
                    for key in ("fp32_ms", "quant_ms"):
                        after[f"stage_{key}"] = after[key] - (before[key] if before else 0.0)
    keras.backend.clear_session()
    return rows


def trained_rows(run_dir, args):
    """Top-1 agreement with the Keras model (the export's own check, on --images validation images;
    calibration on training images, as `cli.py export` does) and latency, per mode, for a trained run
    folder's model: the agreement of a random-weight model says nothing."""
    import tempfile

    import kconvnext.export as kx
    from kconvnext.run_folder import resolve_model_file

    data = Path(args.data_dir) / "cats_and_dogs_filtered"
    model = keras.saving.load_model(resolve_model_file(run_dir).keras_path, compile=False)
    # `int8` is int8_full or int8_mixed by family: resolved first, so no mode is exported twice.
    modes = dict.fromkeys(quantization.resolve(m, model) for m in ["none", *args.modes])
    rows, paths, agreement = [], {}, {}
    with tempfile.TemporaryDirectory(prefix="int8-speed-") as work:
        for mode in modes:
            try:
                result = kx.export(run_dir, format="tflite", quantize=mode, output=Path(work) / f"{mode}.tflite",
                                   validation_dir=data / "validation", num_validation=args.images,
                                   calibration_dir=data / "train", num_calibration=args.calibration,
                                   verbose=False)
            except ValueError as err:  # a mode the model cannot take (16x8 and LayerNorm): say so, go on
                print(f"{run_dir} {mode}: not exported: {err}")
                continue
            label = quantization.label(mode)
            paths[label] = result.path.read_bytes()
            agreement[label] = result.validation[0].top1_agreement
        size = result.image_size
        pixels = np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)).astype("float32")
        for threads in args.threads:
            timings = dict(zip(paths, timed_in_turns([(content, threads, {}) for content in paths.values()],
                                                     pixels, args.runs)))
            for mode in paths:
                rows.append({"model": f"{Path(run_dir).name} (trained)", "cut": "whole", "mode": mode,
                             "threads": threads, "fp32_ms": timings["fp32"], "quant_ms": timings[mode],
                             "ratio": timings[mode] / timings["fp32"], "agreement": agreement[mode],
                             "images": args.images})
    keras.backend.clear_session()
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="*", default=["resnet50", "convnext_t"])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--modes", nargs="+", default=["int8", "int8_full", "dynamic", "fp16"],
                   help="quantized modes beside float32 (int8 = the family's default)")
    p.add_argument("--threads", type=int, nargs="+", default=sorted({1, os.cpu_count()}))
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--calibration", type=int, default=validate.DEFAULT_NUM_CALIBRATION,
                   help="calibration images for the calibrated modes (default: the export's)")
    p.add_argument("--no-kernels", dest="kernels", action="store_false", help="skip part 1")
    p.add_argument("--no-stages", dest="stages", action="store_false", help="whole models only in part 2")
    p.add_argument("--trained", nargs="*", default=[], help="run folders: agreement on real images")
    p.add_argument("--images", type=int, default=200, help="validation images per trained model")
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"),
                   help="folder holding cats_and_dogs_filtered, for --trained (default: ../shared/data)")
    p.add_argument("--results", default="int8_speed", help="name of the JSON in benchmarks/results")
    args = p.parse_args()

    cpu = cpu_facts()
    shown = ", ".join(flag for flag, present in cpu["flags"].items() if present)
    print(f"CPU {cpu['model']} ({cpu['cores']} cores): {shown}; int8 dot-product instructions: "
          f"{'yes' if cpu['int8_dot_product'] else 'no'}; ai-edge-litert {cpu['ai_edge_litert']}")
    print(f"batch 1, median of {args.runs} runs, variants timed in turns\n")
    kernels = kernel_rows(args) if args.kernels else []
    if kernels:
        print_table(kernels, [("kernel", "kernel", "{}"), ("runtime", "runtime", "{}"), ("threads", "threads", "{}"),
                              ("fp32_ms", "fp32 ms", "{:.2f}"), ("int8_ms", "int8 ms", "{:.2f}"),
                              ("int8_ratio", "int8/fp32", "{:.2f}x"), ("dynamic_ms", "dynamic ms", "{:.2f}"),
                              ("dynamic_ratio", "dynamic/fp32", "{:.2f}x")])
        print()
    rng = np.random.default_rng(0)
    # Random-weight models are timed only: a few calibration images set their scales well enough.
    pixels = rng.uniform(0, 255, (min(args.calibration, 16), args.size, args.size, 3)).astype("float32")
    models = [row for name in args.models for row in model_rows(name, args, pixels)]
    models += [row for run_dir in args.trained for row in trained_rows(run_dir, args)]
    for row in models:
        row["outside"] = ", ".join(f"{op} x{n}" for op, n in row.get("outside_xnnpack", {}).items()) or "-"
        row["agree"] = "-" if row["agreement"] is None else f"{100 * row['agreement']:.1f}%"
    if models:
        print_table(models, [("model", "model", "{}"), ("cut", "up to", "{}"), ("mode", "mode", "{}"),
                             ("threads", "threads", "{}"), ("fp32_ms", "fp32 ms", "{:.1f}"),
                             ("quant_ms", "mode ms", "{:.1f}"), ("ratio", "ratio", "{:.2f}x"),
                             ("agree", "agreement", "{}"), ("outside", "ops outside XNNPACK", "{}")])
    write_json(args.results, {"cpu": cpu, "size": args.size, "runs": args.runs, "kernels": kernels,
                              "models": [{k: v for k, v in r.items() if k not in ("outside", "agree")} for r in models]})


if __name__ == "__main__":
    main()
