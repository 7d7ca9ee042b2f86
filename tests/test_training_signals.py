"""Issue 21 item 7: SIGTERM (docker stop, Kubernetes eviction, Slurm preemption) saves and stops like
Ctrl-C, and the same command resumes."""
import json
import os
import re
import signal
import subprocess
import threading
import time

import keras
import pytest

from kconvnext.training.signals import Terminated, sigterm_as_interrupt
from test_cli_train import TINY, cli, env, main
from test_training_trainer import run
from training_helpers import steps_per_epoch


# The measured estimate a batch end prints (callbacks.Throughput), the sign that fit is stepping and the
# SIGTERM handler is in place. Not just "[estimate]": the run summary's own estimate line, printed
# before any step, says "[estimate] comes after the first few steps" (stop 27's CI dry run signalled
# on that line and the start-up died of the default handler, -15).
STEPPING = re.compile(r"^\[estimate\] \d+\.\d+ s/step")


def _sentinel(signum, frame):  # a handler of the caller's that training must leave in place
    raise AssertionError("the caller's SIGTERM handler ran")


@pytest.mark.slow
def test_sigterm_mid_epoch_saves_a_checkpoint_and_restores_the_handler(tmp_path):
    """A stop in the first epoch, before any checkpoint exists: SIGTERM is raised as Terminated, a
    KeyboardInterrupt, so this is also Ctrl-C's first-epoch path (fit_loop catches both alike;
    Ctrl-C from a callback, later in a run: test_training_trainer's mid-epoch resume test)."""
    class Term(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, _sentinel)
    try:
        lines = []
        with pytest.raises(Terminated):  # a KeyboardInterrupt: callers that handle Ctrl-C handle it
            run(tmp_path, epochs=2, callbacks=[Term()], verbose=1, print_fn=lines.append)
        assert signal.getsignal(signal.SIGTERM) is _sentinel
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert issubclass(Terminated, KeyboardInterrupt)
    state = json.loads((tmp_path / "run/state.json").read_text())
    # Signalled after batch 2's callbacks had checked: stops at the end of batch 3, position exact.
    assert state["interrupted"] and state["interrupted_at"] == {"batches": 3, "optimizer_steps": 3}
    assert int(keras.models.load_model(tmp_path / "run/checkpoints/last.keras").optimizer.iterations) == 3
    assert any(line.lstrip().startswith("terminated (SIGTERM): saved") for line in lines), lines
    resumed = run(tmp_path, epochs=2)  # the same call resumes after the 3 batches and finishes
    assert resumed.epochs_completed == 2 and int(resumed.model.optimizer.iterations) == 2 * 4


def test_handler_only_in_the_main_thread_and_only_inside():
    previous = signal.getsignal(signal.SIGTERM)
    seen = []

    def in_thread():
        with sigterm_as_interrupt():  # Python allows signal handlers in the main thread only
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert seen == [previous]
    with sigterm_as_interrupt() as stop:
        stop.on_train_batch_end(0)  # nothing received: training goes on
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # a second one (during the save) changes nothing
        deadline = time.monotonic() + 60  # delivery is asynchronous; a hang guard, not a threshold
        while stop.received is None and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(Terminated, match="SIGTERM"):  # at the batch end, where the position is exact
            stop.on_train_batch_end(1)
    assert signal.getsignal(signal.SIGTERM) is previous


def test_the_cli_test_waits_for_the_measured_estimate_not_the_summary_line():
    from types import SimpleNamespace

    from kconvnext.training.callbacks import Throughput
    from kconvnext.training.preflight import estimate_line

    summary = estimate_line(SimpleNamespace(epochs=2), None, 10, 0, {})
    printed = []
    throughput = Throughput(batch_size=8, steps_per_epoch=10, epochs_left=2, print_fn=printed.append)
    throughput.on_epoch_begin(0)
    for batch in range(10):
        throughput.on_train_batch_end(batch)
    measured = [line for text in printed for line in text.splitlines() if line]
    assert len(measured) == 1 and STEPPING.match(measured[0]), printed
    assert "[estimate]" in summary and not any(STEPPING.match(line) for line in summary.splitlines())


@pytest.mark.slow
def test_cli_train_sigterm_saves_exits_130_and_the_same_command_resumes(tmp_path, catsdogs_dir, capsys):
    run_dir = tmp_path / "run"
    # 96 images (86 to train on) at batch 8: 10 steps an epoch, the time estimate is printed after the 7th.
    argv = cli("train", "catsdogs", "convnext_atto", "--data-dir", catsdogs_dir, "--output", run_dir,
               "--epochs", "2", *TINY, "--set", "limit=96")
    proc = subprocess.Popen(argv, env={**env(), "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    output = []
    for line in proc.stdout:  # wait until it is stepping: the estimate line comes from a batch's end
        output.append(line)
        if STEPPING.match(line):
            break
    assert proc.poll() is None, "".join(output)[-3000:]
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=300)
    output = "".join(output) + rest
    assert proc.returncode == 130, output[-3000:]  # Ctrl-C's exit code
    assert "terminated (SIGTERM): saved" in output, output[-3000:]
    state = json.loads((run_dir / "state.json").read_text())
    assert state["interrupted"] and (run_dir / "checkpoints/last.keras").is_file()
    steps = steps_per_epoch(run_dir)
    assert state["interrupted_at"]["optimizer_steps"] == state.get("completed_epochs", 0) * steps + \
        state["interrupted_at"]["batches"] < 2 * steps  # stopped at a batch end, position recorded exactly
    again = main(argv[2:])  # the same command, in this process (only the signal needs one of its own)
    assert again == 0, capsys.readouterr().err[-3000:]
    final = json.loads((run_dir / "state.json").read_text())
    assert final["completed_epochs"] == 2 and "interrupted" not in final
    import kconvnext.training  # noqa: F401  (registers RecipeAdamW for load_model)

    model = keras.models.load_model(run_dir / "checkpoints/last.keras")
    steps = steps_per_epoch(run_dir)
    assert int(model.optimizer.iterations) == 2 * steps  # resumed at the next batch, none trained twice
