"""Crash-safe file writes shared by training and export.

A SIGKILL at any moment leaves either the old file (checkpoint, run.json, export) or the new one,
never a half-written mix: everything is written beside its target and renamed over it.
Whatever lands has the modes the umask gives a plain open()/mkdir() (0644 / 0755 under umask 022,
as tf.saved_model.save writes), not mkstemp/mkdtemp's private 0600 / 0700: TF Serving running as
another uid (a container, a pod) must be able to read an export.
"""
import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path


def keras_home():
    """Keras' own folder (keras.json, its downloads): $KERAS_HOME, else ~/.keras."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def cache_dir(*parts):
    """Where kconvnext keeps what it fetches or computes once (weights, converted weights, data
    scans): $KCONVNEXT_CACHE_DIR, else $KERAS_HOME/kconvnext (~/.keras/kconvnext), then `parts`.
    One variable for all of it, so one setting moves (or isolates, in tests) every cache."""
    return Path(os.environ.get("KCONVNEXT_CACHE_DIR") or keras_home() / "kconvnext", *parts)


def current_umask():
    """The process umask: Linux shows it in /proc; elsewhere set it and put it back (os has no getter)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def chmod_from_umask(path):
    """Give `path` the mode open() / mkdir() would have given it: 0666 / 0777 less the umask."""
    path = Path(path)
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~current_umask())


def _fsync_replace(tmp, path):
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_model_atomic(model, path):
    """model.save to a temporary .keras beside `path`, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    _fsync_replace(tmp, path)


def link_file_atomic(source, path):
    """`path` becomes the file `source` is (a hard link beside it, renamed over `path`): no bytes
    copied or synced again (a ConvNeXt-T checkpoint with its optimizer state is 319 MB). Writers here
    replace files by renaming, never in place, so a later `source` is a new file and `path` keeps
    this one. Where the file system has no hard links, an atomic copy."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)  # (left by a killed run)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
        _fsync_replace(tmp, path)
        return
    os.replace(tmp, path)


def write_text_atomic(path, text):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    _fsync_replace(tmp, path)


def write_json_atomic(path, data):
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def read_json(path, default=None):
    """The JSON in `path`, or `default` when there is no such file; bad JSON names the file."""
    path = Path(path)
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); fix or remove it.") from None


@contextlib.contextmanager
def staged_dir(target):
    """Yield a temp folder next to `target`; on success it replaces `target`, on failure it is removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        chmod_from_umask(tmp)
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
        chmod_from_umask(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def dir_size(path):
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
