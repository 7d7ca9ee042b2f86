"""Which grouped 3x3 conv is fastest on TF CPU for ResNeXt, among numerically identical choices?

Candidates, all reading the same (kh, kw, in/groups, out) kernel:
  native     one conv with a grouped kernel (= keras Conv2D(groups=g))
  split      one dense conv per group + concat (kconvnext GroupedConv2D "split")
  blockdiag  one dense conv with a block-diagonal kernel (g x the FLOPs, but one big kernel)
Measured per ResNeXt-50 32x4d stage shape (forward, and forward+backward), then on the whole
model. Usage: python benchmarks/grouped_conv.py [--batch 16] [--repeats 5]
"""
import argparse

import numpy as np
import tensorflow as tf

from common import median_seconds, print_table, write_json

# ResNeXt-50 32x4d grouped conv inputs per stage at 224 px: (spatial, width, stride of block 0).
STAGES = [(56, 128), (28, 256), (14, 512), (7, 1024)]


def block_diagonal(kernel, groups):
    kh, kw, cin_g, cout = kernel.shape
    cout_g = cout // groups
    full = np.zeros((kh, kw, cin_g * groups, cout), kernel.dtype)
    for g in range(groups):
        full[:, :, g * cin_g:(g + 1) * cin_g, g * cout_g:(g + 1) * cout_g] = kernel[..., g * cout_g:(g + 1) * cout_g]
    return full


def candidates(kernel, groups):
    k = tf.constant(kernel)
    kb = tf.constant(block_diagonal(kernel, groups))
    ks = tf.split(k, groups, axis=-1)

    def native(x):
        return tf.nn.conv2d(x, k, 1, "SAME")

    def split(x):
        xs = tf.split(x, groups, axis=-1)
        return tf.concat([tf.nn.conv2d(a, b, 1, "SAME") for a, b in zip(xs, ks)], axis=-1)

    def blockdiag(x):
        return tf.nn.conv2d(x, kb, 1, "SAME")

    return {"native": native, "split": split, "blockdiag": blockdiag}


def time_layer(fn, x, train, repeats):
    if train:
        @tf.function
        def step():
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.reduce_sum(fn(x))
            return tape.gradient(y, x)
    else:
        step = tf.function(lambda: fn(x))
    return median_seconds(lambda: step().numpy(), warmup=2, repeats=repeats)


def try_time(fn, x, train, repeats):
    """Seconds, or None where TF has no kernel (native grouped conv has no CPU gradient)."""
    try:
        return time_layer(fn, x, train, repeats)
    except tf.errors.InvalidArgumentError as err:
        print(f"not supported: {str(err).splitlines()[0][:100]}")
        return None


def time_model(impl, batch, repeats):
    import keras

    import kconvnext

    model = kconvnext.resnext50_32x4d(grouped_conv_implementation=impl)
    x = np.random.RandomState(0).uniform(0, 255, (batch, 224, 224, 3)).astype("float32")
    fwd = tf.function(lambda: model(x, training=False))
    seconds = median_seconds(lambda: fwd().numpy(), warmup=2, repeats=repeats)
    keras.backend.clear_session()
    return batch / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--groups", type=int, default=32)
    parser.add_argument("--skip-model", action="store_true")
    args = parser.parse_args()
    rng = np.random.RandomState(0)
    rows = []
    for spatial, width in STAGES:
        kernel = rng.normal(size=(3, 3, width // args.groups, width)).astype("float32") * 0.05
        x = tf.constant(rng.normal(size=(args.batch, spatial, spatial, width)).astype("float32"))
        fns = candidates(kernel, args.groups)
        ref = fns["native"](x).numpy()
        for train in (False, True):
            times = {name: try_time(fn, x, train, args.repeats) for name, fn in fns.items()}
            base = times["split"]  # native has no CPU gradient, so compare against split
            for name, fn in fns.items():
                rows.append({
                    "shape": f"{spatial}x{spatial}x{width}", "pass": "fwd+bwd" if train else "fwd",
                    "impl": name, "ms": times[name] * 1e3 if times[name] else None,
                    "vs_split": base / times[name] if times[name] else None,
                    "max_abs_diff": float(np.abs(fn(x).numpy() - ref).max()),
                })
    for r in rows:
        r["ms_text"] = "unsupported" if r["ms"] is None else f"{r['ms']:.1f}"
        r["ratio_text"] = "-" if r["vs_split"] is None else f"{r['vs_split']:.2f}x"
    print_table(rows, [("shape", "shape", "{}"), ("pass", "pass", "{}"), ("impl", "impl", "{}"),
                       ("ms_text", "ms", "{}"), ("ratio_text", "speed vs split", "{}"),
                       ("max_abs_diff", "max|diff|", "{:.1e}")])
    model_rows = []
    if not args.skip_model:
        for impl in ("native", "split"):
            model_rows.append({"impl": impl, "img_s": time_model(impl, args.batch, args.repeats)})
        print()
        print_table(model_rows, [("impl", "resnext50_32x4d impl", "{}"), ("img_s", "inference img/s", "{:.1f}")])
    write_json("grouped_conv", {"batch": args.batch, "groups": args.groups, "layers": rows, "model": model_rows})


if __name__ == "__main__":
    main()
