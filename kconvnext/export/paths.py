"""Where exports go: SavedModel version folders and .tflite targets that never overwrite silently.

Where models come from (run folders, run.json) is kconvnext.run_folder; the atomic writes that
replace a target only once it is complete are kconvnext.files.
"""
from pathlib import Path


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
