import gc
import os
from pathlib import Path

import pytest

import suite_schedule

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def one_compute_thread_per_process(environ):
    """One compute thread per test process when several share the cores (`-n auto`: three on two,
    pytest.ini): TensorFlow's intra-op pool and OpenBLAS' each start a thread per core in every
    process, six threads contending for two cores, spinning while they wait for work (what it saved,
    measured: README, Contributing). Set in the environment before TensorFlow is imported, so the
    processes the tests start follow it; one process alone keeps every core; a value already set is kept."""
    if environ.get("PYTEST_XDIST_WORKER") and int(environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
        for name in ("TF_NUM_INTRAOP_THREADS", "OPENBLAS_NUM_THREADS"):
            environ.setdefault(name, "1")


one_compute_thread_per_process(os.environ)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("KCONVNEXT_SHARED_DATA", ROOT.parent / "shared" / "data"))


def jax_env(fast_compile=True):
    """The environment of a child process on Keras' JAX backend (the backend is fixed at import).
    fast_compile: XLA's CPU compiler at its lowest optimisation level. The tests' models are tiny, so
    compiling (every eager op's kernel, every jitted step) is most of their time: the JAX model test
    took 91 s, 59 s with it. Numerical comparisons with a reference keep the default compiler."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    if fast_compile:
        env["XLA_FLAGS"] = " ".join(filter(None, [os.environ.get("XLA_FLAGS"), "--xla_backend_optimization_level=0",
                                                  "--xla_llvm_disable_expensive_passes=true"]))
    return env


def pytest_addoption(parser):
    parser.addoption("--store-durations", action="store_true",
                     help="write each module's / test class's time in this run to tests/durations.json "
                          "(the order the processes are handed work in: tests/suite_schedule.py)")


@pytest.hookimpl(wrapper=True)
def pytest_xdist_auto_num_workers(config):
    """`-n auto`: xdist's count of the cores plus one. Much of a process's time is waiting (on a child
    process it started, a file lock, a disk write), which left a core idle: on the 2-core machine three
    processes ran the suite in 579 s, two in 625-674 s. PYTEST_XDIST_AUTO_NUM_WORKERS (xdist's own
    setting) is taken as it is."""
    workers = yield
    return workers if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") else workers + 1


@pytest.hookimpl(wrapper=True)
def pytest_collection(session):
    """The collector off while the test modules import TensorFlow, Keras and JAX, and what they made
    (~400,000 objects) frozen once collection ends; see pytest_runtest_protocol. Around collection
    itself: pytest-xdist's controller process skips collection, and keeps its collector."""
    gc.disable()
    try:
        return (yield)
    finally:
        gc.freeze()
        gc.enable()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """After each test, one pass of the garbage collector over what that test made, then what is still
    alive frozen out of the full passes (gc.freeze). What outlives a test mostly lives to the end:
    the imports, session fixtures, and what TensorFlow keeps of each traced train step (~25,000
    objects a train() call in the process). The full passes, which model building and tracing start
    dozens of times a test, went over all of it: 87 s of CPU in the three processes of a whole run,
    52 s with the imports frozen, 21 s with this (CPU 850 -> 796 s). A module-scoped fixture's objects,
    freed later in a cycle, stay until the process ends (largest process: 2.65 GB)."""
    result = yield
    gc.collect()
    gc.freeze()
    return result


def pytest_collection_modifyitems(items):
    suite_schedule.longest_first(items, suite_schedule.stored_durations())


_SCOPE_SECONDS = {}


def pytest_runtest_logreport(report):
    suite_schedule.add_report(_SCOPE_SECONDS, report)


def pytest_sessionfinish(session):
    is_worker = hasattr(session.config, "workerinput")  # the controller gets every worker's reports
    if session.config.getoption("store_durations") and not is_worker:
        suite_schedule.store_durations(_SCOPE_SECONDS)


@pytest.fixture(scope="session")
def shared_data():
    """The real data sets beside the checkout (../shared/data); tests never download."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"Real test data not found at {SHARED_DATA}; set KCONVNEXT_SHARED_DATA.")
    return SHARED_DATA


@pytest.fixture(scope="session")
def catsdogs_dir(shared_data):
    return shared_data / "cats_and_dogs_filtered"


@pytest.fixture(scope="session")
def cifar10_dir(shared_data):
    return shared_data / "cifar-10-batches-py"


# tests/training_helpers.py (in-memory DataBundle stand-ins) is imported by the training tests.
import sys  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """One tiny trained run (training_helpers.tiny_run with its defaults, its summary lines kept) for
    the tests that only read a run folder or compare against an uninterrupted run: trained once."""
    import types

    from training_helpers import tiny_run

    lines = []
    result = tiny_run(tmp_path_factory.mktemp("trained") / "run", verbose=1, print_fn=lines.append)
    return types.SimpleNamespace(result=result, lines=lines)
