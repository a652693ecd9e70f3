#!/usr/bin/env python
"""Wrapper for ``lesrcnn-count-flops``; see ``lesrcnn_plugin/cli/count_flops.py``."""
import sys

from lesrcnn_plugin.cli.count_flops import main

if __name__ == '__main__':
    sys.exit(main())
