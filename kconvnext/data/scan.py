"""Find, once and up front, the files that would crash an epoch, so training can skip them.

Cost: magic bytes and a PIL decode per file. JPEGs are decoded in PIL's draft mode (DCT-scaled to
1/8, which still walks all entropy-coded data, so truncation and corrupt data are caught) in a thread
pool (PIL releases the GIL while decoding); results are cached by (path, size, mtime), so the 25k
Kaggle files cost one pass, then only a stat each. The few files TensorFlow decodes wrongly (palette
or 16-bit BMPs) are converted once to PNG with PIL instead of going through py_function in tf.data.
"""
import hashlib
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from kconvnext.files import cache_dir

MAGIC = [(b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
         (b"BM", "BMP")]
_TF_BMP_MODES = {"RGB", "RGBA", "L"}
_CACHE_VERSION = 1


def sniff(head):
    return next((fmt for magic, fmt in MAGIC if head.startswith(magic)), None)


def check_file(path):
    """("ok" | "convert" | "bad", reason or None) for one image file."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as error:
        return "bad", f"cannot be read: {type(error).__name__}: {error}"
    try:
        if not head:
            return "bad", "empty file"
        fmt = sniff(head)
        if fmt is None:
            return "bad", f"not a JPEG/PNG/GIF/BMP image (starts with {head[:8]!r})"
        with Image.open(path) as image:
            if image.format == "JPEG":
                image.draft(image.mode if image.mode in ("RGB", "L") else None,
                            (max(1, image.width // 8), max(1, image.height // 8)))
            mode = image.mode
            image.load()
        if fmt == "BMP" and mode not in _TF_BMP_MODES:
            return "convert", f"{mode} BMP (TensorFlow decodes it wrongly)"
        return "ok", None
    except Exception as error:  # noqa: BLE001  (any decoder failure means: skip this file)
        return "bad", f"does not decode: {type(error).__name__}: {error}"


def _stamp(path):
    try:
        st = os.stat(path)
    except OSError:  # e.g. a dangling symlink: check_file reports it
        return [-1, -1]
    return [st.st_size, st.st_mtime_ns]


def _load_cache(file):
    try:
        data = json.loads(file.read_text())
        return data["entries"] if data.get("version") == _CACHE_VERSION else {}
    except (OSError, ValueError, KeyError):
        return {}


def _save_cache(file, entries):
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"version": _CACHE_VERSION, "entries": entries}))
        tmp.replace(file)
    except OSError as error:  # a read-only home must not stop training; the scan just runs again
        warnings.warn(f"Could not write the image scan cache {file}: {error}", stacklevel=3)


def convert_to_png(path, out_dir):
    """A PIL-converted RGB PNG copy of `path` (once; reused while the source is unchanged)."""
    key = hashlib.sha1(f"{os.path.abspath(path)}|{_stamp(path)}".encode()).hexdigest()[:16]
    target = Path(out_dir) / f"{key}.png"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as image:
            image.convert("RGB").save(target)
    return str(target)


def scan_files(paths, *, workers=None, use_cache=True):
    """Check every file: returns ([usable path or None, aligned with paths], [(path, reason)] skipped)."""
    paths = [os.path.abspath(p) for p in paths]
    root_key = hashlib.sha1(os.path.commonpath(paths or ["/"]).encode()).hexdigest()[:16]
    cache_file = cache_dir("scan", f"{root_key}.json")
    cache = _load_cache(cache_file) if use_cache else {}
    stamps = {p: _stamp(p) for p in paths}
    todo = [p for p in paths if cache.get(p, [None])[:2] != stamps[p]]
    if todo:
        with ThreadPoolExecutor(workers or min(8, (os.cpu_count() or 2) * 2)) as pool:
            for p, (status, reason) in zip(todo, pool.map(check_file, todo)):
                cache[p] = [*stamps[p], status, reason]
        if use_cache:
            _save_cache(cache_file, cache)
    usable, skipped = [], []
    for p in paths:
        status, reason = cache[p][2:]
        if status == "bad":
            skipped.append((p, reason))
        usable.append(None if status == "bad" else convert_to_png(p, cache_dir("converted"))
                      if status == "convert" else p)
    return usable, skipped


def report_skipped(skipped, output_dir=None):
    """One warning naming every skipped file; the list goes to output_dir/skipped_files.txt too."""
    if not skipped:
        return None
    target = None
    if output_dir is not None:
        target = Path(output_dir) / "skipped_files.txt"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(f"{p}\t{reason}\n" for p, reason in skipped))
    listing = "\n".join(f"  {p}: {reason}" for p, reason in skipped[:50])
    more = f"\n  ... and {len(skipped) - 50} more" if len(skipped) > 50 else ""
    saved = f" (full list in {target})" if target else ""
    warnings.warn(f"Skipping {len(skipped)} image file(s) that cannot be used{saved}:\n{listing}{more}", stacklevel=3)
    return target
