#!/usr/bin/env python
"""kconvnext command line: `python cli.py --help` (the same as the `kconvnext` console script)."""
import sys

from kconvnext_cli import main

if __name__ == "__main__":
    sys.exit(main())
