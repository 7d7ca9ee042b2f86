"""One worker of the 2-process MultiWorkerMirroredStrategy test (run by test_training_distributed).

argv: TF_CONFIG json, output dir. Trains a tiny ConvNeXt on in-memory data through
kconvnext.train and saves its final weights + loss history for the test to compare across workers.
"""
import json
import os
import sys

os.environ["TF_CONFIG"] = sys.argv[1]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from kconvnext.training import train  # noqa: E402
from training_helpers import synthetic_bundle  # noqa: E402

out = sys.argv[2]
result = train("catsdogs", "convnext_atto", recipe="catsdogs_convnext_scratch", data=lambda: synthetic_bundle(train=64, batch=16), output=out, verbose=0,
               overrides={"model": {"depths": [1, 1, 1, 1], "dims": [16, 32, 64, 128]},
                          "augment": {"mixup_alpha": 0.0}},
               epochs=3, batch_size=16, image_size=32, small_input=True, lr=2e-3, warmup_epochs=0,
               drop_path_rate=0.0, strategy="multiworker")
np.savez(os.path.join(out, "weights.npz"), *result.model.get_weights())
with open(os.path.join(out, "losses.json"), "w") as f:
    json.dump([h["loss"] for h in result.history], f)
