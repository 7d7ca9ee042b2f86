"""The run folder is defined once (kconvnext.run_folder): training writes it, eval/predict/export read it."""
import ast
import json
from pathlib import Path

import pytest

import kconvnext
from kconvnext.run_folder import RunFolder, resolve_class_names, resolve_model_file

PACKAGE = Path(kconvnext.__file__).parent
LAYOUT_NAMES = {"checkpoints", "run.json", "state.json", "last.keras", "best.keras", "recipe.yaml"}


def _touch(path, text=""):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_no_module_but_run_folder_spells_the_layout():
    """A second spelling of the layout is how a writer and its readers drift apart (export used to
    own it, and training wrote its own copy)."""
    offenders = []
    for source in PACKAGE.rglob("*.py"):
        if source.name == "run_folder.py":
            continue
        tree = ast.parse(source.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
                      and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                if node.value in LAYOUT_NAMES or node.value.startswith("checkpoints/"):
                    offenders.append(f"{source.relative_to(PACKAGE)}:{node.lineno} {node.value!r}")
    assert not offenders, offenders


def test_readers_prefer_best_and_find_the_runs_metadata(tmp_path):
    run = RunFolder(tmp_path / "run")
    _touch(run.last_checkpoint)
    assert resolve_model_file(run.root).keras_path == run.last_checkpoint
    _touch(run.best_checkpoint)
    run.update_info({"class_names": ["cat", "dog"], "image_size": 96})
    run.update_info({"eval_crop_ratio": 0.9})  # merged, not replaced
    source = resolve_model_file(run.root)
    assert source.keras_path == run.best_checkpoint and source.base_dir == run.root
    assert source.metadata == {"class_names": ["cat", "dog"], "image_size": 96, "eval_crop_ratio": 0.9}
    # a checkpoint passed by file still reads its run's run.json, and exports go under the run
    by_file = resolve_model_file(run.last_checkpoint)
    assert by_file.metadata_path == run.run_json and by_file.base_dir == run.root
    # class_names.json beside a bare .keras wins, as a list or a dict
    bare = _touch(tmp_path / "bare" / "m.keras")
    _touch(bare.parent / "class_names.json", json.dumps({"class_names": ["a", "b", "c"]}))
    assert resolve_model_file(bare).metadata["class_names"] == ["a", "b", "c"]
    assert resolve_class_names(None, resolve_model_file(bare).metadata, 3) == ["a", "b", "c"]
    assert resolve_class_names("x, y", {}, 2) == ["x", "y"]


def test_bad_run_folders_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        resolve_model_file(tmp_path)
    run = RunFolder(tmp_path)
    _touch(run.best_checkpoint)
    _touch(run.run_json, "{not json")
    with pytest.raises(ValueError, match=r"run\.json is not valid JSON.*fix or remove it"):
        resolve_model_file(tmp_path)
    with pytest.raises(ValueError, match="3 class names were given but the model has 2 outputs"):
        resolve_class_names("a,b,c", {}, 2)
    assert run.run_json.read_text() == "{not json"  # a reader never rewrites what it could not parse


def test_a_run_start_removes_what_a_killed_atomic_write_left(tmp_path):
    """SIGKILL during save_model_atomic leaves `.best.tmp.keras`; the resumed run removes it (and
    `.state.json.tmp`) before writing, and keeps every real file."""
    from kconvnext.training.run_setup import write_run_files
    from kconvnext.training.config import config_from_dict
    from kconvnext.data.config import DataBundle

    folder = RunFolder(tmp_path / "run")
    partial = [_touch(folder.checkpoints / ".best.tmp.keras", "half"), _touch(folder.root / ".state.json.tmp", "{")]
    kept = [_touch(folder.last_checkpoint, "model"), _touch(folder.state_json, "{}")]
    bundle = DataBundle(train=None, validation=None, class_names=["a", "b"], train_count=0, validation_count=0,
                        class_counts={})
    write_run_files(folder.root, config_from_dict({}), "recipes/x.yaml", None, bundle)
    assert not any(p.exists() for p in partial)
    assert all(p.is_file() for p in kept) and folder.recipe_yaml.is_file()


def test_best_keras_links_last_keras_even_after_a_killed_link_and_copies_where_links_fail(tmp_path, monkeypatch):
    """files.link_file_atomic (best.keras = the last.keras just saved): a temporary left by a run
    killed mid-link does not turn the link into a copy; a file system without hard links (some
    network and FAT mounts) gets an atomic copy, no temporary left either way."""
    from kconvnext import files

    last, best = _touch(tmp_path / "last.keras", "epoch 1"), _touch(tmp_path / "best.keras", "epoch 0")
    _touch(tmp_path / ".best.keras.tmp", "half")  # (a kill between the link and the rename)
    files.link_file_atomic(last, best)
    assert best.samefile(last)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras", "last.keras"]

    def no_links(source, target):
        raise OSError("hard links are not supported here")

    monkeypatch.setattr(files.os, "link", no_links)
    _touch(tmp_path / "new.keras", "epoch 2").replace(last)  # a new last.keras, renamed in as files.py writes
    assert best.read_text() == "epoch 1"  # the link kept its epoch
    files.link_file_atomic(last, best)
    assert best.read_text() == "epoch 2" and not best.samefile(last)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras", "last.keras"]
