#!/usr/bin/env python
"""Wrapper for ``lesrcnn-mmagic-train``; see ``lesrcnn_plugin/mmagic/train.py``."""
import sys

from lesrcnn_plugin.mmagic.train import main

if __name__ == '__main__':
    sys.exit(main())
