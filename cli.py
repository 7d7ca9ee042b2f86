#!/usr/bin/env python
"""kconvnext command line: `python cli.py --help`."""
import sys

from kconvnext.commands import main

if __name__ == "__main__":
    sys.exit(main())
