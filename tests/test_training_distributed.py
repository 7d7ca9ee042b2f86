"""MirroredStrategy on 2 logical CPUs, and MultiWorkerMirroredStrategy with 2 local processes."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _env():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    return env


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path, catsdogs_dir):
    # Logical devices must be set before TensorFlow starts, hence a fresh process.
    result = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "train", "catsdogs", "convnext_atto", "--data-dir", str(catsdogs_dir),
         "--recipe", "catsdogs_convnext_scratch",
         "--output", str(tmp_path / "run"), "--epochs", "1", "--batch-size", "16", "--quiet",
         "--set", "strategy=mirrored", "--set", "cpu_devices=2", "--set", "limit=32", "--set", "image_size=32",
         "--set", "model.depths=[1,1,1,1]", "--set", "augment.randaugment=false", "--set", "ema=true"],
        env=_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "strategy mirrored (2 replica(s))" in result.stdout
    state = json.loads((tmp_path / "run/state.json").read_text())
    assert state["completed_epochs"] == 1 and "val_ema_accuracy" in state["history"][-1]
    assert (tmp_path / "run/checkpoints/best.keras").is_file()


@pytest.mark.slow
def test_multi_worker_two_processes_agree_and_learn(tmp_path):
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
        procs.append(subprocess.Popen(
            [sys.executable, str(ROOT / "tests/multiworker_job.py"), tf_config, str(tmp_path / f"w{i}")],
            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    for p in procs:
        try:
            outputs.append(p.communicate(timeout=600)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    weights = [np.load(tmp_path / f"w{i}/weights.npz") for i in range(2)]
    assert len(weights[0].files) == len(weights[1].files) > 0
    for key in weights[0].files:
        np.testing.assert_array_equal(weights[0][key], weights[1][key])
    losses = [json.loads((tmp_path / f"w{i}/losses.json").read_text()) for i in range(2)]
    assert losses[0] == losses[1] and losses[0][-1] < losses[0][0]
    # One epoch = steps_per_epoch global batches (run.json): every training image once across the
    # workers, and the lr schedule (sized in those steps) ends with the last epoch.
    epochs = [json.loads((tmp_path / f"w{i}/epochs.json").read_text()) for i in range(2)]
    steps = epochs[0]["steps_per_epoch"]
    assert all(e["iterations"] == e["total_steps"] == 3 * steps for e in epochs)
    assert all(e["train_images"] == [steps * 16] * 3 for e in epochs)
    assert sorted(epochs[0]["ids"] + epochs[1]["ids"]) == list(range(64)) == list(range(steps * 16))
    # Only the chief (worker 0) writes checkpoints.
    assert (tmp_path / "w0/checkpoints/last.keras").is_file()
    assert not (tmp_path / "w1/checkpoints").exists()
