"""How pytest-xdist hands this suite's work to its processes (pytest.ini: --dist loadscope), and
what each process spends besides the tests.

The suite's wall time is the busier process's: a long scope handed out last runs alone at the end.
"""
import gc
import os
import subprocess
import sys
import weakref
from types import SimpleNamespace

import pytest
import suite_schedule

from conftest import ROOT

loadscope = pytest.importorskip("xdist.scheduler.loadscope")


class _Worker:
    """The part of xdist's WorkerController that its scheduler talks to."""

    def __init__(self, name):
        self.gateway = SimpleNamespace(id=name)
        self.shutting_down = False
        self.sent = []

    def send_runtest_some(self, indices):
        self.sent.extend(indices)

    def shutdown(self):
        pass


def _handed_out_first(config, nodeids, monkeypatch, processes=2):
    """The test each process is given first, by xdist's own loadscope scheduler on this configuration."""
    # (Its process count comes from -n, which a worker process's configuration does not hold.)
    monkeypatch.setattr(loadscope, "parse_tx_spec_config", lambda config: ["popen"] * processes)
    scheduler = loadscope.LoadScopeScheduling(config)
    workers = [_Worker(f"gw{i}") for i in range(processes)]
    for worker in workers:
        scheduler.add_node(worker)
        scheduler.add_node_collection(worker, nodeids)
    scheduler.schedule()
    return [nodeids[worker.sent[0]] for worker in workers]


def test_xdist_hands_out_the_scopes_in_the_suites_order(request, monkeypatch):
    """xdist >= 3.5 sorts loadscope's scopes by their number of tests unless told not to, which put
    the README chapters (one test each, a minute or two) last: the Transfer and Training chapters ran
    alone for the last 67 s of a 721 s run. On this suite's configuration, xdist's own scheduler hands
    out the longest scopes first."""
    items = [_item(f"tests/test_many.py::test_{i}") for i in range(10)]
    items += [_item(f"tests/test_mid.py::test_{i}", "slow") for i in range(3)]
    items += [_item("tests/test_readme.py::Chapter::test_blocks_run", "slow", "long")]
    suite_schedule.longest_first(items, {"tests/test_many.py": 5.0, "tests/test_mid.py": 50.0,
                                         "tests/test_readme.py::Chapter": 100.0})
    first = _handed_out_first(request.config, [item.nodeid for item in items], monkeypatch)
    assert first == ["tests/test_readme.py::Chapter::test_blocks_run", "tests/test_mid.py::test_0"]


def _item(nodeid, *marks):
    return SimpleNamespace(nodeid=nodeid, get_closest_marker=lambda name: name if name in marks else None)


def test_scopes_go_longest_first_by_their_measured_time_else_by_their_marks():
    """A module's tests stay together and in order; a scope tests/durations.json does not know yet
    (a new module) is estimated from its marks: a long test a minute, a slow one 8 s."""
    items = [_item("tests/test_a.py::test_fast"), _item("tests/test_b.py::test_slow", "slow"),
             _item("tests/test_b.py::test_fast"), _item("tests/test_c.py::Chapter::test_run", "slow", "long"),
             _item("tests/test_d.py::test_fast"), _item("tests/test_new.py::test_slow", "slow")]
    suite_schedule.longest_first(items, {"tests/test_a.py": 2.0, "tests/test_b.py": 90.0,
                                         "tests/test_c.py::Chapter": 45.0, "tests/test_d.py": 0.5})
    assert [i.nodeid for i in items] == [
        "tests/test_b.py::test_slow", "tests/test_b.py::test_fast", "tests/test_c.py::Chapter::test_run",
        "tests/test_new.py::test_slow", "tests/test_a.py::test_fast", "tests/test_d.py::test_fast"]


def test_stored_durations_sum_a_scopes_phases_keep_the_others_and_drop_gone_modules(tmp_path):
    (tmp_path / "tests").mkdir()
    for name in ("test_a.py", "test_b.py"):
        (tmp_path / "tests" / name).touch()
    path = tmp_path / "tests" / "durations.json"
    path.write_text('{"tests/test_a.py::Chapter": 30.0, "tests/test_b.py": 5.0, "tests/test_gone.py": 9.0}')
    totals = {}
    for nodeid, seconds in [("tests/test_b.py::test_x", 1.25), ("tests/test_b.py::test_x", 0.5),
                            ("tests/test_b.py::test_y", 2.0)]:
        suite_schedule.add_report(totals, SimpleNamespace(nodeid=nodeid, duration=seconds))
    suite_schedule.store_durations(totals, path)
    assert suite_schedule.stored_durations(path) == {"tests/test_a.py::Chapter": 30.0, "tests/test_b.py": 3.8}


