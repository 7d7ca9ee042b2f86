"""What every command's parser shares: help text, a description, an examples epilog, `--verbose`,
and the argument types that refuse a bad number before any work starts."""
import argparse


def add_command(subparsers, name, *, help, description, examples):
    """Add `name` with its examples shown verbatim at the end of `--help`."""
    p = subparsers.add_parser(
        name, help=help, description=description, epilog=examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Also accepted after the command (`cli.py train ... --verbose`); SUPPRESS keeps a top-level
    # `cli.py --verbose train ...` from being reset by this parser's default.
    p.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="keep TensorFlow's and absl's start-up and info log lines (hidden by default)")
    return p


def positive_int(text):
    """argparse type: a whole number >= 1 (argparse names the argument in its error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def positive_float(text):
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value
