#!/usr/bin/env python
"""Wrapper for ``lesrcnn-measure-training``; see ``lesrcnn_plugin/cli/measure_training.py``."""
import sys

from lesrcnn_plugin.cli.measure_training import main

if __name__ == '__main__':
    sys.exit(main())
