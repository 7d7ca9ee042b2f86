"""`cli.py train / eval / predict / compare` on real images from ../shared/data."""
import json
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kconvnext.commands import build_parser
from kconvnext.commands import main as cli_main
from training_helpers import steps_per_epoch

ROOT = Path(__file__).resolve().parents[1]
# A tiny ConvNeXt at 32 px on 32 real images per split, augmentation off so it can visibly fit them.
TINY = ["--recipe", "catsdogs_convnext_scratch", "--set", "limit=32", "--set", "image_size=32", "--set", "model.depths=[1,1,1,1]",
        "--set", "model.dims=[16,32,64,128]", "--set", "augment.randaugment=false",
        "--set", "augment.random_resized_crop=false", "--set", "augment.hflip=false", "--set", "augment.mixup_alpha=0",
        "--set", "augment.cutmix_alpha=0", "--set", "augment.random_erasing=0", "--set", "warmup_epochs=0",
        "--set", "lr=1e-3", "--set", "label_smoothing=0", "--set", "drop_path_rate=0", "--batch-size", "8", "--quiet"]


def cli(*args):
    return [sys.executable, str(ROOT / "cli.py"), *map(str, args)]


def env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def main(argv):
    """In-process CLI, as `python cli.py ...` (paths may be Path objects here)."""
    return cli_main([str(a) for a in argv])


