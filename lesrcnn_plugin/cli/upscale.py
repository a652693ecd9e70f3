"""Upscale images with a LESRCNN-family checkpoint (authors', BasicSR, MMagic or plain format).

Examples::

    lesrcnn-upscale -c lesrcnn_x2.pth photo.png -o results/
    lesrcnn-upscale -c net_g_600000.pth photos/ -o results/ --tile 256 --self-ensemble
    lesrcnn-upscale -c lesrcnn_s.pth photos/ -o results/ --scale 3 --device cuda --dtype fp16

The network and its scale are read from the weights; --arch, --scale and --variant override them.
Gray images stay gray, an alpha channel is resized bicubically and kept, 16-bit images give 16-bit
output. Outputs are written as <stem>_x<scale>.png (see --suffix, --keep-extension). An image that
cannot be read or written is reported and skipped; the others are still processed, the failures are
listed at the end and the exit status is 1.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from ..checkpoint import load_model
from ..errors import LESRCNNError
from ..image_io import IMAGE_EXTENSIONS, read_image, write_image
from ..inference import DTYPES, prepare_network, receptive_field_margin, resolve_device, upscale_image
from ._common import add_weights_arguments, describe, run


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('inputs', nargs='+', help='image files and/or folders (a folder: its images, not recursive)')
    parser.add_argument('-o', '--output', required=True, help='output folder (created if missing)')
    add_weights_arguments(parser, ('-c', '--checkpoint'))
    parser.add_argument('--device', default='auto', help='auto (CUDA when available), cpu, cuda or cuda:N')
    parser.add_argument('--dtype', default='fp32', choices=sorted(DTYPES), help='compute precision (default fp32)')
    parser.add_argument('--channels-last', action='store_true', help='run in NHWC memory format')
    parser.add_argument('--tile', type=int, help='tile size in LR pixels (default: whole image at once)')
    parser.add_argument('--tile-overlap', type=int,
                        help='context around each tile in LR pixels (default and minimum for seamless output: '
                             'the network\'s receptive-field margin)')
    parser.add_argument('--self-ensemble', action='store_true', help='average the 8 flips/rotations (x8 slower)')
    parser.add_argument('--reference', action='store_true',
                        help='run the reference network instead of the exact fast path')
    parser.add_argument('--suffix', default='_x{scale}',
                        help='appended to each output stem; {scale} is replaced (default "_x{scale}")')
    parser.add_argument('--keep-extension', action='store_true',
                        help='write in the input\'s format instead of PNG (JPEG loses alpha and 16 bits)')
    args = parser.parse_args(argv)
    if args.tile is not None and args.tile <= 0:
        parser.error('--tile must be positive')
    if args.tile_overlap is not None and (args.tile_overlap < 0 or args.tile is None):
        parser.error('--tile-overlap needs --tile and must be >= 0')
    return args


def collect_images(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Image paths from files and folders (sorted within each folder), and a message per missing input."""
    images, problems = [], []
    for entry in map(Path, inputs):
        if entry.is_dir():
            images += sorted(p for p in entry.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        elif entry.is_file():
            images.append(entry)
        else:
            problems.append(f'{entry}: no such file or folder')
    return images, problems


def output_path(image: Path, folder: Path, suffix: str, keep_extension: bool) -> Path:
    return folder / f'{image.stem}{suffix}{image.suffix if keep_extension else ".png"}'


def upscale(args: argparse.Namespace) -> int:
    images, failures = collect_images(args.inputs)
    for message in failures:
        print(f'error: {message}', file=sys.stderr)
    if not images:
        raise LESRCNNError('no images to process')
    device = resolve_device(args.device)
    model = load_model(args.checkpoint, args.arch, args.scale, args.variant)
    scale = model.default_scale
    network = prepare_network(model, fast=not args.reference, device=device, dtype=DTYPES[args.dtype],
                              channels_last=args.channels_last)
    margin = receptive_field_margin(model, scale)
    if args.tile_overlap is not None and args.tile_overlap < margin:
        print(f'warning: --tile-overlap {args.tile_overlap} is below the receptive-field margin {margin}: '
              'tile seams may show', file=sys.stderr)
    output_dir = Path(args.output)
    suffix = args.suffix.replace('{scale}', str(scale))
    targets = {}
    for image in images:
        target = output_path(image, output_dir, suffix, args.keep_extension)
        if target in targets.values():
            failures.append(f'{image}: its output name {target.name} is already taken by another input')
            continue
        targets[image] = target

    path = 'fast' if not args.reference else 'reference'
    print(f'{type(model).__name__} x{scale} ({path} path) on {device}, {args.dtype}'
          + (f', tiles {args.tile} + overlap {args.tile_overlap if args.tile_overlap is not None else margin}'
             if args.tile else '') + (', x8 self-ensemble' if args.self_ensemble else ''))
    written = 0
    for image, target in tqdm(targets.items(), desc='upscale', unit='img'):
        try:
            result = upscale_image(network, read_image(image), tile=args.tile, tile_overlap=args.tile_overlap,
                                   self_ensemble=args.self_ensemble, channels_last=args.channels_last)
            write_image(target, result)
            written += 1
        except (LESRCNNError, OSError) as exc:
            failures.append(describe(exc))
            tqdm.write(f'error: {exc}', file=sys.stderr)
        except torch.OutOfMemoryError:
            failures.append(f'{image}: out of memory on {device}; try --tile 256 (or smaller)')
            tqdm.write(f'error: {failures[-1]}', file=sys.stderr)
            if device.type == 'cuda':
                torch.cuda.empty_cache()
        except RuntimeError as exc:  # e.g. a precision the device does not support
            failures.append(f'{image}: inference failed on {device} in {args.dtype} ({exc})')
            tqdm.write(f'error: {failures[-1]}', file=sys.stderr)
    print(f'{written} image(s) written to {output_dir}')
    if failures:
        print(f'{len(failures)} failure(s):', file=sys.stderr)
        for message in failures:
            print(f'  {message}', file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    return run(lambda: upscale(args))


if __name__ == '__main__':
    sys.exit(main())
