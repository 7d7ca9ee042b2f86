"""Command-line interface: `python cli.py COMMAND ...` (or the `kconvnext` console script).

Each command is a module here exposing `register(subparsers)`, which adds its parser and sets
`func` to a callable taking the parsed args and returning an exit code. Adding a command is
adding its module name to COMMANDS.
"""
import argparse
import importlib
import os
import sys

COMMANDS = ["models", "export", "train", "eval", "predict", "compare", "roadmap"]

EPILOG = """examples:
  python cli.py models
  python cli.py models --family convnext
"""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="cli.py",
        description="kconvnext: ConvNeXt, ResNet and ResNeXt for Keras 3.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMANDS:
        importlib.import_module(f"kconvnext.commands.{name}").register(subparsers)
    return parser


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
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
