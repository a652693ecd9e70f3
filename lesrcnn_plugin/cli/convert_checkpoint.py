"""Convert a LESRCNN-family checkpoint between the authors', BasicSR's and MMagic's formats.

Examples::

    lesrcnn-convert lesrcnn_x2.pth lesrcnn_x2_basicsr.pth --to basicsr
    lesrcnn-convert net_g_600000.pth lesrcnn_x2_official.pth --to official
    lesrcnn-convert lesrcnn_x4.pth lesrcnn_x4_mmagic.pth --to mmagic

The input format is detected. The converted weights are loaded strictly into the network they
describe before anything is written, so a file that would not load is never produced. An existing
output is replaced only with --overwrite, the input never.
"""
from __future__ import annotations

import argparse
import sys

from ..checkpoint import FORMATS, load_checkpoint, resolve_source, save_checkpoint
from ._common import OutputGuard, add_overwrite_argument, add_weights_arguments, output_arguments_check, run


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_weights_arguments(parser, ('input',), 'checkpoint to read (authors\', BasicSR, MMagic or plain state dict, '
                                              'or a registered name such as lesrcnn_x2)')
    parser.add_argument('output', help='file to write')
    parser.add_argument('--to', required=True, choices=FORMATS, help='format to write')
    add_overwrite_argument(parser)
    args = parser.parse_args(argv)
    output_arguments_check(parser, args.output, args.checkpoint)
    return args


def convert(input_path: str, output_path: str, to: str, scale: int | None = None, arch: str | None = None,
            variant: str | None = None, overwrite: bool = False) -> str:
    """Convert ``input_path`` to ``to`` at ``output_path``; returns a one-line summary.

    Raises:
        OutputError: ``output_path`` is the input, or exists and ``overwrite`` is false.
    """
    source = resolve_source(input_path)
    OutputGuard([source], overwrite).check(output_path)
    loaded = load_checkpoint(source, arch, scale, variant)
    name = type(loaded.model).__name__
    meta = {'arch': name, 'converted_from': loaded.format}
    save_checkpoint(loaded.model.state_dict(), output_path, to, meta=meta)
    return f'{loaded.path} ({loaded.format}, {name}) -> {output_path} ({to})'


def main(argv=None) -> int:
    args = parse_args(argv)
    return run(lambda: print(convert(args.checkpoint, args.output, args.to, args.scale, args.arch, args.variant,
                                     args.overwrite)))


if __name__ == '__main__':
    sys.exit(main())
