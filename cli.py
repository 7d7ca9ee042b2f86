#!/usr/bin/env python
"""kconvnext command line: `python cli.py --help`.

kconvnext/__init__.py imports keras, hence TensorFlow (seconds), so that `import kconvnext` makes
every custom layer loadable. The command line needs none of that to build its parser: the package
is put in place here without running its __init__, which kconvnext.commands.main runs once a
command is about to run (never for `--help` or an argument error).
"""
import importlib.util
import sys


def _commands_main():
    spec = None if "kconvnext" in sys.modules else importlib.util.find_spec("kconvnext")
    if spec is not None:  # (None: not installed; the import below says so)
        sys.modules["kconvnext"] = importlib.util.module_from_spec(spec)  # (__init__ not run yet)
    from kconvnext.commands import main

    return main


if __name__ == "__main__":
    sys.exit(_commands_main()())
