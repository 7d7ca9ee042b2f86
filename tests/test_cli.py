"""The command line as a user meets it first: `--help` at once, no TensorFlow start-up noise,
bad numbers refused before any work, predict over a folder with broken files, eval of a run
without naming its data set again, and the offline advice for the main job."""
import dataclasses
import gc
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kconvnext.commands import COMMANDS, build_parser
from kconvnext.commands import main as cli_main
from kconvnext.commands.quiet import STARTUP_NOISE, imports_outside_gc

ROOT = Path(__file__).resolve().parents[1]


def main(argv):
    return cli_main([str(a) for a in argv])


def run_cli(*args, env=None, python_flags=()):
    """`python cli.py ARGS` in a fresh process, with the user's environment (no log level preset)."""
    base = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, *python_flags, str(ROOT / "cli.py"), *map(str, args)],
                          env={**base, "PYTHONPATH": str(ROOT), **(env or {})}, capture_output=True, text=True,
                          timeout=300)


def imported_modules(importtime_stderr):
    """Module names from `python -X importtime` output."""
    return {line.rsplit("|", 1)[1].strip() for line in importtime_stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_does_not_import_keras_or_tensorflow(command):
    result = run_cli(*([command] if command else []), "--help", python_flags=("-X", "importtime"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage: cli.py" in result.stdout
    modules = imported_modules(result.stderr)
    assert "kconvnext.commands" in modules  # (the parser was built in this process)
    heavy = sorted(m for m in modules if m.split(".")[0] in ("keras", "tensorflow", "jax", "torch"))
    assert not heavy, heavy[:10]


def test_console_script_help_does_not_import_keras_or_tensorflow():
    """The `kconvnext` console script: its entry point (setup.py) called as pip's wrapper calls it."""
    entry = re.search(r'"kconvnext=([\w.]+):(\w+)"', (ROOT / "setup.py").read_text())
    code = f"import sys, {entry.group(1)} as m; sys.exit(m.{entry.group(2)}(['--help']))"
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    modules = imported_modules(result.stderr)
    heavy = sorted(m for m in modules if m.split(".")[0] in ("keras", "tensorflow", "jax", "torch"))
    assert "kconvnext.commands" in modules and not heavy, heavy[:10]


@pytest.mark.slow
def test_tensorflow_startup_lines_hidden_unless_verbose():
    plain = subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True, text=True, timeout=300,
                           env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    noise = [line for line in plain.stderr.splitlines() if STARTUP_NOISE.search(line)]

    quiet = run_cli("models", "--weights")
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert "convnext_t" in quiet.stdout
    assert not [line for line in quiet.stderr.splitlines() if re.search(r"absl|cuda|oneDNN|\.cc:\d+\]", line)], \
        quiet.stderr
    if not noise:
        pytest.skip("TensorFlow prints no start-up lines on this machine: nothing for --verbose to keep")
    loud = run_cli("--verbose", "models", "--weights")
    assert loud.returncode == 0, loud.stderr[-2000:]
    assert sum(bool(STARTUP_NOISE.search(line)) for line in loud.stderr.splitlines()) >= len(noise)


def test_start_up_imports_run_without_the_collector_and_are_frozen_after(monkeypatch):
    """A command's start-up imports TensorFlow and Keras: ~400,000 objects that live until the process
    ends. The collector is off while they are made and they are frozen after, so the full passes the
    run triggers skip them; a process that had them already (a test, a notebook) is left as it is."""
    monkeypatch.delitem(sys.modules, "keras")  # as in a fresh process
    before = gc.get_freeze_count()
    with imports_outside_gc():
        assert not gc.isenabled()
        made = [[] for _ in range(1000)]  # what the imports make
    assert gc.isenabled() and gc.get_freeze_count() >= before + len(made)
    monkeypatch.undo()
    before = gc.get_freeze_count()
    with imports_outside_gc():
        made_again = [[] for _ in range(1000)]
    assert gc.isenabled() and gc.get_freeze_count() == before and made and made_again


@pytest.mark.parametrize("argv,name,message", [
    (["--epochs", "0"], "--epochs", "must be >= 1, got 0"),
    (["--epochs", "1.5"], "--epochs", "expected a whole number >= 1, got '1.5'"),
    (["--batch-size", "-4"], "--batch-size", "must be >= 1, got -4"),
    (["--budget-minutes", "0"], "--budget-minutes", "must be a number > 0, got 0"),
    (["--budget-minutes", "soon"], "--budget-minutes", "expected a number > 0, got 'soon'"),
])
def test_bad_numbers_exit_2_naming_the_argument(argv, name, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "catsdogs", "convnext_atto", "--output", tmp_path / "run", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {name}" in err and message in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("setting,message", [
    ("epochs=0", "key 'epochs' must be > 0, got 0"),
    ("batch_size=0", "key 'batch_size' must be > 0, got 0"),
    ("budget_minutes=-1", "key 'budget_minutes' must be > 0, got -1.0"),
])
def test_recipe_values_must_be_positive(setting, message, tmp_path, capsys):
    assert main(["train", "catsdogs", "convnext_atto", "--output", tmp_path / "run", "--set", setting]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("setting,message", [
    ("pretrained=/nonexistent/convnext_atto.safetensors", "'/nonexistent/convnext_atto.safetensors': no such checkpoint file"),
    ("pretrained=no_such_tag", "has no preset of that name"),
])
def test_bad_weights_fail_before_data_or_run_folder(setting, message, tmp_path, catsdogs_dir, capsys, monkeypatch):
    import kconvnext.training.trainer as trainer

    def no_data(*args, **kwargs):
        raise AssertionError("data were read before the weights were checked")

    monkeypatch.setattr(trainer, "load_data", no_data)
    assert main(["train", "catsdogs", "convnext_atto", "--recipe", "catsdogs_small", "--data-dir", catsdogs_dir,
                 "--output", tmp_path / "run", "--set", setting]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_offline_main_job_advises_a_budgeted_run_that_parses(tmp_path, catsdogs_dir, monkeypatch, capsys):
    """`train catsdogs convnext_t` (the README's main job) with no cached weights and no network:
    the preset's URL is pointed at a closed local port, so the download fails at once."""
    from kconvnext.training.recipes import load_recipe
    from kconvnext.weights import presets

    monkeypatch.setenv("KCONVNEXT_CACHE_DIR", str(tmp_path))  # weights in tmp_path/weights
    real = presets.get_preset("convnext_t", "imagenet")
    monkeypatch.setitem(presets._TABLE, ("convnext_t", "imagenet"),
                        dataclasses.replace(real, url=f"http://127.0.0.1:9/{real.filename}"))
    assert main(["train", "catsdogs", "convnext_t", "--data-dir", catsdogs_dir, "--output", tmp_path / "run"]) == 2
    err = capsys.readouterr().err
    assert f"--set pretrained=/path/to/{real.filename}" in err
    command = next(line.strip() for line in err.splitlines() if line.strip().startswith("python cli.py train"))
    # The benchmarked from-scratch start (benchmarks/scratch_catsdogs.py, docs/results.md), its recipe's budget.
    assert command == shlex.join(["python", "cli.py", "train", "catsdogs", "resnet18", "--recipe", "catsdogs_scratch",
                                  "--budget-minutes", "45", "--data-dir", str(catsdogs_dir)])
    args = build_parser().parse_args(shlex.split(command)[2:])
    assert (args.command, args.dataset, args.model, args.budget_minutes) == ("train", "catsdogs", "resnet18", 45)
    config, _ = load_recipe(args.recipe, dataset=args.dataset, family="resnet")
    assert config.pretrained is None and not config.linear_probe  # from scratch: nothing to download
    assert "catsdogs_convnext_scratch" not in err
    assert not (tmp_path / "run").exists()


def test_estimate_is_known_before_the_first_epoch():
    from kconvnext.training.budget import plan_budget
    from kconvnext.training.config import config_from_dict
    from kconvnext.training.preflight import estimate_line

    config = config_from_dict({"batch_size": 32, "epochs": 6})
    plan = plan_budget(10, images_per_sec=16.0, batch_size=32, steps_per_epoch=50, warmup_epochs=1)
    assert plan.epochs == 6  # 10 min x 16 img/s = 300 steps = 6 epochs of 50
    line = estimate_line(config, plan, 50, 0, {})
    assert "~1m40s per epoch" in line and "~10m00s for 6 epoch(s)" in line
    assert "~5m00s for 3 epoch(s)" in estimate_line(config, None, 50, 3, {"train_images_per_sec": 16.0})
    first = estimate_line(config, None, 50, 0, {})
    assert "[estimate] comes after the first few steps" in first and "--budget-minutes" in first


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run folder holding an untrained 32 px two-class ConvNeXt and the run.json training writes."""
    import kconvnext

    run = tmp_path_factory.mktemp("tiny") / "run"
    (run / "checkpoints").mkdir(parents=True)
    model = kconvnext.create_model("convnext_atto", num_classes=2, input_shape=(32, 32, 3),
                                   depths=(1, 1, 1, 1), dims=(8, 16, 24, 32))
    model.save(run / "checkpoints" / "best.keras")
    return run


def write_run_json(run, **info):
    (run / "run.json").write_text(json.dumps({"class_names": ["cats", "dogs"], "image_size": 32,
                                              "eval_crop_ratio": 0.875, **info}))


def test_predict_folder_reports_bad_files_and_predicts_the_rest(tiny_run, catsdogs_dir, tmp_path, capsys):
    write_run_json(tiny_run)
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("cats/cat.2000.jpg", "dogs/dog.2000.jpg", "cats/cat.2001.jpg"):
        shutil.copy(catsdogs_dir / "validation" / name, photos)
    (photos / "broken.jpg").write_bytes((catsdogs_dir / "validation/dogs/dog.2001.jpg").read_bytes()[:3000])
    (photos / "notes.txt").write_text("not a photo\n")
    (photos / "sub").mkdir()
    shutil.copy(catsdogs_dir / "validation/dogs/dog.2002.jpg", photos / "sub")

    assert main(["predict", tiny_run, photos]) == 1
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(photos / n) for n in ("cat.2000.jpg", "cat.2001.jpg",
                                                                                  "dog.2000.jpg")]
    assert all(line.split("\t")[1].split()[0] in ("cats", "dogs") for line in lines)
    errors = captured.err.strip().splitlines()
    assert errors[0].startswith(f"error: {photos / 'broken.jpg'}: cannot read as an image (")
    assert "1 input(s) could not be classified" in errors[-1] and len(errors) == 2
    assert "{{" not in captured.err and "Op:" not in captured.err

    # Files named one by one: the text file and a missing one are reported, the photo predicted.
    assert main(["predict", tiny_run, photos / "notes.txt", photos / "cat.2000.jpg", photos / "gone.jpg"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith(str(photos / "cat.2000.jpg")) and len(captured.out.splitlines()) == 1
    assert f"error: {photos / 'notes.txt'}: cannot read as an image" in captured.err
    assert f"error: {photos / 'gone.jpg'}: no such image file or folder" in captured.err
    assert main(["predict", tiny_run, photos / "cat.2000.jpg"]) == 0


@pytest.mark.slow
def test_eval_of_a_run_reads_its_data_set_from_run_json(tiny_run, catsdogs_dir, tmp_path, capsys):
    write_run_json(tiny_run, dataset="catsdogs", data_dir=str(catsdogs_dir))
    assert main(["eval", tiny_run, "--limit", "4"]) == 0
    assert "images: 4" in capsys.readouterr().out
    assert main(["eval", tiny_run, "catsdogs", "--limit", "4"]) == 0  # the explicit form still works
    assert "images: 4" in capsys.readouterr().out

    write_run_json(tiny_run, dataset="catsdogs", data_dir=str(tmp_path / "moved"))  # the data_dir is the run's
    assert main(["eval", tiny_run, "--limit", "4"]) == 2
    assert f"data_dir '{tmp_path / 'moved'}' does not hold the data set" in capsys.readouterr().err

    write_run_json(tiny_run)  # a run.json without a data set: DATASET must be given
    assert main(["eval", tiny_run]) == 2
    assert "no DATASET given" in capsys.readouterr().err


@pytest.mark.parametrize("argv,verbose", [(["models"], False), (["--verbose", "models"], True),
                                          (["models", "--verbose"], True)])
def test_verbose_before_or_after_the_command(argv, verbose):
    assert build_parser().parse_args(argv).verbose is verbose


def test_epochs_on_the_command_line_win_over_a_recipes_budget(tmp_path, capsys):
    """recipes/catsdogs_scratch.yaml sizes its run by budget_minutes; `--epochs 1` must mean one
    epoch (the README's quick runs), not 45 minutes; --epochs with --budget-minutes is refused."""
    from kconvnext.commands.train import overrides_from_args
    from kconvnext.training import load_recipe

    args = build_parser().parse_args(["train", "catsdogs", "resnet18", "--recipe", "catsdogs_scratch", "--epochs", "1"])
    config, _ = load_recipe(args.recipe, family="resnet", overrides=overrides_from_args(args))
    assert config.epochs == 1 and config.budget_minutes is None
    assert load_recipe("catsdogs_scratch", family="resnet")[0].budget_minutes == 45
    assert main(["train", "catsdogs", "resnet18", "--epochs", "2", "--budget-minutes", "5",
                 "--output", str(tmp_path / "run")]) == 2
    assert "--epochs and --budget-minutes" in capsys.readouterr().err and not (tmp_path / "run").exists()
