"""What every command's parser shares: help text, a description and an examples epilog."""
import argparse


def add_command(subparsers, name, *, help, description, examples):
    """Add `name` with its examples shown verbatim at the end of `--help`."""
    return subparsers.add_parser(
        name, help=help, description=description, epilog=examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
