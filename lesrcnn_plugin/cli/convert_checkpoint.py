"""Convert a LESRCNN-family checkpoint between the authors', BasicSR's and MMagic's formats.

Examples::

    lesrcnn-convert lesrcnn_x2.pth lesrcnn_x2_basicsr.pth --to basicsr
    lesrcnn-convert net_g_600000.pth lesrcnn_x2_official.pth --to official
    lesrcnn-convert lesrcnn_x4.pth lesrcnn_x4_mmagic.pth --to mmagic

The input format is detected. The converted weights are loaded strictly into the network they
describe before anything is written, so a file that would not load is never produced.
"""
from __future__ import annotations

import argparse
import sys

from ..archs import ARCHS
from ..checkpoint import (FORMATS, CheckpointError, detect_format, model_from_state, read_checkpoint,
                          save_checkpoint, to_plugin_state)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('input', help='checkpoint to read (authors\', BasicSR, MMagic or plain state dict)')
    parser.add_argument('output', help='file to write')
    parser.add_argument('--to', required=True, choices=FORMATS,
                        help='format to write')
    parser.add_argument('--scale', type=int, choices=(2, 3, 4, 8),
                        help='scale of a single-scale official checkpoint (read from the weights when omitted)')
    parser.add_argument('--arch', choices=sorted(ARCHS), help='network name (inferred from the weights when omitted)')
    parser.add_argument('--variant', help='ablation variant of LESRCNN (sn, hn, ieeb, ieeb_rb, full)')
    return parser.parse_args(argv)


def convert(input_path: str, output_path: str, to: str, scale: int | None = None, arch: str | None = None,
            variant: str | None = None) -> str:
    """Convert ``input_path`` to ``to`` at ``output_path``; returns a one-line summary."""
    checkpoint = read_checkpoint(input_path)
    try:
        source_format = detect_format(checkpoint)
        state = to_plugin_state(checkpoint, scale)
        model = model_from_state(state, arch, variant)
    except (CheckpointError, KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f'{input_path}: {exc}') from exc
    name = type(model).__name__
    meta = {'arch': name, 'converted_from': source_format}
    save_checkpoint(model.state_dict(), output_path, to, meta=meta)
    return f'{input_path} ({source_format}, {name}) -> {output_path} ({to})'


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        print(convert(args.input, args.output, args.to, args.scale, args.arch, args.variant))
    except CheckpointError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
