"""Export a LESRCNN-family checkpoint to ONNX and check it against PyTorch with onnxruntime.

Examples::

    lesrcnn-export-onnx lesrcnn_x2.pth lesrcnn_x2.onnx
    lesrcnn-export-onnx net_g_600000.pth lesrcnn_x4_fp16.onnx --fp16
    lesrcnn-export-onnx lesrcnn_s.pth lesrcnn_s_x3.onnx --scale 3

The graph has one input ``lr`` (N, 3, H, W), RGB in [0, 1], dynamic N, H, W, and one output ``sr``
(N, 3, s*H, s*W), not clamped; opset 17 by default. The exact fast path is exported unless
--reference is given. The file is kept only if onnxruntime's output matches the PyTorch reference
network within the tolerance (1e-4 for float32, 1e-2 for --fp16, against float32 PyTorch); the
largest difference is printed, and a failed check exits with status 1 and writes nothing.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..archs import ARCHS
from ..checkpoint import CheckpointError
from ..export import DEFAULT_OPSET, FP16_TOLERANCE, FP32_TOLERANCE, export_onnx, onnx_parity
from ..fileio import atomic_path
from ..inference import load_network, network_scale


class ParityError(Exception):
    """The ONNX model's output is further from PyTorch's than the tolerance."""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('checkpoint', help='weights in any supported format (authors\', BasicSR, MMagic, plain)')
    parser.add_argument('output', help='.onnx file to write')
    parser.add_argument('--arch', choices=sorted(ARCHS), help='network name (inferred from the weights when omitted)')
    parser.add_argument('--scale', type=int, choices=(2, 3, 4, 8),
                        help='scale to export (picks the upsampler of a multi-scale network)')
    parser.add_argument('--variant', choices=('full', 'ieeb_rb', 'ieeb', 'hn', 'sn'),
                        help='LESRCNN ablation variant (needed for the ablations without an IRB)')
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET, help=f'ONNX opset (default {DEFAULT_OPSET})')
    parser.add_argument('--fp16', action='store_true', help='float16 weights, input and output')
    parser.add_argument('--reference', action='store_true', help='export the reference network, not the fast path')
    parser.add_argument('--atol', type=float,
                        help=f'parity tolerance (default {FP32_TOLERANCE:g}, or {FP16_TOLERANCE:g} with --fp16)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    tolerance = args.atol if args.atol is not None else (FP16_TOLERANCE if args.fp16 else FP32_TOLERANCE)
    try:
        model = load_network(args.checkpoint, args.arch, args.scale, args.variant)
    except CheckpointError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    scale = network_scale(model)
    output = Path(args.output)
    try:
        # The export becomes `output` only if the parity check passes; otherwise it is deleted.
        with atomic_path(output) as candidate:
            export_onnx(model, candidate, scale=scale, fast=not args.reference, fp16=args.fp16, opset=args.opset)
            difference = onnx_parity(candidate, model, scale)
            path = 'reference network' if args.reference else 'fast path'
            precision = 'fp16' if args.fp16 else 'fp32'
            verdict = 'ok' if difference <= tolerance else 'FAILED'
            print(f'{type(model).__name__} x{scale} ({path}, {precision}, opset {args.opset}): max |onnxruntime - '
                  f'PyTorch| = {difference:.3g} (tolerance {tolerance:g}) {verdict}')
            if difference > tolerance:
                raise ParityError(f'parity check failed; {output} not written')
    except ParityError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    except (RuntimeError, ValueError) as exc:
        print(f'error: export of {args.checkpoint} failed: {exc}', file=sys.stderr)
        return 1
    print(f'wrote {output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
