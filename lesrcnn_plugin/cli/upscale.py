"""Upscale images with a LESRCNN-family checkpoint (authors', BasicSR, MMagic or plain format).

Examples::

    lesrcnn-upscale -c lesrcnn_x2.pth photo.png -o results/
    lesrcnn-upscale -c net_g_600000.pth photos/ -o results/ --tile 256 --self-ensemble
    lesrcnn-upscale -c lesrcnn_s.pth photos/ -o results/ --scale 3 --device cuda --dtype fp16

The network and its scale are read from the weights; --arch, --scale and --variant override them.
Gray images stay gray, an alpha channel is resized bicubically and kept, 16-bit images give 16-bit
output. Outputs are written as <stem>_x<scale>.png (see --suffix, --keep-extension); an existing
output is replaced only with --overwrite, and an input never. An image larger than --max-pixels is
refused from its header, before it is decoded. An image that fails, for any reason, is reported and
skipped; the others are still processed, the failures are listed at the end and the exit status is 1.
An output that is not finite (NaN or Inf: fp16 activations that overflow) is refused, not written.
A folder's GIFs are skipped and a multi-page TIFF gives its first page, each with a warning.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from ..archs.fast import FastLESRCNN
from ..checkpoint import load_model, resolve_source
from ..errors import LESRCNNError
from ..image_io import (IMAGE_EXTENSIONS, ImageTooLargeError, extra_frames_warning, read_image,
                        skipped_image_warnings, write_image)
from ..inference import (DTYPES, NonFiniteOutputError, prepare_network, receptive_field_margin, resolve_device,
                         upscale_image)
from ._common import (OutputGuard, add_overwrite_argument, add_weights_arguments, describe, int_at_least, one_line,
                      positive_int, run)

# Default --max-pixels (input width x height): what a 2-core, 24 GB machine survives for a whole x4
# upscale, network, float output, rounding and PNG encoding included (docs/reliability.md has the
# measurements). Counted per input pixel at x4:
#: with --tile, or on CUDA: the host holds the image and one float copy of its output (about 0.7 KB,
#: BGRA 16-bit with --self-ensemble) besides one tile's feature maps.
MAX_PIXELS_TILED = 16_000_000
#: untiled on the fast path in float32 on the CPU: 64-channel maps at the input size, the output
#: computed in strips (up to about 2.7 KB for wide images).
MAX_PIXELS_UNTILED_FUSED = 4_000_000
#: untiled otherwise on the CPU (--reference, fp16, bf16): 64-channel maps at the output size (about 17 KB).
MAX_PIXELS_UNTILED = 1_000_000
#: Tile size the refusal of an image too large for an untiled run suggests.
SUGGESTED_TILE = 512


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('inputs', nargs='+', help='image files and/or folders (a folder: its images, not recursive)')
    parser.add_argument('-o', '--output', required=True, help='output folder (created if missing)')
    add_weights_arguments(parser, ('-c', '--checkpoint'))
    parser.add_argument('--device', default='auto', help='auto (CUDA when available), cpu, cuda or cuda:N')
    parser.add_argument('--dtype', default='fp32', choices=sorted(DTYPES), help='compute precision (default fp32)')
    parser.add_argument('--channels-last', action='store_true', help='run in NHWC memory format')
    parser.add_argument('--tile', type=tile_size, metavar='{auto,none,N}',
                        help='tile size in LR pixels; auto (default): tiles of at most 256 pixels with context on '
                             'the CPU (512 on CUDA) when the image is larger, seamless; none: whole image at once')
    parser.add_argument('--tile-overlap', type=int_at_least(0),
                        help='context around each tile in LR pixels (default and minimum for seamless output: '
                             'the network\'s receptive-field margin)')
    parser.add_argument('--self-ensemble', action='store_true', help='average the 8 flips/rotations (x8 slower)')
    parser.add_argument('--reference', action='store_true',
                        help='run the reference network instead of the exact fast path')
    parser.add_argument('--suffix', default='_x{scale}',
                        help='appended to each output stem; {scale} is replaced (default "_x{scale}")')
    parser.add_argument('--keep-extension', action='store_true',
                        help='write in the input\'s format instead of PNG (JPEG loses alpha and 16 bits)')
    add_overwrite_argument(parser, 'existing output images')
    parser.add_argument('--max-pixels', type=positive_int,
                        help='refuse larger images (width x height, read from the header before decoding). Default: '
                             f'{MAX_PIXELS_TILED:,} tiled (--tile auto or N) or on CUDA, {MAX_PIXELS_UNTILED_FUSED:,} '
                             'with --tile none on '
                             f'the CPU fast path in fp32, {MAX_PIXELS_UNTILED:,} untiled otherwise (what 24 GB hold '
                             'at x4)')
    args = parser.parse_args(argv)
    if args.tile_overlap is not None and args.tile in (None, 'none'):
        parser.error('--tile-overlap needs --tile (auto or a size)')
    args.tile = 'auto' if args.tile is None else None if args.tile == 'none' else args.tile
    return args


def tile_size(text: str) -> int | str:
    """``--tile``: ``auto``, ``none`` or a positive number of pixels."""
    return text if text in ('auto', 'none') else positive_int(text)


def collect_images(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Image paths from files and folders (sorted within each folder), and a message per missing input.

    A warning is printed for each image of a folder that is skipped (a GIF) and each image of which
    only the first frame will be read (a multi-page TIFF).
    """
    images, problems = [], []
    for entry in map(Path, inputs):
        if entry.is_dir():
            for warning in skipped_image_warnings(entry):
                print(f'warning: {one_line(warning)}', file=sys.stderr)
            images += sorted(p for p in entry.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        elif entry.is_file():
            images.append(entry)
        else:
            problems.append(f'{entry}: no such file or folder')
    for image in images:
        warning = extra_frames_warning(image)
        if warning:
            print(f'warning: {one_line(warning)}', file=sys.stderr)
    return images, problems


def output_path(image: Path, folder: Path, suffix: str, keep_extension: bool) -> Path:
    return folder / f'{image.stem}{suffix}{image.suffix if keep_extension else ".png"}'


def default_max_pixels(network: torch.nn.Module, tile: int | None, device: torch.device, dtype: torch.dtype) -> int:
    """The default --max-pixels of a run: how large an input the host memory of a 24 GB machine holds."""
    if tile is not None or device.type != 'cpu':
        return MAX_PIXELS_TILED
    # Only the fused CPU fast path computes the output-size feature maps strip by strip.
    probe = torch.empty(0, device=device, dtype=dtype)
    fused = isinstance(network, FastLESRCNN) and network.uses_fused_kernels(probe)
    return MAX_PIXELS_UNTILED_FUSED if fused else MAX_PIXELS_UNTILED


def failure_message(exc: Exception, image: Path, args: argparse.Namespace, device: torch.device) -> str:
    """One line for an image that failed, naming the file (or the output it could not write)."""
    if isinstance(exc, ImageTooLargeError):
        if args.tile is None:
            return f'{exc}; use --tile {SUGGESTED_TILE} (up to {MAX_PIXELS_TILED / 1e6:g} MP) or raise --max-pixels'
        return f'{exc}; raise --max-pixels if this machine has the memory (docs/reliability.md)'
    if isinstance(exc, NonFiniteOutputError):
        advice = '; use --dtype fp32' if args.dtype != 'fp32' else ' (check the weights)'
        return f'{image}: {exc}; not written{advice}'
    if isinstance(exc, LESRCNNError) or (isinstance(exc, OSError) and exc.filename is not None):
        return describe(exc)
    if isinstance(exc, torch.OutOfMemoryError):
        return f'{image}: out of memory on {device}; try --tile 256 (or smaller)'
    if isinstance(exc, MemoryError):
        return f'{image}: MemoryError: out of host memory ({exc}); use --tile or a lower --max-pixels'
    if isinstance(exc, RuntimeError):  # e.g. a precision the device does not support
        return f'{image}: inference failed on {device} in {args.dtype} ({exc})'
    return f'{image}: {type(exc).__name__}: {exc}'


def upscale(args: argparse.Namespace) -> int:
    # The checkpoint first: without it no image can be processed, so its problem is the one to report,
    # before any per-image message.
    checkpoint = resolve_source(args.checkpoint)
    model = load_model(checkpoint, args.arch, args.scale, args.variant)
    images, failures = collect_images(args.inputs)
    for message in failures:
        print(f'error: {one_line(message)}', file=sys.stderr)
    if not images:
        raise LESRCNNError('no images to process')
    output_dir = Path(args.output)
    if output_dir.exists() and not output_dir.is_dir():
        raise LESRCNNError(f'{output_dir}: is a file, not a folder; -o/--output names the folder for the outputs')
    device = resolve_device(args.device)
    scale = model.default_scale
    network = prepare_network(model, fast=not args.reference, device=device, dtype=DTYPES[args.dtype],
                              channels_last=args.channels_last)
    margin = receptive_field_margin(model, scale)
    if args.tile_overlap is not None and args.tile_overlap < margin:
        print(f'warning: --tile-overlap {args.tile_overlap} is below the receptive-field margin {margin}: '
              'tile seams may show', file=sys.stderr)
    max_pixels = args.max_pixels or default_max_pixels(network, args.tile, device, DTYPES[args.dtype])
    suffix = args.suffix.replace('{scale}', str(scale))
    guard = OutputGuard([*images, checkpoint], args.overwrite)
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
            guard.check(target)
            result = upscale_image(network, read_image(image, max_pixels=max_pixels), tile=args.tile,
                                   tile_overlap=args.tile_overlap, self_ensemble=args.self_ensemble,
                                   channels_last=args.channels_last)
            write_image(target, result)
            written += 1
        except Exception as exc:  # one image's failure, whatever it is, must not stop the batch
            failures.append(failure_message(exc, image, args, device))
            tqdm.write(f'error: {one_line(failures[-1])}', file=sys.stderr)
            if isinstance(exc, torch.OutOfMemoryError) and device.type == 'cuda':
                torch.cuda.empty_cache()
    print(f'{written} image(s) written to {output_dir}')
    if failures:
        print(f'{len(failures)} failure(s):', file=sys.stderr)
        for message in failures:
            print(f'  {one_line(message)}', file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    return run(lambda: upscale(args))


if __name__ == '__main__':
    sys.exit(main())
