"""Where models come from and where exports go: run folders, metadata, versions, atomic writes.

A run folder (what training writes) holds:
    RUN/checkpoints/best.keras and/or RUN/checkpoints/last.keras   (best is exported if present)
    RUN/run.json   {"class_names": [...], "image_size": N, "eval_crop_ratio": 0.875, ...}
A bare `.keras` file may have `class_names.json` (a list, or {"class_names": [...]}) or
`run.json` beside it; a `.keras` inside RUN/checkpoints/ also reads RUN/run.json.
"""
import contextlib
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

CHECKPOINT_NAMES = ("best.keras", "last.keras")


@dataclass
class ModelSource:
    keras_path: Path
    base_dir: Path  # the run folder, or the .keras file's folder: default exports go under it
    metadata: dict = field(default_factory=dict)
    metadata_path: Path = None


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); fix or remove it.") from None


def resolve_model_file(model_file):
    """A `.keras` file or a run folder -> ModelSource (the .keras to load and its metadata)."""
    path = Path(model_file)
    if not path.exists():
        raise FileNotFoundError(
            f"Model file {str(path)!r} does not exist (no such run folder or .keras file); pass a "
            ".keras checkpoint or a run folder (containing checkpoints/best.keras or checkpoints/last.keras)."
        )
    if path.is_dir():
        for name in CHECKPOINT_NAMES:
            if (path / "checkpoints" / name).is_file():
                keras_path = path / "checkpoints" / name
                break
        else:
            raise FileNotFoundError(
                f"{str(path)!r} is a folder but not a run folder: no checkpoints/best.keras or "
                "checkpoints/last.keras in it. Pass the .keras file itself or a run folder."
            )
        base = path
        candidates = [path / "run.json"]
    else:
        if path.suffix != ".keras":
            raise ValueError(
                f"{str(path)!r} is not a .keras file; export reads Keras 3 `.keras` checkpoints "
                "or run folders (legacy .h5 / SavedModel inputs are not supported)."
            )
        keras_path = path
        base = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        candidates = [path.parent / "class_names.json", path.parent / "run.json", base / "run.json"]
    metadata, metadata_path = {}, None
    for candidate in candidates:
        if candidate.is_file():
            data = _read_json(candidate)
            metadata = {"class_names": data} if isinstance(data, list) else dict(data)
            metadata_path = candidate
            break
    return ModelSource(keras_path, base, metadata, metadata_path)


def resolve_class_names(class_names, metadata, num_classes, where="the model"):
    """Explicit names > metadata > class_0.. (with a warning). Checks the count against the model."""
    if isinstance(class_names, (str, os.PathLike)) and Path(class_names).is_file():
        data = _read_json(class_names)
        class_names = data if isinstance(data, list) else data.get("class_names")
    elif isinstance(class_names, str):
        class_names = [c.strip() for c in class_names.split(",") if c.strip()]
    if class_names is None:
        class_names = metadata.get("class_names")
    if class_names is None:
        warnings.warn(
            f"No class names for {where} (no class_names argument, class_names.json or run.json); "
            f"using class_0..class_{num_classes - 1}.", stacklevel=3,
        )
        return [f"class_{i}" for i in range(num_classes)]
    class_names = [str(c) for c in class_names]
    if len(class_names) != num_classes:
        raise ValueError(
            f"{len(class_names)} class names were given but {where} has {num_classes} outputs; "
            "pass matching class names (--class-names a,b,... or a JSON list file)."
        )
    return class_names


# ---------------------------------------------------------------- versions (SavedModel)

def existing_versions(base):
    base = Path(base)
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())


def saved_model_target(base, version=None, overwrite=False):
    """The version folder to write: next free version, or `version` (existing only with overwrite).

    overwrite without a version re-exports into the latest existing version.
    """
    versions = existing_versions(base)
    if version is None:
        if overwrite and versions:
            version = versions[-1]
        else:
            version = (versions[-1] + 1) if versions else 1
    version = int(version)
    if version < 1:
        raise ValueError(f"SavedModel version must be a positive integer, got {version}.")
    target = Path(base) / str(version)
    if target.exists() and not overwrite:
        raise FileExistsError(
            f"{target} already exists; pass --overwrite to replace it, or omit --version to "
            f"write the next version ({(versions[-1] + 1) if versions else 1})."
        )
    return target


def file_target(path, overwrite=False):
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass --overwrite to replace it, or --output ANOTHER.tflite.")
    if path.is_dir():
        raise ValueError(f"--output {path} is a folder; give a .tflite file path.")
    return path


# ---------------------------------------------------------------- atomic writes

@contextlib.contextmanager
def staged_dir(target):
    """Yield a temp folder next to `target`; on success it replaces `target`, on failure it is removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.rename(target, old / "x")
        os.rename(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def staged_file(target):
    """Yield a temp file path next to `target`; on success it replaces `target`, else it is removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def dir_size(path):
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
