"""Every code block of README.md is executed here, as a user would run it, on ../shared/data.

A chapter (the blocks under one `## ` heading) runs top to bottom in a user's folder of its own; the
chapters are independent, so pytest-xdist runs them side by side (ReadmeChapter below).

Each fenced block is preceded by a directive comment that says how it is checked
(`<!-- readme-test: KIND key="value" ... -->`, invisible on GitHub):

- `python`: executed statement by statement in the chapter's work folder, one namespace for the
  chapter's Python blocks in order (as in a notebook).
- `needs-files`: Python or commands that read checkpoint files only the user has (no test can make a
  real-size official/timm/torchvision file without torch): each statement must stop with an error
  that names the missing file (a command: exit 2), the point where the user's file is needed.
- `bash`: every `python cli.py ...` command runs in the chapter's work folder, in README order, so later
  blocks read what earlier ones wrote (run folders, exports): through the entry point `cli.py` calls,
  in this test process, with the terminal's two streams captured as one (a fresh process per command
  paid TensorFlow's import and AutoGraph's conversions again: ~10 s each, ~20 commands); `kconvnext
  ...` (the console script pip installed) and the set-up block's main job run as processes, exactly as
  typed (the main job once for the suite: `main_job_run`). `append="..."` adds
  arguments to `train`/`compare`/`eval`/`export` commands so they finish in seconds on this CPU (fewer
  images, smaller images, smaller batches, one epoch); nothing else of the command changes.
- `output`: the block is what `cmd="..."` prints: that command runs and every line of the block, digits
  masked and spaces collapsed, must start the matching output line, in order (`...` skips lines).
  A `cmd` that an earlier block of the chapter ran with the same arguments (its `append` included) is
  not run again: the block is checked against what that run printed, as the README shows it.
- `tests`: the test commands: each collects tests (`--collect-only`; all of them in one process, which
  imports the test modules once), and a marker selection (`-m`) keeps at least `min_share` of the suite.
- `setup`: the set-up lines; the install and test commands must be the ones `.ci/run` runs.
- `serving`: the TF Serving container and curl: the container is a download (checked up to it): the
  mounted folder must hold a numbered SavedModel version, and the request body is sent to the
  SavedModel's serving signature as TF Serving would, answering with the keys the block shows.

The network is never reached: the weights presets the blocks name are served from a cache of random
weights in the converted-weights format (the real load path after the first download), and every
command gets a proxy on a closed loopback port, so a download fails at once instead of reaching out.

What all chapters share is made once per suite run, by the first test process that needs it, the
others waiting for it (`made_once`): that weights cache, and the README's main job (the set-up
block's `python cli.py train ...`, run as a process as typed), whose run folder is copied into the
folder of the set-up block's chapter and of the chapters that read it.
"""
import ast
import base64
import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import pytest

from conftest import ROOT

README = ROOT / "README.md"
DIRECTIVE = re.compile(r"<!--\s*readme-test:\s*([\w-]+)(.*?)-->")
OPTION = re.compile(r'(\w[\w-]*)="((?:[^"\\]|\\.)*)"')
# Presets the README's blocks load by tag; each gets random weights in the converted cache.
PRESETS = [("convnext_t", "imagenet"), ("convnext_t", "imagenet22k"), ("resnet50", "imagenet")]
NO_NETWORK = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
              "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "NO_PROXY": ""}


def readme_blocks(text=None, chapters=False):
    """[(kind, options, language, code, line)] for every fenced block, in order; with chapters=True,
    (chapter, block) pairs, the chapter being the `## ` heading above the block ("" above the first)."""
    lines = (text if text is not None else README.read_text(encoding="utf-8")).splitlines()
    blocks, i, chapter = [], 0, ""
    while i < len(lines):
        if lines[i].startswith("## "):
            chapter = lines[i][3:].strip()
        if lines[i].startswith("```"):
            language, start = lines[i][3:].strip(), i
            j = i + 1
            while not lines[j].startswith("```"):
                j += 1
            directive = next((DIRECTIVE.search(lines[k]) for k in range(start - 1, max(start - 3, -1), -1)
                              if DIRECTIVE.search(lines[k])), None)
            kind = directive.group(1) if directive else None
            options = dict(OPTION.findall(directive.group(2))) if directive else {}
            block = (kind, options, language, "\n".join(lines[start + 1:j]), start + 1)
            blocks.append((chapter, block) if chapters else block)
            i = j + 1
        else:
            i += 1
    return blocks


