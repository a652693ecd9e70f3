"""Bring benchmark sets (Set5, Set14, BSD100, Urban100, ...) into the layout the test configs read.

Examples::

    lesrcnn-prepare-testsets downloads/benchmark                  # every set found in the folder
    lesrcnn-prepare-testsets ../shared/datasets/Set5 --scales 2 4
    lesrcnn-prepare-testsets SelfExSR/data/Urban100 --name Urban100

Each SOURCE is a set folder, or a folder holding set folders. Layouts recognised in a set folder:

* EDSR / benchmark.tar: ``HR/<name>.png`` and ``LR_bicubic/X{k}/<name>x{k}.png``;
* BasicSR: ``GTmod12/<name>.png`` and ``LRbicx{k}/<name>.png``;
* SelfExSR / the LESRCNN authors: ``x{k}/<name>_SRF_{k}_HR.png`` and ``..._LR.png``, or the same
  files in ``image_SRF_{k}/``;
* HR only: ``HR/`` or ``GTmod12/`` without LR folders, or images directly in the set folder.

LR images that are not provided are made from the HR image, cropped to a multiple of k, with the
MATLAB-exact bicubic resize. Output: ``OUTPUT/<Set>/X{k}/HR/<name>.png`` and ``.../LR/<name>.png``,
3-channel (grayscale images are replicated), HR cropped at the bottom/right to exactly k times the
LR size. Each ``X{k}`` folder is written under a temporary name and renamed when complete.
A GIF is skipped and a multi-page TIFF gives its first page: each is reported with a warning line.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..data.testsets import collect_sets, write_scale
from ._common import one_line, positive_int, run


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('sources', nargs='+', type=Path, help='set folders, or folders holding set folders')
    parser.add_argument('--output', type=Path, default=Path('datasets/benchmark'),
                        help='output root (default: datasets/benchmark)')
    parser.add_argument('--scales', type=positive_int, nargs='+', default=[2, 3, 4], help='scales (default: 2 3 4)')
    parser.add_argument('--name', help='set name to use for a single set folder (default: from the folder name)')
    parser.add_argument('--sets', nargs='+', help='only these sets (canonical names, e.g. Set5 BSD100)')
    parser.add_argument('--dry-run', action='store_true', help='report what was found, write nothing')
    return parser.parse_args(argv)


def prepare(args: argparse.Namespace) -> None:
    """Report the sets found and (unless ``--dry-run``) write each of them at every scale."""
    scales = sorted(set(args.scales))
    for found in collect_sets(args.sources, scales, args.name, args.sets):
        print(f'{found.name}: {found.layout} in {found.folder}')
        for note in found.notes:
            print(f'  {note}')
        for warning in found.warnings:
            print(f'warning: {one_line(warning)}', file=sys.stderr)
        for scale in scales:
            if args.dry_run:
                print(f'  x{scale}: {len(found.pairs[scale])} images')
            else:
                print(write_scale(found, scale, args.output))


def main(argv=None) -> int:
    args = parse_args(argv)
    return run(lambda: prepare(args))


if __name__ == '__main__':
    sys.exit(main())
