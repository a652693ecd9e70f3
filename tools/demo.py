#!/usr/bin/env python
"""Wrapper for ``lesrcnn-demo``; see ``lesrcnn_plugin/cli/demo.py``."""
import sys

from lesrcnn_plugin.cli.demo import main

if __name__ == '__main__':
    sys.exit(main())
