"""Count parameters, MACs, FLOPs and activations of a LESRCNN-family network, block by block.

Examples::

    lesrcnn-count-flops --arch LESRCNN --scale 2                      # NTIRE 256x256 LR input
    lesrcnn-count-flops --arch LESRCNN --scale 4 --preset 256 512 1024 720p
    lesrcnn-count-flops --arch MultiScaleLESRCNN --scales 2 3 4 --scale 3 --lr-size 100x120
    lesrcnn-count-flops -opt options/train_lesrcnn_x2.yml --format csv --output counts.csv
    lesrcnn-count-flops --config configs/lesrcnn/lesrcnn_x2_div2k.py --format json

Parameters count once; MACs and activations count every call, so the RB upsampler, which runs on
the deep and on the shallow features, counts twice. FLOPs = 2 x MACs. The conventions are printed
with the tables.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys

from ..archs import ARCHS, VARIANTS
from ..complexity import (PRESETS, ComplexityReport, build_network, count_complexity, csv_rows, default_scale,
                          format_markdown, input_size, network_from_basicsr_options, network_from_mmagic_config,
                          parse_size)
from ..fileio import atomic_path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--arch', choices=sorted(ARCHS), help='network by registered name (default LESRCNN)')
    source.add_argument('-opt', '--opt', metavar='YAML', help="BasicSR options file: its network_g is counted")
    source.add_argument('--config', metavar='PY', help='MMagic config: its model.generator is counted (needs mmengine)')
    parser.add_argument('--scale', type=int, choices=(2, 3, 4, 8),
                        help='upscaling factor: builds LESRCNN/DualKernelLESRCNN with it, and picks the '
                             'scale a multi-scale network runs (default: the network\'s own)')
    parser.add_argument('--scales', type=int, nargs='+', help='MultiScaleLESRCNN: scales to build (default 2 3 4)')
    parser.add_argument('--variant', choices=sorted(VARIANTS), help='LESRCNN ablation variant (default full)')
    parser.add_argument('--num-feat', type=int, help='feature channels (default 64)')
    parser.add_argument('--lr-size', action='append', default=[], metavar='HxW', help='LR input size (repeatable)')
    parser.add_argument('--hr-size', action='append', default=[], metavar='HxW',
                        help='HR output size, modcropped to the scale (repeatable)')
    parser.add_argument('--preset', nargs='+', default=[], choices=sorted(PRESETS),
                        help='ntire: 256x256 LR; 720p: 1280x720 output; 256/512/1024: square HR outputs '
                             '(the paper\'s runtime sizes). Default: ntire when no size is given')
    parser.add_argument('--format', choices=('markdown', 'csv', 'json'), default='markdown', help='output format')
    parser.add_argument('--output', help='file to write (default: standard output)')
    return parser.parse_args(argv)


def network_from_args(args: argparse.Namespace) -> tuple[str, dict]:
    """(name, kwargs) from --arch/-opt/--config, with the command-line arguments overriding the file's."""
    if args.opt:
        name, kwargs = network_from_basicsr_options(args.opt)
    elif args.config:
        name, kwargs = network_from_mmagic_config(args.config)
    else:
        name, kwargs = args.arch or 'LESRCNN', {}
    if args.scale is not None and name != 'MultiScaleLESRCNN':
        kwargs['upscale'] = args.scale
    if args.scales:
        kwargs['scales'] = args.scales
    if args.variant:
        kwargs['variant'] = args.variant
    if args.num_feat:
        kwargs['num_feat'] = args.num_feat
    return name, kwargs


def count(args: argparse.Namespace) -> list[ComplexityReport]:
    name, kwargs = network_from_args(args)
    model = build_network(name, **kwargs)
    scale = args.scale or default_scale(model)
    sizes = ([input_size(scale, lr=parse_size(text)) for text in args.lr_size]
             + [input_size(scale, hr=parse_size(text)) for text in args.hr_size]
             + [input_size(scale, preset=preset) for preset in args.preset])
    sizes = sizes or [input_size(scale, preset='ntire')]
    return [count_complexity(model, size, scale=scale, network=name, arch_kwargs=kwargs) for size in sizes]


def render(reports: list[ComplexityReport], fmt: str) -> str:
    if fmt == 'markdown':
        return format_markdown(reports)
    if fmt == 'json':
        return json.dumps([report.to_dict() for report in reports], indent=2) + '\n'
    rows = csv_rows(reports)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_atomically(text: str, path: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, then rename it."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding='utf-8', newline='')


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        text = render(count(args), args.format)
        if args.output:
            write_atomically(text, args.output)
            print(f'wrote {args.output}', file=sys.stderr)
        else:
            sys.stdout.write(text)
    except (ValueError, OSError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
