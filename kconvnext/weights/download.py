"""Fetching a preset's checkpoint into the local cache, verified, or failing with a way forward.

Files go to the cache's weights/ folder (`$KCONVNEXT_CACHE_DIR/weights`, else `~/.keras/kconvnext/weights`), through
`keras.utils.get_file` (so any URL scheme it reads works, `file://` included). A download lands in
`<name>.part` and is renamed only after its hash checks out, so a partial or corrupt file is never
taken for a good one: it is deleted and reported.

Integrity: the preset's full SHA-256 when published; else the hash prefix in the file name (the
torch.hub rule); else (the official ConvNeXt files publish neither) the SHA-256 of the first
download is recorded next to it and later uses must match it.
"""
import hashlib
import os
import sys
import warnings
from pathlib import Path

from kconvnext.files import cache_dir


class WeightsUnavailableError(RuntimeError):
    """A preset's file could not be fetched or did not verify; the message says what to do instead."""


def weights_dir():
    """Downloaded checkpoints and their conversions: the cache's weights/ (files.cache_dir)."""
    if os.environ.get("KCONVNEXT_WEIGHTS_DIR"):
        warnings.warn("KCONVNEXT_WEIGHTS_DIR is no longer read: set KCONVNEXT_CACHE_DIR (weights go to its "
                      f"weights/ folder, now {cache_dir('weights')}).", stacklevel=2)
    return cache_dir("weights")


def sha256_of(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _expected(preset):
    """(kind, value): ("sha256", full) | ("prefix", hex) | (None, None)."""
    if preset.sha256:
        return "sha256", preset.sha256.lower()
    if preset.hash_prefix:
        return "prefix", preset.hash_prefix.lower()
    return None, None


def _verify(path, preset):
    """None when the file checks out, else a sentence saying what did not match."""
    kind, want = _expected(preset)
    got = sha256_of(path)
    if kind == "sha256" and got != want:
        return f"its SHA-256 is {got}, the preset's is {want}"
    if kind == "prefix" and not got.startswith(want):
        return f"its SHA-256 {got} does not start with {want} (the hash in the file name)"
    recorded = _record_file(path)
    if kind is None and recorded.is_file() and recorded.read_text().strip() != got:
        return f"its SHA-256 {got} differs from the {recorded.read_text().strip()} recorded at first download"
    return None


def _record_file(path):
    return Path(f"{path}.sha256")


def _help(preset, target):
    return (f"Download {preset.url} yourself and put it at {target} (it is picked up from there), or pass "
            f"the file directly: weights='/path/to/{preset.filename}'.")


def fetch(preset, *, verbose=True):
    """Local path of the preset's checkpoint, downloaded and verified if not cached yet."""
    import keras

    root = weights_dir()
    target = root / preset.filename
    if target.is_file():
        problem = _verify(target, preset)
        if problem is None:
            if _expected(preset)[0] is None and not _record_file(target).is_file():
                _record_file(target).write_text(sha256_of(target) + "\n")  # a file put there by hand
            return target
        target.unlink()
        _record_file(target).unlink(missing_ok=True)
        if verbose:
            print(f"kconvnext: deleted the cached {target}: {problem}; downloading it again.", file=sys.stderr)
    root.mkdir(parents=True, exist_ok=True)
    partial = root / f"{preset.filename}.part"
    try:
        keras.utils.get_file(fname=partial.name, origin=preset.url, cache_dir=str(root), cache_subdir=".",
                             force_download=True)
    except Exception as err:  # noqa: BLE001  (get_file raises bare Exception for URL failures)
        partial.unlink(missing_ok=True)
        raise WeightsUnavailableError(
            f"Could not download the {preset.model} weights={preset.tag!r} from {preset.url} ({err}). "
            + _help(preset, target)) from None
    except KeyboardInterrupt:
        partial.unlink(missing_ok=True)
        raise
    problem = _verify(partial, preset)
    if problem is not None:
        partial.unlink(missing_ok=True)
        raise WeightsUnavailableError(
            f"The file downloaded from {preset.url} is corrupt or not the published one: {problem}. "
            f"It was deleted. Try again, or check the URL (a mirror registered with register_preset?). "
            + _help(preset, target))
    if _expected(preset)[0] is None:
        _record_file(target).write_text(sha256_of(partial) + "\n")
    os.replace(partial, target)
    return target
