"""One worker of the 2-process MultiWorkerMirroredStrategy test (run by test_training_distributed).

argv: TF_CONFIG json ("" for a single-worker run), output dir, optional json of train() overrides.
Trains a tiny ConvNeXt on in-memory data through kconvnext.train and saves its final weights + loss
history for the test to compare across workers, and what one epoch covered: the optimizer's step
count and schedule length, the images each epoch trained on, and which training images
`steps_per_epoch` steps of the loop's distributed input (multiworker._distributed) give this
worker; and the EMA: how far the final weights are from the optimizer's EMA of them, and (where
this worker's folder has one) from last.keras's raw weights.
"""
import gc
import json
import os
import sys

os.environ["TF_CONFIG"] = sys.argv[1]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

gc.disable()  # the imports outside the collector, then frozen, as a command starts (kconvnext/commands/quiet.py)
import numpy as np  # noqa: E402

from kconvnext.training import train  # noqa: E402
from training_helpers import synthetic_bundle  # noqa: E402

gc.freeze()
gc.enable()

out = sys.argv[2]
options = dict(epochs=3, batch_size=16, image_size=32, small_input=True, lr=2e-3, warmup_epochs=0,
               drop_path_rate=0.0, strategy="multiworker")
options.update(json.loads(sys.argv[3]) if len(sys.argv) > 3 else {})
result = train("catsdogs", "convnext_atto", recipe="catsdogs_convnext_scratch", data=lambda: synthetic_bundle(train=64, batch=16), output=out, verbose=0,
               overrides={"model": {"depths": [1, 1, 1, 1], "dims": [16, 32, 64, 128]},
                          "augment": {"mixup_alpha": 0.0}}, **options)
np.savez(os.path.join(out, "weights.npz"), *result.model.get_weights())
with open(os.path.join(out, "losses.json"), "w") as f:
    json.dump([h["loss"] for h in result.history], f)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from kconvnext.training.multiworker import _distributed  # noqa: E402

with open(os.path.join(out, "run.json")) as f:
    steps = json.load(f)["steps_per_epoch"]
strategy = result.model.distribute_strategy
ids = _distributed(strategy, tf.data.Dataset.range(64).shuffle(64, seed=0).batch(16))  # same shape as the data
iterator = iter(ids)
seen = [int(i) for _ in range(steps) for part in strategy.experimental_local_results(next(iterator))
        for i in part.numpy()]
optimizer = result.model.optimizer
final = [v.numpy() for v in result.model.trainable_variables]


def gap(weights):
    return max(float(np.abs(a - np.asarray(b)).max()) for a, b in zip(final, weights))


last = os.path.join(out, "checkpoints", "last.keras")
raw = [v.numpy() for v in keras.models.load_model(last).trainable_variables] if os.path.isfile(last) else None
with open(os.path.join(out, "epochs.json"), "w") as f:
    json.dump({"steps_per_epoch": steps, "iterations": int(optimizer.iterations.numpy()),
               "total_steps": optimizer._learning_rate.total_steps,
               "train_images": [h.get("train_images") for h in result.history], "ids": seen,
               "history": result.history,
               "ema_gap": gap(optimizer._model_variables_moving_average) if optimizer.use_ema else None,
               "raw_gap": gap(raw) if raw else None}, f)
