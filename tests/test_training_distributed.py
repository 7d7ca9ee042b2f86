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


def _job(tf_config, output, options=None):
    return [sys.executable, str(ROOT / "tests/multiworker_job.py"), tf_config, str(output), json.dumps(options or {})]


def _run_workers(outputs, options=None, timeout=600):
    """tests/multiworker_job.py as worker i of a 2-process local cluster, writing to outputs[i];
    a worker still running after `timeout` s (waiting in a collective) fails the test."""
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = [subprocess.Popen(_job(json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
                                   output, options), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
             for i, output in enumerate(outputs)]
    try:
        texts = [p.communicate(timeout=timeout)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, text in zip(procs, texts):
        assert p.returncode == 0, text[-3000:]


@pytest.mark.slow
@pytest.mark.long
def test_multi_worker_two_processes_agree_learn_and_resume_as_the_chief_decides(tmp_path):
    """Two local worker processes train one run (same weights and losses, the data split between
    them, only the chief writes); then both resume it, although only the chief's folder holds a
    checkpoint (the other worker used to train from scratch alone and hang), and the recipe's EMA is
    kept as in single-worker fit (it used to be dropped). One test: each cluster start costs ~20 s."""
    outputs = [tmp_path / "w0", tmp_path / "w1"]
    _run_workers(outputs)
    weights = [np.load(tmp_path / f"w{i}/weights.npz") for i in range(2)]
    assert len(weights[0].files) == len(weights[1].files) > 0
    for key in weights[0].files:
        np.testing.assert_array_equal(weights[0][key], weights[1][key])
    losses = [json.loads((tmp_path / f"w{i}/losses.json").read_text()) for i in range(2)]
    assert losses[0] == losses[1] and losses[0][-1] < losses[0][0]
    # One epoch = steps_per_epoch global batches (run.json): every training image once across the
    # workers, and the lr schedule (sized in those steps) ends with the last epoch.
    before = [json.loads((tmp_path / f"w{i}/epochs.json").read_text()) for i in range(2)]
    steps = before[0]["steps_per_epoch"]
    assert all(e["iterations"] == e["total_steps"] == 3 * steps for e in before)
    assert all(e["train_images"] == [steps * 16] * 3 for e in before)
    assert sorted(before[0]["ids"] + before[1]["ids"]) == list(range(64)) == list(range(steps * 16))
    # Only the chief (worker 0) writes checkpoints.
    assert (tmp_path / "w0/checkpoints/last.keras").is_file()
    assert not (tmp_path / "w1/checkpoints").exists()

    # Resume with one more epoch: one decision, the chief's; both continue its run (its history, its
    # steps), although worker 1's folder has no checkpoint.
    _run_workers(outputs, {"epochs": 4}, timeout=300)
    epochs = [json.loads((tmp_path / f"w{i}/epochs.json").read_text()) for i in range(2)]
    for e in epochs:
        assert e["iterations"] == e["total_steps"] == 4 * steps and len(e["history"]) == 4
        assert e["history"][:3] == before[0]["history"]
    weights = [np.load(tmp_path / f"w{i}/weights.npz") for i in range(2)]
    for key in weights[0].files:
        np.testing.assert_array_equal(weights[0][key], weights[1][key])
    # EMA kept: validated every epoch, best.keras chosen on raw or EMA, last.keras holds the raw
    # weights and the model ends with the EMA ones (as fit's finalize_variable_values).
    state = json.loads((tmp_path / "w0/state.json").read_text())
    assert "val_ema_accuracy" in state["history"][-1] and state["best_weights"] in ("raw", "ema")
    for e in epochs:
        assert "val_ema_accuracy" in e["history"][-1] and e["ema_gap"] == 0.0
    assert epochs[0]["raw_gap"] > 1e-6
    assert not (tmp_path / "w1/checkpoints").exists()
