#!/usr/bin/env python
"""Wrapper for ``lesrcnn-prepare-div2k``; see ``lesrcnn_plugin/cli/prepare_div2k.py``."""
import sys

from lesrcnn_plugin.cli.prepare_div2k import main

if __name__ == '__main__':
    sys.exit(main())
