#!/usr/bin/env python
"""Wrapper for ``lesrcnn-upscale``; see ``lesrcnn_plugin/cli/upscale.py``."""
import sys

from lesrcnn_plugin.cli.upscale import main

if __name__ == '__main__':
    sys.exit(main())
