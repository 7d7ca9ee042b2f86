"""A quiet start: TensorFlow's start-up log lines hidden unless `--verbose`, and the library loaded
only once a command runs (not for `--help` or an argument error).

TensorFlow's C++ side writes straight to the process's stderr (file descriptor 2) while it is
imported: "All log messages before absl::InitializeLog() ...", CUDA stubs on a machine without a
GPU, CPU-feature notes. No log level reaches the lines written before absl is initialised, so
TensorFlow is imported with fd 2 captured, and what it wrote goes back to stderr minus those
lines. TF_CPP_MIN_LOG_LEVEL=3 (unless the user set it) hides the C++ info/warning/error lines of
the run itself; absl's Python logger is set to errors only.

The same imports make ~400,000 Python objects that live until the process ends; they are made with
the garbage collector off and frozen after (imports_outside_gc), so its full passes skip them.
"""
import contextlib
import gc
import importlib.util
import os
import re
import sys
import tempfile

# The start-up lines of a TensorFlow import: absl's pre-init banner, its C++ log lines
# (I0000/W0000/E0000 00:00:...: CUDA stubs, cuInit, CPU feature guard, oneDNN), and the
# continuation line of the CPU-feature note.
STARTUP_NOISE = re.compile(
    r"absl::InitializeLog|^[IWE]\d{4} [\d:.]+\s+\d+ \S+\.cc:\d+\]|oneDNN custom operations|"
    r"rebuild TensorFlow with the appropriate compiler flags|TF_ENABLE_ONEDNN_OPTS")


def quiet_start(verbose=False):
    """Before any TensorFlow import: without `verbose`, the log levels above and a filtered import."""
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules and _tensorflow_backend() and importlib.util.find_spec("tensorflow"):
        _import_filtered("tensorflow")
    if importlib.util.find_spec("absl"):
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)


def _tensorflow_backend():
    """Keras' backend as far as it is known without importing keras (KERAS_BACKEND, else keras.json)."""
    import json

    backend = os.environ.get("KERAS_BACKEND")
    if backend is None:
        from kconvnext.files import keras_home

        try:
            with open(keras_home() / "keras.json") as f:
                backend = json.load(f).get("backend")
        except (OSError, ValueError, AttributeError):
            backend = None
    return backend in (None, "tensorflow")


def _import_filtered(module):
    """Import `module` with stderr (fd 2) captured; write back what it wrote except STARTUP_NOISE."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            __import__(module)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines(keepends=True)
                    if not STARTUP_NOISE.search(line)]
            sys.stderr.write("".join(kept))


@contextlib.contextmanager
def imports_outside_gc():
    """The start-up imports with the garbage collector off, and what they made frozen after (gc.freeze),
    where this process imports Keras now: the collector's full passes over TensorFlow's and Keras'
    objects cost ~0.5 s of CPU during the import and ~0.4 s more during a short training run. A process
    that imported Keras before (a test, a notebook) is left as it is."""
    fresh = "keras" not in sys.modules
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if fresh:
            gc.freeze()
        if was_enabled:
            gc.enable()


def load_library():
    """Run kconvnext/__init__.py if cli.py deferred it to keep `--help` free of keras (see cli.py);
    after this `import kconvnext` is the full package (custom layers registered, so .keras files load)."""
    package = sys.modules["kconvnext"]
    if not hasattr(package, "__version__"):
        package.__spec__.loader.exec_module(package)
