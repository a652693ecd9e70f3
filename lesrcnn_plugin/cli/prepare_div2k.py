"""Prepare DIV2K for training: sub-images of HR and bicubic LR images in BasicSR-layout LMDBs.

Examples::

    lesrcnn-prepare-div2k --dry-run                   # counts and sizes, nothing written
    lesrcnn-prepare-div2k --workers 8 --verify        # datasets/DIV2K/DIV2K_train_*_sub.lmdb
    lesrcnn-prepare-div2k --valid --scales 4          # also DIV2K 0801-0900, x4 only

Input (``--input``, default ``datasets/DIV2K``): ``DIV2K_train_HR/0001.png ...`` and, when present,
``DIV2K_train_LR_bicubic/X{k}/0001x{k}.png``; LR images that are absent (or all of them, with
``--generate-lr``) are made from the HR image with the MATLAB-exact bicubic resize. ``--valid``
does the same for ``DIV2K_valid_HR`` / ``DIV2K_valid_LR_bicubic``.

Output (``--output``, default the input folder): ``DIV2K_{train,valid}_HR_sub.lmdb`` and
``DIV2K_{train,valid}_LR_bicubic_X{k}_sub.lmdb``. HR sub-images are ``--crop-size`` squares every
``--step`` pixels (BasicSR's recipe: 480, 240, plus a last crop flush with the far edge); LR
sub-images of scale k are the co-located ``crop/k`` squares. Sub-image ``i`` of image ``0001`` has
the key ``0001_s{i:03d}`` in every database.

Sub-images are staged per image as PNG files in ``--staging-dir`` (each image's folder appears only
once complete), so a killed run resumes where it stopped; databases are then written in sorted key
order and renamed into place, so a rerun gives byte-identical ``data.mdb`` and ``meta_info.txt``.
``--in-memory`` skips the staging (no staging I/O, but it needs RAM for every encoded sub-image,
many GB for DIV2K, and is not resumable).

One run at a time writes into an output folder: a run holds ``OUTPUT/.lesrcnn-prepare-div2k.lock``
while it works, and a second run started meanwhile stops at once, naming the process that holds it.

``--storage raw`` also writes a raw-pixel copy of every database (``*_sub_raw.lmdb``: the decoded
pixels, same keys and order; training reads them without decoding, see docs/data.md); with
``--verify`` each is compared pixel for pixel with its PNG database.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
from pathlib import Path

from ..data.div2k import Settings, build_split, dry_run, find_splits, verify_split
from ..data.raw_store import build_raw_split, verify_raw_split
from ..errors import DataError
from ..fileio import LockHeldError, exclusive_lock, make_folder
from ._common import int_at_least, positive_int, run

#: The lock file a run holds in its output folder: its staging folder and databases are written in place.
LOCK_FILE = '.lesrcnn-prepare-div2k.lock'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--input', type=Path, default=Path('datasets/DIV2K'),
                        help='folder holding DIV2K_train_HR/ (and DIV2K_train_LR_bicubic/, DIV2K_valid_HR/)')
    parser.add_argument('--output', type=Path, help='folder for the databases (default: --input)')
    parser.add_argument('--scales', type=positive_int, nargs='+', default=[2, 3, 4],
                        help='LR scales (default: 2 3 4)')
    parser.add_argument('--crop-size', type=positive_int, default=480, help='HR sub-image side (default: 480)')
    parser.add_argument('--step', type=positive_int, default=240, help='HR sub-image stride (default: 240)')
    parser.add_argument('--thresh-size', type=int_at_least(0), default=0,
                        help='add a crop flush with the far edge when more pixels than this are left (default: 0)')
    parser.add_argument('--compress-level', type=int, default=1, choices=range(10), metavar='0-9',
                        help='PNG compression level of the stored sub-images (default: 1, as BasicSR)')
    parser.add_argument('--generate-lr', action='store_true',
                        help='make every LR image with the MATLAB-exact bicubic resize, ignoring LR files')
    parser.add_argument('--valid', action='store_true', help='also prepare DIV2K_valid_HR (0801-0900)')
    parser.add_argument('--workers', type=positive_int, default=min(4, os.cpu_count() or 1),
                        help='parallel processes (default: min(4, CPU count))')
    parser.add_argument('--in-memory', action='store_true',
                        help='keep sub-images in memory instead of staging them on disk (not resumable)')
    parser.add_argument('--staging-dir', type=Path, help='where sub-images are staged (default: OUTPUT/.staging)')
    parser.add_argument('--keep-staging', action='store_true', help='keep the staged sub-images afterwards')
    parser.add_argument('--storage', choices=['png', 'raw'], default='png',
                        help='png: PNG databases (default); raw: also their raw-pixel copies *_sub_raw.lmdb, '
                             'read without decoding (several times the disk space)')
    parser.add_argument('--overwrite', action='store_true', help='rebuild databases that already exist')
    parser.add_argument('--replace', action='store_true',
                        help='rebuild databases made with other settings (crop size, step, threshold, scales, LR '
                             'source); without it they are an error, since all databases of a split share keys')
    parser.add_argument('--limit', type=positive_int, help='only the first N images of each split (for a quick try)')
    parser.add_argument('--dry-run', action='store_true', help='print counts and estimated sizes, write nothing')
    parser.add_argument('--verify', action='store_true',
                        help='afterwards, check every key decodes and HR/LR sizes agree (also on existing databases)')
    return parser.parse_args(argv)


def prepare(args: argparse.Namespace) -> None:
    """Build (or, with ``--dry-run``, estimate) each split's databases, printing a report per split."""
    output = args.output or args.input
    settings = Settings(tuple(sorted(set(args.scales))), args.crop_size, args.step, args.thresh_size,
                        args.compress_level, args.generate_lr)
    splits = find_splits(args.input, output, args.valid)
    if args.dry_run:
        for split in splits:
            print('\n'.join(dry_run(split, settings, args.limit)))
        return
    make_folder(output)
    with contextlib.ExitStack() as lock:
        try:
            lock.enter_context(exclusive_lock(output / LOCK_FILE, wait=False))
        except LockHeldError as held:
            raise DataError(f'{output}: another lesrcnn-prepare-div2k run ({held.owner or "process unknown"}) is '
                            f'writing here; wait for it to finish (it holds {held.filename})') from None
        except OSError as exc:
            # A folder this run cannot create a file in, no run can write: the build reports it by
            # the database it could not write, not by the lock file.
            if exc.errno not in (errno.EROFS, errno.EACCES):
                raise
        build(args, splits, settings, output)


def build(args: argparse.Namespace, splits, settings: Settings, output: Path) -> None:
    """Build each split's databases (and raw copies, and checks, as asked), printing a report per split."""
    staging_dir = None if args.in_memory else (args.staging_dir or output / '.staging')
    for split in splits:
        lines = build_split(split, settings, args.workers, staging_dir, args.limit, args.overwrite,
                            args.keep_staging, replace=args.replace)
        if args.storage == 'raw':
            lines += build_raw_split(split, settings.scales, args.workers, args.overwrite)
        if args.verify:
            lines += verify_split(split, settings.scales)
            if args.storage == 'raw':
                lines += verify_raw_split(split, settings.scales)
        print('\n'.join(lines))


def main(argv=None) -> int:
    args = parse_args(argv)
    return run(lambda: prepare(args))


if __name__ == '__main__':
    sys.exit(main())