def cli_commands(code):
    """The `python cli.py ...` / `kconvnext ...` commands of a bash block, continuation lines joined,
    comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", code)
    commands = []
    for line in joined.splitlines():
        for part in line.split("&&"):
            part = part.split(" #", 1)[0].strip()
            if part.startswith(("python cli.py ", "kconvnext ")):
                commands.append(part)
    return commands


def test_every_readme_block_has_a_directive():
    missing = [line for kind, _, _, _, line in readme_blocks() if kind is None]
    assert not missing, f"README.md blocks at lines {missing} have no <!-- readme-test: ... --> directive"


def test_setup_commands_are_the_ones_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text().replace("install -q ", "install ")  # quiet in CI, same command
    setups = [code for kind, _, _, code, _ in readme_blocks() if kind == "setup"]
    assert setups, "README.md must start with the set-up block"
    first = readme_blocks()[0]
    assert first[0] == "setup", "the first README block is the set-up + main job / tests commands"
    test_line = [line for line in setups[0].splitlines() if "pytest" in line][0]
    for step in ('-m venv', 'install -e ".[test]"', "python -m pytest -q"):
        assert step in test_line and step in ci, f"{step!r} must be in README's test line and in .ci/run"


def test_cli_commands_parse():
    """Every documented command line is accepted by the CLI's parser (no TensorFlow needed for this)."""
    from kconvnext.commands import build_parser

    parser = build_parser()
    for kind, _, language, code, line in readme_blocks():
        if language == "bash":
            for command in cli_commands(code):
                argv = cli_arguments(command)
                try:
                    parser.parse_args(argv)
                except SystemExit as exit_:
                    pytest.fail(f"README line {line}: {command!r} is rejected by the parser (exit {exit_.code})")


# --- running the blocks ------------------------------------------------------------------------------------

def made_once(tmp_path_factory, name, make):
    """The folder `name`, made by `make(folder)` in the first test process of this run that asks for
    it; the others wait on a lock and take it as made. pytest-xdist gives every process a base temp
    folder of its own inside the run's one, which is where the shared folder goes."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (folder / ".made").is_file():
            shutil.rmtree(folder, ignore_errors=True)  # (a process that failed half-way)
            folder.mkdir()
            make(folder)
            (folder / ".made").touch()
    return folder


@pytest.fixture(scope="session")
def weights_cache(tmp_path_factory):
    """One cache of random preset weights for the run, shared by the chapters' folders."""
    return made_once(tmp_path_factory, "readme-cache", _random_weights_cache)


MAIN_JOB_RUN = Path("runs") / "catsdogs-convnext_t"  # where the README's main job writes


def main_job_command():
    """(command line, append) of the README's first command, the main job."""
    _, options, _, code, _ = readme_blocks()[0]
    commands = cli_commands(code)
    assert len(commands) == 1, f"the set-up block should hold one main job, not {commands}"
    return commands[0], options.get("append", "")


@pytest.fixture(scope="session")
def main_job_run(tmp_path_factory, shared_data, weights_cache):
    """The README's first command (the main job), run once for the suite as the user types it (a
    process); its run folder, which the chapters copy into their own folder."""
    def make(folder):
        workspace = make_workspace(folder, shared_data, weights_cache)
        command, append = main_job_command()
        run_cli(command, workspace, append, as_process=True)
        assert (workspace["work"] / MAIN_JOB_RUN / "run.json").is_file(), f"the main job wrote no {MAIN_JOB_RUN}"

    return made_once(tmp_path_factory, "readme-main-job", make) / "main" / MAIN_JOB_RUN