@pytest.mark.parametrize("command", ["train", "eval", "predict", "compare"])
def test_every_command_has_help_with_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert "examples:" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["train", "catdogs", "convnext_t"], r"Unknown dataset 'catdogs'. Did you mean 'catsdogs'"),
    (["train", "catsdogs", "convnext_tinny"], r"Unknown model 'convnext_tinny'. Did you mean 'convnext_tiny'"),
    (["compare", "cifar10", "resnet18", "resnet05"], r"Unknown model 'resnet05'"),
    (["train", "catsdogs", "convnext_t", "--set", "lernrate=1"], r"unknown key 'lernrate'"),
    (["train", "catsdogs", "convnext_t", "--set", "epochs=many"], r"key 'epochs': expected int"),
    (["eval", "/nonexistent/run", "catsdogs"], r"no such run folder"),
])
def test_bad_input_is_a_clear_error(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert re.search(message, err), err


@pytest.mark.slow
def test_train_then_eval_and_predict_read_it_back(tmp_path, catsdogs_dir, capsys):
    run = tmp_path / "run"
    assert main(["train", "catsdogs", "convnext_atto", "--data-dir", catsdogs_dir, "--output", run,
                 "--epochs", "4", *TINY]) == 0
    out = capsys.readouterr().out
    # 10% of the 32 training images (2 per class) are held out to select the best epoch on.
    assert "28 train / 32 validation images + 4 held out of train to select the best epoch on, 2 classes" in out
    assert "[estimate]" in out and "on a hold-out of 4 training images" in out
    assert out.index("estimate  [estimate] comes after the first few steps") < out.index("Epoch 1/4")
    assert "reported  validation accuracy of that checkpoint" in out
    history = json.loads((run / "state.json").read_text())["history"]
    assert len(history) == 4 and history[-1]["loss"] < history[0]["loss"]
    for name in ("checkpoints/last.keras", "checkpoints/best.keras", "run.json", "recipe.yaml",
                 "logs/training.csv", "plots/curves.png", "plots/confusion_matrix.png", "skipped_files.txt"):
        assert (run / name).is_file(), name
    assert len((run / "logs/training.csv").read_text().splitlines()) == 5
    recipe = (run / "recipe.yaml").read_text()
    assert "image_size: 32" in recipe and "limit: 32" in recipe

    assert json.loads((run / "run.json").read_text())["data_dir"] == str(catsdogs_dir.resolve())
    assert main(["eval", run, "--limit", "32"]) == 0  # the data set and its folder: from run.json
    out = capsys.readouterr().out
    assert "images: 32" in out and "top-1 accuracy" in out and "top-5" not in out
    top1 = float(out.split("top-1 accuracy: ")[1].split()[0])
    saved = json.loads((run / "validation_report.json").read_text())["top1"]
    assert top1 == pytest.approx(saved, abs=1e-4)  # eval preprocesses exactly like training's validation
    info = json.loads((run / "run.json").read_text())
    assert info["validation_top1"] == saved and info["selection_count"] == 4

    cat, dog = catsdogs_dir / "validation/cats/cat.2000.jpg", catsdogs_dir / "validation/dogs/dog.2000.jpg"
    assert main(["predict", run / "checkpoints/best.keras", cat, dog, "--top", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(str(cat))
    probs = [float(x.split()[-1]) for x in lines[0].split("\t")[1:]]
    assert sorted(x.split()[0] for x in lines[0].split("\t")[1:]) == ["cats", "dogs"]
    assert sum(probs) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.slow
def test_resume_after_sigkill_mid_epoch(tmp_path, catsdogs_dir, capsys):
    run = tmp_path / "run"
    argv = cli("train", "catsdogs", "convnext_atto", "--data-dir", catsdogs_dir, "--output", run,
               "--epochs", "4", *TINY, "--set", "limit=64")
    proc = subprocess.Popen(argv, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = run / "state.json"
    deadline = time.monotonic() + 300  # a hang guard, not a speed threshold
    while time.monotonic() < deadline and proc.poll() is None:
        if (run / "checkpoints" / "last.keras").is_file() and state.is_file() \
                and json.loads(state.read_text()).get("completed_epochs", 0) >= 1:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "training finished before it could be killed"
    time.sleep(1.0)  # now inside epoch 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = json.loads(state.read_text())["completed_epochs"]
    assert 1 <= done <= 4
    # Same command again (in this process: only the kill needs one of its own): resumes
    # automatically from the last complete epoch.
    code = main(argv[2:])
    printed = capsys.readouterr()
    assert code == 0, printed.err[-2000:]
    # state.json may lead the checkpoint by one epoch if the kill hit between the two renames.
    resumed_at = int(re.search(r"resuming after epoch (\d+)", printed.out).group(1))
    assert resumed_at in (done - 1, done)
    final = json.loads(state.read_text())
    assert final["completed_epochs"] == 4 and len(final["history"]) == 4
    import keras

    import kconvnext.training  # noqa: F401  (registers RecipeAdamW for load_model)

    model = keras.models.load_model(run / "checkpoints/last.keras")
    steps = steps_per_epoch(run)
    assert int(model.optimizer.iterations) == 4 * steps  # exactly the steps of an uninterrupted run
    assert not list((run / "checkpoints").glob(".*tmp*"))


@pytest.mark.slow
def test_nan_stops_with_clear_message(tmp_path, catsdogs_dir, capsys):
    # In this process: the exit code is what main returns (cli.py exits with it; the README tests run
    # cli.py as a process), and starting one more TensorFlow was a third of this test's time.
    code = main(["train", "catsdogs", "convnext_atto", "--data-dir", catsdogs_dir, "--output", tmp_path / "run",
                 "--epochs", "2", *TINY, "--set", "lr=1e30", "--set", "limit=16"])
    err = capsys.readouterr().err
    assert code == 3, err[-2000:]
    assert re.search(r"error: loss became (nan|inf) at epoch \d+, step \d+", err), err[-2000:]
    assert "Lower the learning rate" in err
    assert "last good checkpoint is kept" in err or "no epoch completed" in err


@pytest.mark.slow
def test_compare_writes_table_and_plot(tmp_path, cifar10_dir, capsys):
    out = tmp_path / "cmp"
    # A budget of 0.2 s each: each model's measured speed turns it into a (shortened) epoch or two.
    assert main(["compare", "cifar10", "convnext_atto", "convnext_femto", "--data-dir", cifar10_dir,
                 "--budget-minutes", "0.003", "--recipe", "cifar10_convnext",
                 "--output", out, "--batch-size", "16", "--quiet", "--set", "limit=48",
                 "--set", "model.depths=[1,1,1,1]"]) == 0
    table = (out / "compare.md").read_text()
    assert "| model | dataset | validation accuracy | selection accuracy | params |" in table
    assert "| convnext_atto | cifar10 |" in table and "| convnext_femto | cifar10 |" in table
    rows = (out / "compare.csv").read_text().splitlines()
    assert rows[0] == "model,dataset,accuracy,selection_accuracy,params,gflops,train_img_per_s,epochs,minutes"
    assert len(rows) == 3
    assert (out / "compare.png").stat().st_size > 0
    for name in ("convnext_atto", "convnext_femto"):
        info = json.loads((out / name / "run.json").read_text())
        plan = info["budget_plan"]
        assert plan["minutes"] == 0.003 and info["epochs"] == plan["epochs"] >= 1
        assert info["recipe"].endswith("cifar10_convnext.yaml")
