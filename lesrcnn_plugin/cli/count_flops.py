"""Count parameters, MACs, FLOPs and activations of any SR network; the LESRCNN family block by block.

Examples::

    lesrcnn-count-flops --arch LESRCNN --scale 2                      # NTIRE 256x256 LR input
    lesrcnn-count-flops --arch LESRCNN --scale 4 --preset 256 512 1024 720p
    lesrcnn-count-flops --arch MultiScaleLESRCNN --scales 2 3 4 --scale 3 --lr-size 100x120
    lesrcnn-count-flops -opt options/train_lesrcnn_x2.yml --format csv --output counts.csv
    lesrcnn-count-flops --config configs/lesrcnn/lesrcnn_x2_div2k.py --format json
    lesrcnn-count-flops -opt path/to/train_EDSR_Mx4.yml --preset ntire 720p      # any BasicSR network_g
    lesrcnn-count-flops --arch basicsr:EDSR --arch-args '{"num_feat": 64, "num_block": 16, "upscale": 4}'
    lesrcnn-count-flops --arch mmagic:SRCNNNet --arch-args '{"upscale_factor": 4}' --cross-check
    lesrcnn-count-flops --arch my_package.models:MyNet --arch-args '{"scale": 4}'   # your own network
    lesrcnn-count-flops --weights 4x_SPAN.pth                       # any architecture spandrel detects

Parameters count once; MACs and activations count every call, so the LESRCNN RB upsampler, which runs
on the deep and on the shallow features, counts twice. FLOPs = 2 x MACs. Other networks are broken
down by their top-level children. The conventions are printed with the tables; --cross-check also
counts the network with mmengine.analysis at a small input and says where the two agree.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys

from ..complexity import ComplexityReport, count_complexity, csv_rows, format_markdown, input_size
from ..fileio import write_text_atomic
from ..networks import ResolvedNetwork
from ._common import add_size_arguments, require, run, sizes_from_args
from ._networks import add_network_arguments, network_from_arguments

#: LR side of the input ``--cross-check`` runs (mmengine traces a real forward pass on the CPU).
CROSS_CHECK_LR = 32


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_network_arguments(parser)
    add_size_arguments(parser)
    parser.add_argument('--format', choices=('markdown', 'csv', 'json'), default='markdown', help='output format')
    parser.add_argument('--output', help='file to write (default: standard output)')
    parser.add_argument('--cross-check', action='store_true',
                        help=f'also count with mmengine.analysis at a {CROSS_CHECK_LR}x{CROSS_CHECK_LR} LR input '
                             '(mmengine extra) and report the agreement')
    return parser.parse_args(argv)


def count(args: argparse.Namespace) -> tuple[ResolvedNetwork, list[ComplexityReport]]:
    network = network_from_arguments(args)
    return network, [count_complexity(network.module, size, scale=network.scale, network=network.name,
                                      arch_kwargs=network.kwargs) for size in sizes_from_args(args, network.scale)]


def cross_check_text(network: ResolvedNetwork) -> str:
    """The agreement of the two counters, as a markdown paragraph."""
    from ..complexity_crosscheck import cross_check

    check = cross_check(network.module, input_size(network.scale, lr=(CROSS_CHECK_LR, CROSS_CHECK_LR)))
    differences = ', '.join(f'{kind} {value:+,.0f}' for kind, value in check.differences.items())
    elementwise = ', '.join(f'{name} {count:,.0f}' for name, count in sorted(check.only_mmengine.items()))
    lines = [f'Cross-check with mmengine.analysis at LR {CROSS_CHECK_LR}x{CROSS_CHECK_LR} (its "flops" are MACs): '
             f'{"agree" if check.agrees else "differ"}.',
             f'- parameters: {check.params:,} here, {check.mmengine_params:,} mmengine',
             f'- MACs of convolutions and matrix products: {check.total_macs:,} here, '
             f'{sum(check.mmengine_macs.values()):,.0f} mmengine' + (f' (ours minus theirs: {differences})'
                                                                       if differences else '')]
    if elementwise:
        lines.append(f'- counted by mmengine only (elementwise work): {elementwise}')
    if check.note:
        lines.append(f'- {check.note}')
    return '\n'.join(lines) + '\n'


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
    if args.cross_check:
        require('mmagic', 'mmengine', needed_by='--cross-check')
    network, reports = count(args)
    text = render(reports, args.format)
    if args.cross_check:
        agreement = cross_check_text(network)
        if args.format == 'markdown':
            text += '\n' + agreement
        else:  # CSV and JSON stay machine-readable: the agreement goes to standard error
            sys.stderr.write(agreement)
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