def make_workspace(base, shared_data, cache):
    """A user's folder: cli.py and recipes/ as in a checkout, ../shared/data beside it, a home with
    ~/photos (a class-folder tree) and a weights cache for the presets the README loads."""
    work = base / "main"
    work.mkdir()
    (base / "shared").symlink_to(shared_data.parent, target_is_directory=True)
    for name in ("cli.py", "recipes"):
        (work / name).symlink_to(ROOT / name)
    home = base / "home"
    for split in ("cats", "dogs"):
        source = sorted((shared_data / "cats_and_dogs_filtered" / "train" / split).glob("*.jpg"))[:12]
        (home / "photos" / split).mkdir(parents=True)
        for path in source:
            shutil.copy(path, home / "photos" / split / path.name)
    shutil.copy(source[0], work / "cat.jpg")
    env = {**os.environ, **NO_NETWORK, "HOME": str(home),
           "KCONVNEXT_DATA_DIR": str(shared_data), "KCONVNEXT_CACHE_DIR": str(cache),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg"}
    return {"work": work, "env": env, "weights": cache / "weights", "printed": {}, "ran_before": set()}


def _random_weights_cache(root):
    """What the first download leaves: the converted weights of each preset, here random. Made in
    this process (a child process paid TensorFlow's start-up again for it)."""
    from kconvnext import create_model
    from kconvnext.weights.presets import get_preset
    from kconvnext.weights.pretrained import converted_cache_path, reference_kwargs

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KCONVNEXT_CACHE_DIR", str(root))
        for model, tag in PRESETS:
            preset = get_preset(model, tag)
            path = converted_cache_path(preset)
            path.parent.mkdir(parents=True, exist_ok=True)
            create_model(model, **reference_kwargs(None, preset)).save_weights(str(path))


def cli_arguments(command):
    """The arguments after the program: `python cli.py` or the `kconvnext` console script."""
    words = shlex.split(command)
    return words[2:] if words[0] == "python" else words[1:]


def command_arguments(command, workspace, append=""):
    """The arguments a documented command line runs with: `append` added where it applies, ~ expanded."""
    args = cli_arguments(command)
    if append and args[0] in ("train", "compare", "eval", "export"):
        args += shlex.split(append)
    home = workspace["env"]["HOME"]  # the user's shell expands ~ before the command sees it
    return [home + a[1:] if a.startswith("~/") else a for a in args]


def command_key(command, workspace, append=""):
    """What identifies a documented command's run in workspace["printed"] / ["ran_before"]: its
    program and the arguments it runs with."""
    return (command.split()[0], *command_arguments(command, workspace, append))


def run_cli(command, workspace, append="", expect=0, as_process=False):
    """Run a documented command line in the workspace; its exit code must be `expect`; returns what
    it printed (stdout and stderr as one stream, in the order a terminal shows them). `python cli.py`
    runs in this process unless `as_process`; the `kconvnext` console script always as a process.
    Each run's exit code and output are kept in workspace["printed"] under its program and arguments."""
    key = command_key(command, workspace, append)
    args = list(key[1:])
    if command.startswith("kconvnext "):  # the console script pip installed beside this Python
        script = Path(sys.executable).parent / "kconvnext"
        assert script.is_file(), f"the kconvnext console script is not installed beside {sys.executable}"
        code, output = _run_process([str(script), *args], workspace)
    elif as_process:
        code, output = _run_process([sys.executable, "cli.py", *args], workspace)
    else:
        code, output = _run_in_this_process(args, workspace)
    assert code == expect, f"{command} exited {code} (expected {expect}):\n{output[-6000:]}"
    workspace["printed"][key] = (code, output)
    return output


def _run_process(argv, workspace):
    # One stream, unbuffered: the lines in the order a terminal shows them (stderr's notes among stdout's).
    result = subprocess.run(argv, cwd=workspace["work"], env={**workspace["env"], "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    return result.returncode, result.stdout


def _run_in_this_process(args, workspace):
    """cli.py's entry point in the workspace (folder and environment), with the exit code a process
    would end with: what it returns, SystemExit's code, or 1 and the traceback."""
    from kconvnext_cli import main

    with _in_workspace(workspace), _terminal() as printed:
        try:
            code = main(args)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        except Exception:  # noqa: BLE001 (an uncaught error: what the process would print)
            traceback.print_exc()
            code = 1
    return code, printed[0]


@contextlib.contextmanager
def _in_workspace(workspace):
    cwd, env = os.getcwd(), dict(os.environ)
    os.chdir(workspace["work"])
    os.environ.update(workspace["env"])
    try:
        yield
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)


@contextlib.contextmanager
def _terminal():
    """File descriptors 1 and 2 and sys.stdout / sys.stderr all write to one file, as a terminal
    shows both streams in one (TensorFlow's C++ side writes to the descriptors); yields a list that
    holds the text once the block ends."""
    printed = []
    streams, saved = (sys.stdout, sys.stderr), (os.dup(1), os.dup(2))
    for stream in streams:
        stream.flush()
    with tempfile.TemporaryFile() as file:
        os.dup2(file.fileno(), 1)
        os.dup2(file.fileno(), 2)
        sys.stdout = sys.stderr = open(os.dup(1), "w", buffering=1, encoding="utf-8", errors="replace")
        try:
            yield printed
        finally:
            sys.stdout.close()
            sys.stdout, sys.stderr = streams
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)
            file.seek(0)
            printed.append(file.read().decode("utf-8", errors="replace"))


def _masked(line):
    # Durations print in whatever unit Keras picks (3s/step, 929ms/step): one shape for all.
    line = re.sub(r"\d+(\.\d+)?(us|ms|s)\b", "#s", line)
    return " ".join(re.sub(r"\d+", "#", line).split())


def assert_output_matches(block, output, what):
    """Every block line (digits masked) starts an output line, in order; `...` skips any lines."""
    out = [_masked(line) for line in output.splitlines()]
    position = 0
    for line in block.splitlines():
        if line.strip() in ("...", ""):
            continue
        want = _masked(line)
        while position < len(out) and not out[position].startswith(want):
            position += 1
        assert position < len(out), f"{what}: README line {line!r} not found (in order) in the output:\n{output}"
        position += 1


def run_python_block(code, workspace, line, namespace, needs_files=False):
    with _in_workspace(workspace):
        for statement in ast.parse(code).body:
            compiled = compile(ast.Module([statement], []), f"README.md:{line + statement.lineno}", "exec")
            if not needs_files:
                exec(compiled, namespace)
                continue
            files = re.findall(r"""["']([^"']+\.(?:pth|safetensors))["']""", ast.unparse(statement))
            with pytest.raises((FileNotFoundError, ValueError)) as error:
                exec(compiled, namespace)
            assert files and any(f in str(error.value) for f in files), (
                f"README.md line {line + statement.lineno}: the error does not name the file: {error.value}")


def check_serving(code, workspace):
    """docker run: the mounted folder holds a numbered SavedModel; curl: the body answers as shown."""
    import tensorflow as tf

    mount = re.search(r'-v "\$PWD/([^:]+):/models/', code).group(1)
    versions = sorted(p for p in (workspace["work"] / mount).iterdir() if p.name.isdigit())
    assert versions and (versions[-1] / "saved_model.pb").is_file(), f"{mount} holds no SavedModel version"
    image = re.search(r"base64 -w0 (\S+?)\)", code).group(1)
    body = {"instances": [{"b64": base64.b64encode((workspace["work"] / image).read_bytes()).decode()}]}
    served = tf.saved_model.load(str(versions[-1])).signatures["serving_default"]
    outputs = served(tf.constant([base64.b64decode(body["instances"][0]["b64"])]))
    shown = json.loads(re.search(r"# (\{.*\})", code).group(1))["predictions"][0]
    assert set(shown) == set(outputs), f"README shows {sorted(shown)}; the signature returns {sorted(outputs)}"


COLLECT = r"""
import json, sys
import pytest
for argv in json.loads(sys.argv[1]):
    print("\n@@command", flush=True)
    code = pytest.main(argv)
    print(f"\n@@exit {int(code)}", flush=True)
"""


def check_test_commands(code, workspace, min_share):
    """Each `python -m pytest ...` line collects tests (run with --collect-only: running the suite
    from inside it would recurse), all in one process; a marker selection (-m) keeps at least
    min_share of the suite."""
    commands = [line.split(" #", 1)[0].strip() for line in code.splitlines() if line.startswith("python -m pytest")]
    assert commands, "the block has no pytest command"
    argvs = [[*shlex.split(command)[3:], "--collect-only", "-n0", "-p", "no:cacheprovider"]  # the commands say -q
             for command in commands]
    result = subprocess.run([sys.executable, "-c", COLLECT, json.dumps(argvs)], cwd=ROOT, capture_output=True,
                            text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    outputs = result.stdout.split("\n@@command\n")[1:]
    assert result.returncode == 0 and len(outputs) == len(commands), f"exit {result.returncode}\n{result.stdout[-3000:]}"
    for command, output in zip(commands, outputs):
        exit_code = int(re.search(r"@@exit (\d+)", output).group(1))
        assert exit_code == 0, f"{command}: exit {exit_code}\n{output[-3000:]}"
        counts = re.search(r"(\d+)(?:/(\d+))? tests? collected", output)
        assert counts, f"{command}: collected nothing\n{output[-3000:]}"
        selected, total = int(counts.group(1)), int(counts.group(2) or counts.group(1))
        if " -m " in command.split("pytest", 1)[1]:  # a marker selection: the working loop
            assert selected >= min_share * total, f"{command}: {selected} of {total} tests, under {min_share:.0%}"


def run_blocks(blocks, workspace):
    """Blocks in README order in one folder, as a user runs them; Python blocks share a namespace."""
    namespace = {"__name__": "__readme__"}
    for kind, options, language, code, line in blocks:
        where = f"README.md line {line}"
        if kind == "needs-files" and language == "bash":
            for command in cli_commands(code):
                output = run_cli(command, workspace, options.get("append", ""), expect=2)
                files = re.findall(r"[\w.-]+\.(?:pth|safetensors)", command)
                assert files and all(f in output for f in files), f"{where}: the error names no file:\n{output}"
        elif kind in ("python", "needs-files"):
            run_python_block(code, workspace, line, namespace, needs_files=kind == "needs-files")
        elif kind == "bash":
            for command in cli_commands(code):
                append = options.get("append", "")
                if command_key(command, workspace, append) in workspace["ran_before"]:
                    continue  # the user ran it before this chapter (the main job): its run folder is here
                run_cli(command, workspace, append, int(options.get("expect", 0)))
        elif kind == "output":
            command, expect = options["cmd"], int(options.get("expect", 0))
            earlier = workspace["printed"].get(command_key(command, workspace))
            if earlier:
                assert earlier[0] == expect, f"{where}: {command} exited {earlier[0]} (expected {expect})"
                output = earlier[1]
            else:
                output = run_cli(command, workspace, expect=expect)
            output = output.replace(str(workspace["weights"]), "~/.keras/kconvnext/weights")
            assert_output_matches(code, output, where)
        elif kind == "serving":
            check_serving(code, workspace)
        elif kind == "tests":
            check_test_commands(code, workspace, float(options.get("min_share", 0)))
        elif kind == "setup":  # its main job ran as typed (main_job_run); its run folder is here
            assert (workspace["work"] / MAIN_JOB_RUN / "run.json").is_file(), f"{where}: no {MAIN_JOB_RUN}"
        else:
            pytest.fail(f"{where}: unknown directive {kind!r}")


class ReadmeChapter:
    """The blocks under one `## ` heading, run top to bottom in a user's folder of their own, so the
    chapters run side by side (pytest-xdist hands each class to one process). A chapter that reads
    what the README's first command wrote (runs/catsdogs-convnext_t) starts with that run folder
    (main_job_run), as the user has it; everything else a chapter reads, its own blocks write."""
    chapter = None
    after_main_job = False

    @pytest.mark.slow
    @pytest.mark.long
    def test_blocks_run(self, request, tmp_path_factory, shared_data, weights_cache):
        workspace = make_workspace(tmp_path_factory.mktemp("readme"), shared_data, weights_cache)
        blocks = [block for chapter, block in readme_blocks(chapters=True) if chapter == self.chapter]
        assert blocks, f"README.md has no blocks under '## {self.chapter}'"
        if self.after_main_job or any(block[0] == "setup" for block in blocks):
            shutil.copytree(request.getfixturevalue("main_job_run"), workspace["work"] / MAIN_JOB_RUN)
            command, append = main_job_command()
            workspace["ran_before"].add(command_key(command, workspace, append))
        run_blocks(blocks, workspace)


class TestReadmeTop(ReadmeChapter):
    chapter = ""  # the set-up commands (the main job) and the console script


class TestReadmeTour(ReadmeChapter):
    chapter = "A short tour"


class TestReadmeTransferLearning(ReadmeChapter):
    chapter = "Transfer learning (the main job)"
    after_main_job = True  # its first command is the main job, which the user ran at set-up


class TestReadmeTraining(ReadmeChapter):
    chapter = "Training"
    after_main_job = True  # eval / predict runs/catsdogs-convnext_t


class TestReadmeContributing(ReadmeChapter):
    chapter = "Contributing"


class TestReadmeExport(ReadmeChapter):
    chapter = "Export and serving"
    after_main_job = True  # exports runs/catsdogs-convnext_t


def test_an_output_block_of_a_command_already_run_checks_what_it_printed(tmp_path):
    """The chapter ran the command (a bash block, its `append` included): the output block reads
    that run's output instead of training again (the Training chapter ran its scratch run twice)."""
    workspace = {"work": tmp_path, "env": {"HOME": str(tmp_path)}, "weights": tmp_path / "weights", "printed": {},
                 "ran_before": set()}
    command = "python cli.py train nosuchdata convnext_atto --epochs 1"  # run again, it would exit 2
    workspace["printed"][command_key(command, workspace)] = (0, "model convnext_atto\nfinished 1 epoch(s)\n")
    run_blocks([("output", {"cmd": command}, "", "model     convnext_atto\n...\nfinished 3 epoch(s)", 1)], workspace)
    with pytest.raises(AssertionError, match="not found"):
        run_blocks([("output", {"cmd": command}, "", "model     resnet18", 1)], workspace)


def test_a_command_the_user_ran_before_the_chapter_is_not_run_again(tmp_path):
    """The Transfer chapter starts with the main job, which the set-up ran (main_job_run): its run
    folder is copied in and the command is not trained again; any other command runs."""
    workspace = {"work": tmp_path, "env": {"HOME": str(tmp_path)}, "weights": tmp_path / "weights", "printed": {},
                 "ran_before": set()}
    command = "python cli.py train nosuchdata convnext_atto"  # run, it exits 2
    workspace["ran_before"].add(command_key(command, workspace, "--epochs 1"))
    run_blocks([("bash", {"append": "--epochs 1"}, "bash", command, 1)], workspace)
    with pytest.raises(AssertionError, match="exited 2"):
        run_blocks([("bash", {"append": "--epochs 2"}, "bash", command, 1)], workspace)


def test_every_chapter_with_blocks_is_run():
    chapters = {chapter for chapter, _ in readme_blocks(chapters=True)}
    run = {c.chapter for c in ReadmeChapter.__subclasses__()}
    assert chapters == run, f"README chapters with code blocks but no test class: {sorted(chapters - run)}"
