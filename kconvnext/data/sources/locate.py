"""Where a named data set lives: --data-dir, then $KCONVNEXT_DATA_DIR, then the Keras cache/download.

Offline use never reaches the network: a local copy is always preferred, and the download is the
last resort, with an error that lists every place looked at when it fails.
"""
import os
from pathlib import Path

import keras

ENV_VAR = "KCONVNEXT_DATA_DIR"


def locate(folder_name, data_dir, *, is_valid, download, what):
    """Path of the data set folder `folder_name` (e.g. "cifar-10-batches-py").

    data_dir points straight at the data set folder (its parent is accepted too); it is never
    second-guessed: if it is wrong, that is an error, not a download. download() -> path.
    """
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        for candidate in (path, path / folder_name):
            if candidate.is_dir() and is_valid(candidate):
                return candidate
        raise FileNotFoundError(
            f"{what}: data_dir {str(path)!r} does not hold the data set (expected {what} in "
            f"{str(path)!r} or {str(path / folder_name)!r}). Point --data-dir at the {folder_name}/ folder."
        )
    tried = []
    root = os.environ.get(ENV_VAR)
    if root:
        candidate = Path(root).expanduser() / folder_name
        if candidate.is_dir() and is_valid(candidate):
            return candidate
        tried.append(str(candidate))
    try:
        return Path(download())
    except Exception as error:  # noqa: BLE001  (network, hash or extraction failure: explain the offline fix)
        raise FileNotFoundError(
            f"{what}: no local copy found (looked at {tried or ['$' + ENV_VAR + ' (not set)']}) and the download "
            f"failed ({type(error).__name__}: {error}). Offline, pass --data-dir /path/to/{folder_name} or set "
            f"{ENV_VAR} to a folder that contains {folder_name}/."
        ) from error


def keras_download(fname, origin, file_hash, *, inner):
    """keras.utils.get_file(extract=True) into ~/.keras/datasets; returns the extracted `inner` folder."""
    extracted = Path(keras.utils.get_file(fname=fname, origin=origin, file_hash=file_hash, extract=True))
    if (extracted / inner).is_dir():
        return extracted / inner
    if extracted.name == inner and extracted.is_dir():
        return extracted
    found = sorted(p for p in extracted.rglob(inner) if p.is_dir())
    if not found:
        raise FileNotFoundError(f"Downloaded {origin} to {extracted} but found no {inner}/ folder inside.")
    return found[0]
