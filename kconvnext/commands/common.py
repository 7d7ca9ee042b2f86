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


def _positive(convert, expected, must):
    """An argparse type: `convert(text)`, refused unless finite and > 0 (argparse names the argument)."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"must be {must}, got {text}")
        return value

    parse.__name__ = convert.__name__
    return parse


positive_int = _positive(int, "a whole number >= 1", ">= 1")
positive_float = _positive(float, "a number > 0", "a number > 0")
