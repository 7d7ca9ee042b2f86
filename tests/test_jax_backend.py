"""The model code is backend-agnostic: build, run and train a small ConvNeXt and ResNeXt on JAX."""
import json
import subprocess
import sys

import pytest

from conftest import jax_env

WITHOUT_TENSORFLOW = r"""
import gc, importlib.abc, sys


class NoTensorFlow(importlib.abc.MetaPathFinder):
    # A GPU machine with JAX and no TensorFlow: any import of it fails.
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ImportError("tensorflow is not installed here")


sys.meta_path.insert(0, NoTensorFlow())
gc.disable()  # the imports outside the collector, then frozen, as a command starts (kconvnext/commands/quiet.py)
import keras, kconvnext
gc.freeze()
gc.enable()
"""

# The model code on JAX where TensorFlow is absent, as on the GPU machine README describes (with
# TensorFlow installed, keras.utils.set_random_seed imports it to seed it too).
SCRIPT = WITHOUT_TENSORFLOW + r"""
import json, numpy as np
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
        # The jitted predict step: at jax_env's XLA level it compiles in ~0.5 s; an eager call compiles
        # each op on its own (3.5 s for the ConvNeXt).
        logits = keras.ops.convert_to_numpy(model.predict_on_batch(x))
        out[f"{name}-{impl}"] = {"shape": list(logits.shape), "losses": losses, "logits": logits.tolist()}
print("RESULT" + json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.long
def test_models_build_run_and_train_on_jax():
    pytest.importorskip("jax")
    env = jax_env()
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


TRAIN_WITHOUT_TF = WITHOUT_TENSORFLOW + r"""
import json
from kconvnext.training import train

result = train("cifar10", "convnext_atto", data_dir=sys.argv[1], output=sys.argv[2], verbose=0,
               epochs=3, batch_size=50, limit=300, warmup_epochs=0.5,
               overrides={"model": {"depths": [1, 1, 1, 1], "dims": [16, 32, 64, 128]}})
best = keras.models.load_model(result.run_dir / "checkpoints" / "best.keras")
print("RESULT" + json.dumps({
    "backend": keras.backend.backend(), "losses": [h["loss"] for h in result.history],
    "steps": int(result.model.optimizer.iterations), "best": result.best_accuracy,
    "report_count": result.report["count"], "best_outputs": int(best.output_shape[-1]),
    "tf_imported": any(m.split(".")[0] == "tensorflow" for m in sys.modules)}))
"""


@pytest.mark.slow
def test_trainer_runs_on_jax_without_tensorflow(tmp_path, cifar10_dir):
    """The path for a GPU machine that has JAX but no TensorFlow: the same `train` call, fed by
    keras.utils.PyDataset (kconvnext/data/portable.py), on real CIFAR-10 images."""
    pytest.importorskip("jax")
    env = jax_env()
    proc = subprocess.run([sys.executable, "-c", TRAIN_WITHOUT_TF, str(cifar10_dir), str(tmp_path / "run")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(next(l for l in proc.stdout.splitlines() if l.startswith("RESULT"))[len("RESULT"):])
    assert r["backend"] == "jax" and not r["tf_imported"]
    # 300 training images, 30 held out to select the epoch on (the hold-out is a PyDataset too): 5 full batches.
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["selection_count"] == 30 and info["steps_per_epoch"] == 5
    assert r["steps"] == 3 * 5 and r["report_count"] == 300 and r["best_outputs"] == 10
    assert r["losses"][-1] < r["losses"][0], r["losses"]
    assert r["best"] > 0.1  # above chance after 15 steps
    for name in ("run.json", "state.json", "logs/training.csv", "plots/curves.png"):
        assert (tmp_path / "run" / name).is_file(), name
