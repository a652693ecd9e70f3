#!/usr/bin/env python
"""Wrapper for ``lesrcnn-prepare-testsets``; see ``lesrcnn_plugin/cli/prepare_testsets.py``."""
import sys

from lesrcnn_plugin.cli.prepare_testsets import main

if __name__ == '__main__':
    sys.exit(main())
