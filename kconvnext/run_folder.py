"""The run folder: the one layout that training writes and eval, predict and export read.

    RUN/run.json            what a checkpoint needs to be used without its recipe (class names,
                            image size, eval crop ratio, normalization, ...)
    RUN/recipe.yaml         the resolved recipe; resume refuses a different one
    RUN/state.json          completed epochs, history, best so far (what --resume reads)
    RUN/checkpoints/last.keras, RUN/checkpoints/best.keras
    RUN/logs/  RUN/plots/  RUN/features/  RUN/export/
    RUN/skipped_files.txt   RUN/validation_report.json

Why a module of its own: the trainer, the multi-worker loop, the probe and the callbacks write
these paths and eval, predict and export read them; one definition keeps writer and readers from
drifting apart. A bare `.keras` file may have `class_names.json` (a list, or
{"class_names": [...]}) or `run.json` beside it; a `.keras` inside RUN/checkpoints/ also reads
RUN/run.json.
"""
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from kconvnext.files import read_json, write_json_atomic

CHECKPOINT_NAMES = ("best.keras", "last.keras")  # the order readers prefer them in


@dataclass(frozen=True)
class RunFolder:
    """Paths of one run folder (nothing is created until something is written)."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    checkpoints = property(lambda self: self.root / "checkpoints")
    last_checkpoint = property(lambda self: self.checkpoints / "last.keras")
    best_checkpoint = property(lambda self: self.checkpoints / "best.keras")
    run_json = property(lambda self: self.root / "run.json")
    state_json = property(lambda self: self.root / "state.json")
    recipe_yaml = property(lambda self: self.root / "recipe.yaml")
    logs = property(lambda self: self.root / "logs")
    plots = property(lambda self: self.root / "plots")
    features = property(lambda self: self.root / "features")
    skipped_files = property(lambda self: self.root / "skipped_files.txt")
    validation_report = property(lambda self: self.root / "validation_report.json")

    def info(self):
        """run.json as a dict ({} before the first write)."""
        return read_json(self.run_json, {})

    def update_info(self, info):
        """Merge `info` into run.json (atomically: a kill leaves the old or the new file)."""
        write_json_atomic(self.run_json, {**self.info(), **info})

    def state(self):
        return read_json(self.state_json, {})

    def write_state(self, state):
        write_json_atomic(self.state_json, state)

    def remove_partial_writes(self):
        """Delete what a killed atomic write left (files.py's hidden `.NAME.tmp*` beside its target):
        a run resumed after SIGKILL would otherwise keep a half-written `.best.tmp.keras` for ever
        when its best epoch never improves again. Returns the removed paths."""
        removed = []
        for folder in (self.root, self.checkpoints):
            for path in sorted(folder.glob(".*.tmp*")) if folder.is_dir() else ():
                if path.is_file():
                    path.unlink()
                    removed.append(path)
        return removed

    def checkpoint(self):
        """best.keras if there is one, else last.keras, else None."""
        for name in CHECKPOINT_NAMES:
            if (self.checkpoints / name).is_file():
                return self.checkpoints / name
        return None


@dataclass
class ModelSource:
    keras_path: Path
    base_dir: Path  # the run folder, or the .keras file's folder: default exports go under it
    metadata: dict = field(default_factory=dict)
    metadata_path: Path = None


def resolve_model_file(model_file):
    """A `.keras` file or a run folder -> ModelSource (the .keras to load and its metadata)."""
    path = Path(model_file)
    if not path.exists():
        raise FileNotFoundError(
            f"Model file {str(path)!r} does not exist (no such run folder or .keras file); pass a "
            ".keras checkpoint or a run folder (containing checkpoints/best.keras or checkpoints/last.keras)."
        )
    if path.is_dir():
        run = RunFolder(path)
        keras_path = run.checkpoint()
        if keras_path is None:
            raise FileNotFoundError(
                f"{str(path)!r} is a folder but not a run folder: no checkpoints/best.keras or "
                "checkpoints/last.keras in it. Pass the .keras file itself or a run folder."
            )
        base = path
        candidates = [run.run_json]
    else:
        if path.suffix != ".keras":
            raise ValueError(
                f"{str(path)!r} is not a .keras file; kconvnext reads Keras 3 `.keras` checkpoints "
                "or run folders (legacy .h5 / SavedModel inputs are not supported)."
            )
        keras_path = path
        base = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        candidates = [path.parent / "class_names.json", path.parent / "run.json", RunFolder(base).run_json]
    for candidate in candidates:
        data = read_json(candidate)
        if data is not None:
            metadata = {"class_names": data} if isinstance(data, list) else dict(data)
            return ModelSource(keras_path, base, metadata, candidate)
    return ModelSource(keras_path, base, {}, None)


def resolve_class_names(class_names, metadata, num_classes, where="the model"):
    """Explicit names > metadata > class_0.. (with a warning). Checks the count against the model."""
    if isinstance(class_names, (str, os.PathLike)) and Path(class_names).is_file():
        data = read_json(class_names)
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
