#!/usr/bin/env python
"""Wrapper for ``lesrcnn-mmagic-test``; see ``lesrcnn_plugin/mmagic/test.py``."""
import sys

from lesrcnn_plugin.mmagic.test import main

if __name__ == '__main__':
    sys.exit(main())
