"""Entry point of `python cli.py` and the `kconvnext` console script, outside the package.

kconvnext/__init__.py imports keras, hence TensorFlow (seconds), so that `import kconvnext` makes
every custom layer loadable. The command line needs none of that to build its parser: the package
is put in place here without running its __init__, which kconvnext.commands.main runs once a
command is about to run (never for `--help` or an argument error). A module of its own, because a
console script inside the package would import the package (and TensorFlow) first.
"""
import importlib.util
import sys


def package_without_init():
    """Put the kconvnext package in place without running its __init__ (nothing if it is imported
    already, or not installed: the next import says so); its light modules then import alone."""
    spec = None if "kconvnext" in sys.modules else importlib.util.find_spec("kconvnext")
    if spec is not None:
        sys.modules["kconvnext"] = importlib.util.module_from_spec(spec)  # (__init__ not run yet)


def main(argv=None):
    package_without_init()
    from kconvnext.commands import main as commands_main

    return commands_main(argv)
