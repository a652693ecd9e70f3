#!/usr/bin/env python
"""Wrapper for ``lesrcnn-measure-runtime``; see ``lesrcnn_plugin/cli/measure_runtime.py``."""
import sys

from lesrcnn_plugin.cli.measure_runtime import main

if __name__ == '__main__':
    sys.exit(main())
