"""How pytest-xdist hands this suite's work to its processes (pytest.ini: --dist loadscope).

The suite's wall time is the busier process's: a long scope handed out last runs alone at the end.
"""
from types import SimpleNamespace

import pytest

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


def test_long_scopes_are_handed_out_first(request, monkeypatch):
    """xdist >= 3.5 sorts loadscope's scopes by their number of tests unless told not to, which put
    the README chapters (one test each, a minute or two) last: the Transfer and Training chapters ran
    alone for the last 67 s of a 721 s run. The suite's order (tests/conftest.py) must hold."""
    items = request.session.items
    long = [item.nodeid for item in items if item.get_closest_marker("long")]
    if not long:
        pytest.skip("no test marked long in this selection")
    first = _handed_out_first(request.config, [item.nodeid for item in items], monkeypatch)
    assert all(nodeid in long for nodeid in first[:len(long)]), first


def test_the_fast_scopes_come_last():
    """After the long scopes, the ones holding a slow test; the scopes of fast tests end the run,
    where small pieces of work keep both processes busy to the end."""
    import conftest

    def item(nodeid, *marks):
        return SimpleNamespace(nodeid=nodeid, get_closest_marker=lambda name: name if name in marks else None)

    items = [item("tests/test_a.py::test_fast"), item("tests/test_b.py::test_slow", "slow"),
             item("tests/test_b.py::test_fast"), item("tests/test_c.py::Chapter::test_run", "slow", "long"),
             item("tests/test_d.py::test_fast")]
    conftest.pytest_collection_modifyitems(items)
    assert [i.nodeid for i in items] == [
        "tests/test_c.py::Chapter::test_run", "tests/test_b.py::test_slow", "tests/test_b.py::test_fast",
        "tests/test_a.py::test_fast", "tests/test_d.py::test_fast"]
