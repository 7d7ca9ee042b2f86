"""Command-line interface: `python cli.py COMMAND ...` (or the `kconvnext` console script).

Each command is a module here exposing `register(subparsers)`, which adds its parser and sets
`func` to a callable taking the parsed args and returning an exit code. Adding a command is
adding its name to COMMANDS (and to COMMAND_MODULES when its module lives elsewhere: the
roadmap's, in kconvnext/roadmap/).

Building the parser imports argparse-level things only: `register()` and everything at the top
of a command module must not import keras (which imports TensorFlow, seconds), so `--help` and
a mistyped argument answer at once. The heavy imports live in each command's `run`.
"""
import argparse
import importlib
import sys

from kconvnext.commands.quiet import imports_outside_gc, load_library, quiet_start

COMMANDS = ["models", "export", "train", "eval", "predict", "compare", "roadmap"]
# Commands whose module lives outside this folder (research beside the product, kconvnext/roadmap/).
COMMAND_MODULES = {"roadmap": "kconvnext.roadmap.command"}

EPILOG = """examples:
  python cli.py models
  python cli.py models --family convnext
  python cli.py --verbose predict runs/catsdogs-convnext_atto cat.jpg   # with TensorFlow's start-up log
"""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="cli.py",
        description="kconvnext: ConvNeXt, ResNet and ResNeXt for Keras 3.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--verbose", action="store_true",
                        help="keep TensorFlow's and absl's start-up and info log lines (hidden by default)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMANDS:
        importlib.import_module(COMMAND_MODULES.get(name, f"kconvnext.commands.{name}")).register(subparsers)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    with imports_outside_gc():
        quiet_start(verbose=args.verbose)
        load_library()
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        # Errors we raise for bad input carry the path/argument and the fix; no traceback needed.
        print(f"error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        from kconvnext.weights import WeightsUnavailableError  # (no network, or a file that did not verify)

        if not isinstance(err, WeightsUnavailableError):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
