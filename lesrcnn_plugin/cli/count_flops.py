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

from ..archs import build_arch
from ..complexity import ComplexityReport, count_complexity, csv_rows, format_markdown
from ..fileio import write_text_atomic
from ._common import add_network_arguments, add_size_arguments, network_from_args, run, sizes_from_args


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_network_arguments(parser)
    add_size_arguments(parser)
    parser.add_argument('--format', choices=('markdown', 'csv', 'json'), default='markdown', help='output format')
    parser.add_argument('--output', help='file to write (default: standard output)')
    return parser.parse_args(argv)


def count(args: argparse.Namespace) -> list[ComplexityReport]:
    name, kwargs = network_from_args(args)
    model = build_arch(name, **kwargs)
    scale = args.scale or model.default_scale
    return [count_complexity(model, size, scale=scale, network=name, arch_kwargs=kwargs)
            for size in sizes_from_args(args, scale)]


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


def write_report(args: argparse.Namespace) -> None:
    text = render(count(args), args.format)
    if args.output:
        write_text_atomic(args.output, text)
        print(f'wrote {args.output}', file=sys.stderr)
    else:
        sys.stdout.write(text)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run(lambda: write_report(args))


if __name__ == '__main__':
    sys.exit(main())
