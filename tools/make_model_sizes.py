"""Writes kconvnext/commands/model_sizes.json: params and GFLOPs of every registered variant at its
default size with 1000 classes, from fresh builds (what `cli.py models` lists without building).

    python tools/make_model_sizes.py    # after adding or changing a variant; tests/test_models.py checks it
"""
import json

import kconvnext  # noqa: F401  (registers every family, the roadmap steps included)
from kconvnext.commands.models import SIZES_FILE, measure
from kconvnext.models import list_models

rows = [measure(name) for name in list_models()]
SIZES_FILE.write_text("[\n" + ",\n".join(json.dumps(row) for row in rows) + "\n]\n")  # a row a line
print(f"wrote {SIZES_FILE} ({len(rows)} models)")
