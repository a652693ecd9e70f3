#!/usr/bin/env python
"""Wrapper for ``lesrcnn-export-onnx``; see ``lesrcnn_plugin/cli/export_onnx.py``."""
import sys

from lesrcnn_plugin.cli.export_onnx import main

if __name__ == '__main__':
    sys.exit(main())
