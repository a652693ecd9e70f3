"""Export a LESRCNN-family checkpoint to ONNX and check it against PyTorch with onnxruntime.

Examples::

    lesrcnn-export-onnx lesrcnn_x2.pth lesrcnn_x2.onnx
    lesrcnn-export-onnx net_g_600000.pth lesrcnn_x4_fp16.onnx --fp16
    lesrcnn-export-onnx lesrcnn_s.pth lesrcnn_s_x3.onnx --scale 3

The graph has one input ``lr`` (N, 3, H, W), RGB in [0, 1], dynamic N, H, W, and one output ``sr``
(N, 3, s*H, s*W), not clamped; opset 17 by default. The exact fast path is exported unless
--reference is given. The file is kept only if onnxruntime's output matches the PyTorch reference
network within the tolerance (1e-4 for float32, 1e-2 for --fp16, against float32 PyTorch); the
largest difference is printed, and a failed check (a NaN or Inf on either side fails it) exits with
status 1 and writes nothing. An existing output is replaced only with --overwrite, the input never.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..checkpoint import load_checkpoint
from ..errors import LESRCNNError, NonFiniteOutputError, ParityError
from ..export import DEFAULT_OPSET, FP16_TOLERANCE, FP32_TOLERANCE, export_onnx, onnx_parity
from ..fileio import atomic_path
from ._common import (OutputGuard, add_overwrite_argument, add_weights_arguments, float_at_least,
                      output_arguments_check, positive_int, require, run)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_weights_arguments(parser)
    parser.add_argument('output', help='.onnx file to write')
    parser.add_argument('--opset', type=positive_int, default=DEFAULT_OPSET,
                        help=f'ONNX opset (default {DEFAULT_OPSET})')
    parser.add_argument('--fp16', action='store_true', help='float16 weights, input and output')
    parser.add_argument('--reference', action='store_true', help='export the reference network, not the fast path')
    parser.add_argument('--atol', type=float_at_least(0),
                        help=f'parity tolerance (default {FP32_TOLERANCE:g}, or {FP16_TOLERANCE:g} with --fp16)')
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)
    output_arguments_check(parser, args.output, args.checkpoint)
    return args


def export(args: argparse.Namespace) -> None:
    require('onnx', needed_by='lesrcnn-export-onnx')
    tolerance = args.atol if args.atol is not None else (FP16_TOLERANCE if args.fp16 else FP32_TOLERANCE)
    output = Path(args.output)
    loaded = load_checkpoint(args.checkpoint, args.arch, args.scale, args.variant)  # resolves a weights name once
    OutputGuard([loaded.path], args.overwrite).check(output)
    model = loaded.model
    # The export becomes `output` only if the parity check passes; otherwise it is deleted.
    with atomic_path(output) as candidate:
        try:
            export_onnx(model, candidate, fast=not args.reference, fp16=args.fp16, opset=args.opset)
            difference = onnx_parity(candidate, model)
        except NonFiniteOutputError as exc:
            raise ParityError(f'parity check failed; {output} not written: {exc}') from None
        except (RuntimeError, ValueError) as exc:  # the exporter's and onnxruntime's own errors
            raise LESRCNNError(f'export of {args.checkpoint} failed: {exc}') from None
        path = 'reference network' if args.reference else 'fast path'
        precision = 'fp16' if args.fp16 else 'fp32'
        verdict = 'ok' if difference <= tolerance else 'FAILED'
        print(f'{type(model).__name__} x{model.default_scale} ({path}, {precision}, opset {args.opset}): '
              f'max |onnxruntime - PyTorch| = {difference:.3g} (tolerance {tolerance:g}) {verdict}')
        if difference > tolerance:
            raise ParityError(f'parity check failed; {output} not written')
    print(f'wrote {output}')


def main(argv=None) -> int:
    args = parse_args(argv)
    return run(lambda: export(args))


if __name__ == '__main__':
    sys.exit(main())
