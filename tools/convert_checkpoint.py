#!/usr/bin/env python
"""Wrapper for ``lesrcnn-convert``; see ``lesrcnn_plugin/cli/convert_checkpoint.py``."""
import sys

from lesrcnn_plugin.cli.convert_checkpoint import main

if __name__ == '__main__':
    sys.exit(main())
