"""The model code is backend-agnostic: build, run and train a small ConvNeXt and ResNeXt on JAX."""
import json
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, numpy as np, keras, kconvnext
assert keras.backend.backend() == "jax", keras.backend.backend()
out = {}
# A small ConvNeXt and a small ResNeXt (grouped bottlenecks, both grouped-conv implementations).
builders = {
    "convnext": lambda impl: kconvnext.models.build_convnext(
        (1, 1, 2, 1), (16, 32, 64, 128), num_classes=4, input_shape=(32, 32, 3), small_input=True,
        drop_path_rate=0.1),
    "resnext": lambda impl: kconvnext.models.build_resnet(
        "bottleneck", (1, 1, 1, 1), groups=8, base_width=4, num_classes=4, input_shape=(32, 32, 3),
        small_input=True, grouped_conv_implementation=impl),
}
for name, build in builders.items():
    for impl in (["native", "split"] if name == "resnext" else [None]):
        keras.utils.set_random_seed(0)
        model = build(impl)
        x = np.random.RandomState(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
        y = np.eye(4, dtype="float32")[[0, 1, 2, 3]]
        model.compile(optimizer=keras.optimizers.AdamW(1e-3),
                      loss=keras.losses.CategoricalCrossentropy(from_logits=True))
        losses = [float(model.train_on_batch(x, y)) for _ in range(5)]
        logits = model.predict(x, verbose=0)
        out[f"{name}-{impl}"] = {"shape": list(logits.shape), "losses": losses, "logits": logits.tolist()}
print("RESULT" + json.dumps(out))
"""


def test_models_build_run_and_train_on_jax():
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT"))
    results = json.loads(line[len("RESULT"):])
    for key, r in results.items():
        assert r["shape"] == [4, 4], key
        assert r["losses"][-1] < r["losses"][0], (key, r["losses"])
    import numpy as np

    # Same seed, same weights: both grouped-conv implementations compute the same function.
    np.testing.assert_allclose(results["resnext-native"]["logits"],
                               results["resnext-split"]["logits"], atol=1e-4)
