#!/usr/bin/env python
"""Why ConvNeXt's TFLite (and int8 above all) was slow on CPU, and what the export rewrites buy.

Part 1, single layers on ConvNeXt-T's first-stage map (56x56x96) in float32 and int8: depthwise
3x3, 5x5, 7x7 as one op and 7x7 in row bands (kconvnext/export/rewrites.py; XNNPACK runs up to 25
taps in one pass, above that a multi-pass path many times slower), and dense 1x1 / 3x3 convs (what
int8 buys on this CPU where XNNPACK has fast kernels for both).
Part 2, whole models at --size px (random weights: latency only): float32 and the family's
int8 mode, each traced as Keras computes it (`plain`) and through the rewrites (`rewritten`),
with batch-1 latency, the ratio to plain float32 in the same run, and what XNNPACK runs (a model
with nothing to rewrite, such as ResNet-50, gets one row per mode). The variants of a table row
group are timed in turns, so that load from elsewhere on a shared machine shifts them alike.

    python benchmarks/tflite_kernels.py                                  # convnext_t resnet50, 224 px
    python benchmarks/tflite_kernels.py --models convnext_atto --size 96 --runs 5

Prints the tables and writes benchmarks/results/tflite_kernels.json.
"""
import argparse
import os

import keras
import numpy as np
from common import print_table, timed_in_turns, write_json

from kconvnext import create_model
from kconvnext.export import quantization, rewrites, tflite
from kconvnext.export.rewrites import row_bands


def interleaved_ms(contents, pixels, threads, runs):
    """Median batch-1 ms of each TFLite model with XNNPACK, timed in turns (common.timed_in_turns)."""
    return timed_in_turns([(content, threads, {}) for content in contents], pixels, runs)


def conv_rows(args):
    """One conv layer on ConvNeXt-T's first-stage map (56x56x96) through the TFLite converter, float32
    and full int8: depthwise 3x3 / 5x5 / 7x7 as one op and 7x7 in row bands, and the dense 1x1 and
    3x3 convs for what int8 buys where XNNPACK has fast kernels on this CPU."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    shape = (56, 56, 96)
    calibration = rng.normal(size=(8, *shape)).astype("float32")
    cases = [("depthwise 3x3", keras.layers.DepthwiseConv2D(3, padding="same"), False),
             ("depthwise 5x5", keras.layers.DepthwiseConv2D(5, padding="same"), False),
             ("depthwise 7x7", keras.layers.DepthwiseConv2D(7, padding="same"), False),
             ("depthwise 7x7 in row bands", keras.layers.DepthwiseConv2D(7, padding="same"), True),
             ("conv 1x1 96->384", keras.layers.Conv2D(384, 1), False),
             ("conv 3x3 96->96", keras.layers.Conv2D(96, 3, padding="same"), False)]
    rows = []
    for label, layer, banded in cases:
        model = keras.Sequential([keras.Input(shape), layer])
        row = {"conv": label, "ops": len(row_bands(*layer.kernel_size)) if banded else 1}
        contents = []
        for mode in ("fp32", "int8"):
            with rewrites.for_xnnpack(model, enabled=banded):  # the conversion traces inside
                converter = tf.lite.TFLiteConverter.from_keras_model(model)
                if mode == "int8":
                    converter.optimizations = [tf.lite.Optimize.DEFAULT]
                    converter.representative_dataset = lambda: ([x[None]] for x in calibration)
                    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                contents.append(converter.convert())
        row["fp32_ms"], row["int8_ms"] = interleaved_ms(contents, calibration[:1], args.threads, args.runs)
        row["int8_vs_fp32"] = row["int8_ms"] / row["fp32_ms"]
        rows.append(row)
    base = next(r for r in rows if r["conv"] == "depthwise 5x5")
    for r in rows:
        r["fp32_vs_dw5x5"] = r["fp32_ms"] / base["fp32_ms"]
    return rows


def model_rows(name, args):
    model = create_model(name, num_classes=1000, input_shape=(args.size, args.size, 3))
    rng = np.random.default_rng(0)
    calibration = rng.uniform(0, 255, (args.calibration, args.size, args.size, 3)).astype("float32")
    int8 = quantization.resolve("int8", model)
    variants = []
    for mode in ("none", int8):
        plain, rewritten = (tflite.convert(model, args.size, mode, calibration, rewrite=r) for r in (False, True))
        row = {"model": name, "mode": "fp32" if mode == "none" else mode}
        variants.append(({**row, "trace": "plain"}, plain))
        if rewritten != plain:  # else nothing in this model to rewrite: the same graph, timed once
            variants.append(({**row, "trace": "rewritten"}, rewritten))
    timings = interleaved_ms([c for _, c in variants], calibration[:1], args.threads, args.runs)
    rows = []
    for (row, content), ms in zip(variants, timings):
        delegation = tflite.delegation(content)
        rows.append({**row, "ms": ms, "partitions": delegation.partitions, "outside_xnnpack": delegation.outside})
    keras.backend.clear_session()
    base = rows[0]["ms"]
    for r in rows:
        r["vs_plain_fp32"] = r["ms"] / base
        r["outside"] = ", ".join(f"{op} x{n}" for op, n in r["outside_xnnpack"].items()) or "-"
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="*", default=["convnext_t", "resnet50"])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--calibration", type=int, default=8, help="random calibration images for int8")
    p.add_argument("--skip-layers", action="store_true", help="skip part 1 (single layers)")
    args = p.parse_args()
    print(f"TFLite with XNNPACK, {args.threads} thread(s), batch 1, median of {args.runs} runs")
    convs = [] if args.skip_layers else conv_rows(args)
    if convs:
        print_table(convs, [("conv", "layer on 56x56x96", "{}"), ("ops", "ops", "{}"),
                            ("fp32_ms", "fp32 ms", "{:.2f}"), ("fp32_vs_dw5x5", "fp32 vs dw 5x5", "{:.1f}x"),
                            ("int8_ms", "int8 ms", "{:.2f}"), ("int8_vs_fp32", "int8 vs fp32", "{:.2f}x")])
    models = [row for name in args.models for row in model_rows(name, args)]
    if models:
        print()
        print_table(models, [("model", f"model ({args.size} px)", "{}"), ("mode", "mode", "{}"),
                             ("trace", "trace", "{}"), ("ms", "ms", "{:.1f}"),
                             ("vs_plain_fp32", "vs plain fp32", "{:.2f}x"), ("partitions", "XNNPACK parts", "{}"),
                             ("outside", "ops outside XNNPACK", "{}")])
    write_json("tflite_kernels", {"threads": args.threads, "runs": args.runs, "size": args.size,
                                  "layers": convs, "models": models})


if __name__ == "__main__":
    main()