def test_auto_starts_one_process_more_than_the_cores(monkeypatch, pytestconfig):
    """`-n auto` (pytest.ini): one test process more than xdist counts cores (tests/conftest.py)."""
    from xdist.plugin import pytest_xdist_auto_num_workers as xdist_count

    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert xdist_count(pytestconfig) == 2
    assert pytestconfig.hook.pytest_xdist_auto_num_workers(config=pytestconfig) == 3
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "5")  # xdist's own override still decides
    assert pytestconfig.hook.pytest_xdist_auto_num_workers(config=pytestconfig) == 5


def test_processes_sharing_the_cores_run_one_compute_thread_each():
    """Under `-n auto` three test processes share two cores; TensorFlow's and OpenBLAS' pools each
    took a thread per core in every process (tests/conftest.py). One process alone (-n0, -n 1)
    keeps them; a value the user set is kept."""
    from conftest import one_compute_thread_per_process

    alone = {"PYTEST_XDIST_WORKER": "gw0", "PYTEST_XDIST_WORKER_COUNT": "1"}
    for environ in ({}, alone):
        before = dict(environ)
        one_compute_thread_per_process(environ)
        assert environ == before
    shared = {"PYTEST_XDIST_WORKER": "gw1", "PYTEST_XDIST_WORKER_COUNT": "3", "OPENBLAS_NUM_THREADS": "2"}
    one_compute_thread_per_process(shared)
    assert shared["TF_NUM_INTRAOP_THREADS"] == "1" and shared["OPENBLAS_NUM_THREADS"] == "2"
    # This process follows the rule already (conftest applies it when it is imported, before TensorFlow is).
    current = dict(os.environ)
    one_compute_thread_per_process(current)
    assert current == dict(os.environ)


def test_what_collection_imports_is_made_without_the_collector_and_frozen():
    """tests/conftest.py: the test modules' imports (TensorFlow's, Keras', the package's objects) are
    made with the garbage collector off and frozen when collection ends, so the first test of each
    process (a long one: the longest go first) has the full passes skip them too. The hook is
    driven here as pytest calls it: the per-test freeze would hide a missing collection freeze."""
    from conftest import pytest_collection

    collection = pytest_collection(session=None)
    next(collection)  # (the test modules are imported here)
    assert not gc.isenabled()
    imported = [[] for _ in range(100)]  # what the test modules' imports make
    with pytest.raises(StopIteration):
        collection.send(None)
    collected = {id(obj) for obj in gc.get_objects()}  # (frozen objects are not among them)
    assert gc.isenabled() and not any(id(obj) in collected for obj in imported)


def test_what_outlives_a_test_is_frozen_after_it():
    """tests/conftest.py: after each test, what is still alive (a fixture, what TensorFlow keeps of a
    traced step) joins the frozen objects, so later tests' full passes skip it too."""
    from conftest import pytest_runtest_protocol

    after_test = pytest_runtest_protocol(item=None, nextitem=None)
    next(after_test)  # (the test runs here)
    kept, dropped = [[] for _ in range(100)], _Node()
    dropped.cycle = dropped  # garbage when the test ends: collected, not frozen
    dropped_ref = weakref.ref(dropped)
    del dropped
    with pytest.raises(StopIteration) as ended:
        after_test.send(True)
    assert ended.value.value is True  # (the protocol's own result, passed on)
    collected = {id(obj) for obj in gc.get_objects()}
    assert not any(id(obj) in collected for obj in kept) and gc.isenabled()
    assert dropped_ref() is None


class _Node:
    cycle = None


CONTROLLER_GC = """
import gc, os

def pytest_sessionfinish(session):
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # the controller: it hands out tests, collects none
        with open(os.environ["GC_STATE_FILE"], "w") as f:
            f.write(str(gc.isenabled()))
"""


@pytest.mark.slow
def test_the_controller_process_keeps_its_collector(tmp_path):
    """With pytest-xdist the controller never collects (its processes do), so it never reaches the
    hook that re-enables the collector after collection: it ran a whole suite with the collector off,
    keeping every cycle of its reports until it ended."""
    (tmp_path / "controller_gc.py").write_text(CONTROLLER_GC)
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}  # (a run of its own)
    env.update(PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]), GC_STATE_FILE=str(state))
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "1", "-p", "no:cacheprovider", "-p",
                             "controller_gc", "tests/test_schedule.py::test_auto_starts_one_process_more_than_the_cores"],
                            cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert state.read_text() == "True"
