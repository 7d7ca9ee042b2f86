"""The order pytest-xdist hands out this suite's work in (tests/conftest.py hooks call these).

pytest.ini runs `--dist loadscope --no-loadscope-reorder`: each module (or test class) goes whole to
one process, in collection order. The run lasts as long as the busier process, so the scopes are
sorted longest first (a big module handed out late, or a README chapter, ran alone at the end of a
run for a minute), from tests/durations.json, the measured seconds of each scope
(`python -m pytest --store-durations` rewrites it). A scope not in it yet is estimated from its marks.
"""
import json
from pathlib import Path

DURATIONS_FILE = Path(__file__).with_name("durations.json")
# Seconds a test of each kind takes, for a scope tests/durations.json does not know yet.
ESTIMATE = {"long": 60.0, "slow": 8.0, "fast": 0.2}


def scope(nodeid):
    """loadscope's unit of work: the node id without its last part (the module, or the test class)."""
    return nodeid.rsplit("::", 1)[0]


def stored_durations(path=DURATIONS_FILE):
    return json.loads(path.read_text()) if path.is_file() else {}


def estimate(item):
    kind = "long" if item.get_closest_marker("long") else "slow" if item.get_closest_marker("slow") else "fast"
    return ESTIMATE[kind]


def longest_first(items, durations):
    """Sorts items (in place) by their scope's time, longest first; a scope's tests keep their order."""
    estimated = {}
    for item in items:
        estimated[scope(item.nodeid)] = estimated.get(scope(item.nodeid), 0.0) + estimate(item)
    seconds = {name: durations.get(name, guess) for name, guess in estimated.items()}
    items.sort(key=lambda item: -seconds[scope(item.nodeid)])


def add_report(totals, report):
    """Adds a test phase's (setup, call, teardown) time to its scope's total."""
    totals[scope(report.nodeid)] = totals.get(scope(report.nodeid), 0.0) + report.duration


def store_durations(totals, path=DURATIONS_FILE):
    """Merges this run's scope times into the file (scopes not run keep theirs, scopes whose module
    is gone are dropped), a scope a line."""
    merged = {**stored_durations(path), **{name: round(seconds, 1) for name, seconds in totals.items()}}
    root = path.parent.parent
    merged = {name: seconds for name, seconds in merged.items() if (root / name.split("::")[0]).is_file()}
    path.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
