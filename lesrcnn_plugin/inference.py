"""Run a LESRCNN-family network on images: seamless tiling and x8 self-ensemble.

Pixel conventions (``upscale_image``):

* images are arrays as ``lesrcnn_plugin.image_io.read_image`` gives them by default (OpenCV's
  ``IMREAD_UNCHANGED``): 8- or 16-bit, gray (H, W), gray with alpha (H, W, 2), BGR (H, W, 3) or
  BGRA (H, W, 4). The output has the input's pixel type and layout, the
  spatial size multiplied by the scale;
* colour goes through the network as RGB in [0, 1] (8-bit divided by 255, 16-bit by 65535) and is
  clamped to [0, 1] and rounded back to the input's pixel type;
* grayscale is replicated to three channels, super-resolved, then brought back to one channel with
  the ITU-R BT.601 luma weights (0.299 R + 0.587 G + 0.114 B, OpenCV's ``BGR2GRAY``): a gray image
  stays gray;
* alpha is not seen by the network (it was trained on RGB): it is resized bicubically with OpenCV
  and kept.

Tiling. ``receptive_field_margin`` gives, in LR pixels, how far the network looks around an output
pixel. Each tile's core (``tile`` x ``tile`` LR pixels) is run with ``tile_overlap`` extra LR pixels of
context on each side (clipped at the image border, where the zero padding then matches the untiled
run); only the core's output is kept. With ``tile_overlap >= receptive_field_margin(model)`` every
kept output pixel sees exactly the input it would see untiled, so tiled and untiled outputs agree up
to floating-point rounding. The whole image stays on the host; the device only ever holds one tile
of (tile + 2 * overlap)^2 pixels and its output, so device memory is bounded by the tile size.

``tile='auto'`` (``auto_tile_size``) picks the tile per image: none when the image has no more
pixels than a tile of ``AUTO_TILE_LIMIT`` pixels a side, otherwise the most even split into the
fewest tiles of at most that size, context included. On the CPU the limit keeps
each layer's 64-channel float32 map of a tile at 16 MiB, the size the fast path's HR strips are cut
to (``archs/fast.py``), so a convolution reads and writes cache rather than memory; untiled, a
1100x700 input streams 200 MB maps. On CUDA it bounds device memory. On the CPU, tiles run
concurrently, one per torch thread, each single-threaded (``tiled_forward``'s ``workers``), when
they are no larger than auto's; a larger ``tile`` runs one at a time.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed

import cv2
import numpy as np
import torch
from torch import nn

from .archs import lower, spec_of
from .errors import ConfigError, ImageError, NonFiniteOutputError

#: ITU-R BT.601 luma weights for R, G, B: how a super-resolved gray image returns to one channel.
BT601_LUMA_RGB = (0.299, 0.587, 0.114)

_PIXEL_MAX = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}

DTYPES = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}


def _channels(image: np.ndarray) -> int:
    return 1 if image.ndim == 2 else image.shape[2]


# ------------------------------------------------------------------------------------------ models


def prepare_network(model: nn.Module, fast: bool = True, device: str | torch.device = 'cpu',
                    dtype: torch.dtype = torch.float32, channels_last: bool = False) -> nn.Module:
    """The module to run: the exact fast path (``FastLESRCNN``) or a copy of the model, placed and cast.

    Args:
        model: A LESRCNN-family network with its weights.
        fast: Use the network's fast path (its spec's ``fast_path``: ``FastLESRCNN``, same outputs up to
            rounding, one upsampler pass instead of two).
        device: Where to run.
        dtype: Weights and activations type (float32, float16, bfloat16).
        channels_last: Store weights (and, in ``upscale_image``, inputs) as NHWC.
    """
    # Module.to() works in place: the reference path gets a copy so that ``model`` keeps its float32 weights.
    network = lower(model) if fast else copy.deepcopy(model)
    network = network.to(device=device, dtype=dtype).eval()
    if channels_last:
        network = network.to(memory_format=torch.channels_last)
    return network


def resolve_device(name: str | torch.device = 'auto') -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cpu``, ``cuda``, ``cuda:1``... as a device that
    exists here. An unknown device or ``cuda`` without a GPU raises ``ConfigError``."""
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f'device {name!r} is not a device (auto, cpu, cuda or cuda:N)') from None
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ConfigError(f'device {name!r} was asked for but no CUDA device is available')
    return device


# ------------------------------------------------------------------------------ receptive field


def receptive_field_margin(model: nn.Module, scale: int | None = None) -> int:
    """Receptive-field radius of a registered network in LR pixels: the smallest safe tile overlap.

    Its spec's ``receptive_field`` counts it from the layers (for the LESRCNN family,
    ``archs.family.receptive_field_margin``: 13 LR pixels at x2, 12 at x3, 13 at x4); a fast path
    keeps the margins of the network it was built from.

    Args:
        model: A registered network (``LESRCNN``, ``MultiScaleLESRCNN``, ...) or its fast path.
        scale: The scale to run (defaults to the network's own); picks the upsampler.
    """
    scale = model.default_scale if scale is None else scale
    spec = spec_of(model)
    if spec is not None:
        return spec.receptive_field(model, scale)
    margins = getattr(model, 'receptive_field_margins', None)  # a fast path: its network's
    if margins is None:
        raise TypeError(f'receptive_field_margin knows the registered networks only, not {type(model).__name__}; '
                        'give tile_overlap explicitly')
    return margins[scale]


# --------------------------------------------------------------------------------------- inference


def check_finite_output(y: torch.Tensor) -> None:
    """Raise ``NonFiniteOutputError`` if ``y`` holds a NaN or an Inf (in fp16, activations above 65504)."""
    if not torch.isfinite(y).all():
        precision = str(y.dtype).removeprefix('torch.')
        raise NonFiniteOutputError(f'the network output holds NaN or Inf values in {precision} (its activations '
                                   'overflow)')


def _runner(network: nn.Module, scale: int, device: torch.device, dtype: torch.dtype,
            channels_last: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function running ``network`` on a host float32 tile and returning its host float32 output."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def run(tile: torch.Tensor) -> torch.Tensor:
        x = tile.to(device=device, dtype=dtype).contiguous(memory_format=memory_format)
        y = network(x, scale=scale)
        check_finite_output(y)
        return y.float().cpu()

    return run


#: ``tile='auto'``: the largest tile, its context included, in LR pixels a side, by device type. CPU:
#: 256 x 256 x 64 channels x 4 bytes = 16 MiB per feature map (see the module docstring). CUDA: a
#: 512 x 512 tile's HR maps at x4 are 2048 x 2048 x 64 channels (0.5 GiB in fp16, 1 GiB in fp32).
AUTO_TILE_LIMIT = {'cpu': 256, 'cuda': 512}


def auto_tile_size(height: int, width: int, overlap: int, device_type: str = 'cpu') -> int | None:
    """The core tile ``tile='auto'`` runs an image of ``height`` x ``width`` LR pixels with, or None.

    None (untiled) when the whole image, which needs no context, has at most as many pixels as a
    tile of ``AUTO_TILE_LIMIT[device_type]`` a side. Otherwise, among cores whose tile with context
    (``core + 2 * overlap``) is at most that limit, those that need the fewest tiles (each inner
    tile edge computes ``2 * overlap`` LR pixels twice), and of those the smallest core, which splits
    the image most evenly. E.g. 700 x 1100 with an overlap of 13: cores of 220, 4 x 5 tiles (220 x 3
    + 40 down, 220 x 5 across), rather than 230 (230 x 3 + 10, 230 x 4 + 180).
    """
    limit = AUTO_TILE_LIMIT.get(device_type, AUTO_TILE_LIMIT['cuda'])
    if height * width <= limit * limit:
        return None
    largest = max(limit - 2 * overlap, 1)
    return min(range(1, largest + 1), key=lambda core: (math.ceil(height / core) * math.ceil(width / core), core))


def _tiles(height: int, width: int, tile: int, overlap: int):
    """Yield ``(core, context)`` boxes as (top, bottom, left, right), row by row."""
    for top in range(0, height, tile):
        bottom = min(top + tile, height)
        context_top, context_bottom = max(top - overlap, 0), min(bottom + overlap, height)
        for left in range(0, width, tile):
            right = min(left + tile, width)
            context_left, context_right = max(left - overlap, 0), min(right + overlap, width)
            yield (top, bottom, left, right), (context_top, context_bottom, context_left, context_right)


def tiled_forward(run: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, scale: int, tile: int,
                  overlap: int, workers: int = 1) -> torch.Tensor:
    """Apply ``run`` (an x``scale`` network) to ``x`` tile by tile and stitch the outputs.

    Each ``tile`` x ``tile`` core is run with ``overlap`` LR pixels of context on each side (clipped at
    the image border) and only the core's output is kept; see the module docstring for why an overlap
    of at least ``receptive_field_margin`` gives the untiled result.

    Args:
        run: Network applied to an (N, C, h, w) tensor, returning (N, C', scale*h, scale*w).
        x: The whole input, (N, C, H, W), on the host.
        scale: Upscaling factor of ``run``.
        tile: Core tile size in LR pixels (> 0).
        overlap: Context around each core in LR pixels (>= 0).
        workers: Tiles run at once, each on one CPU thread (torch's thread count is restored after).
            On a CPU, ``torch.get_num_threads()`` single-threaded tiles run about 25% faster than one
            tile at a time on all threads: a small convolution does not split evenly across threads.
            Each tile's arithmetic is the same either way, so the output is too.
    """
    if tile <= 0 or overlap < 0 or workers < 1:
        raise ValueError(f'tile must be > 0, overlap >= 0 and workers >= 1, got tile={tile}, overlap={overlap}, '
                         f'workers={workers}')
    height, width = x.shape[-2:]
    boxes = list(_tiles(height, width, tile, overlap))
    output = None

    def stitch(core, context, y):
        nonlocal output
        (top, bottom, left, right), (context_top, _, context_left, _) = core, context
        if output is None:
            output = y.new_empty(*y.shape[:2], height * scale, width * scale)
        core_top, core_left = (top - context_top) * scale, (left - context_left) * scale
        output[..., top * scale:bottom * scale, left * scale:right * scale] = y[
            ..., core_top:core_top + (bottom - top) * scale, core_left:core_left + (right - left) * scale]

    def crop(context):
        context_top, context_bottom, context_left, context_right = context
        return x[..., context_top:context_bottom, context_left:context_right]

    workers = min(workers, len(boxes))
    if workers == 1:
        for core, context in boxes:
            stitch(core, context, run(crop(context)))
        return output

    def run_in_worker(tile: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():  # grad mode is per thread: the caller's does not reach the workers
            return run(tile)

    threads = torch.get_num_threads()
    try:
        # OpenMP keeps the thread count per thread: each worker sets its own, once, as it starts.
        with ThreadPoolExecutor(workers, thread_name_prefix='lesrcnn-tile', initializer=torch.set_num_threads,
                                initargs=(1,)) as pool:
            futures = {pool.submit(run_in_worker, crop(context)): (core, context) for core, context in boxes}
            try:
                for future in as_completed(futures):
                    stitch(*futures.pop(future), future.result())  # pop: a stitched tile's output is freed
            finally:
                for future in futures:
                    future.cancel()  # after a failed tile, run no more
    finally:
        torch.set_num_threads(threads)
    return output


#: The eight symmetries of the square as (quarter turns, horizontal flip first).
DIHEDRAL_TRANSFORMS = tuple((turns, flip) for flip in (False, True) for turns in range(4))


def _transform(x: torch.Tensor, turns: int, flip: bool) -> torch.Tensor:
    if flip:
        x = x.flip(-1)
    return torch.rot90(x, turns, dims=(-2, -1))


def _inverse_transform(x: torch.Tensor, turns: int, flip: bool) -> torch.Tensor:
    x = torch.rot90(x, -turns, dims=(-2, -1))
    return x.flip(-1) if flip else x


def self_ensemble_forward(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """x8 self-ensemble: run ``forward`` on the 8 flips/rotations of ``x``, undo each, average."""
    total = None
    for turns, flip in DIHEDRAL_TRANSFORMS:
        y = _inverse_transform(forward(_transform(x, turns, flip)), turns, flip)
        total = y if total is None else total.add_(y)
    return total.div_(len(DIHEDRAL_TRANSFORMS))  # in place: the output is the largest tensor alive


def upscale_tensor(network: nn.Module, x: torch.Tensor, *, scale: int | None = None, tile: int | str | None = None,
                   tile_overlap: int | None = None, self_ensemble: bool = False, device=None,
                   dtype: torch.dtype | None = None, channels_last: bool = False) -> torch.Tensor:
    """Super-resolve ``x`` (N, 3, H, W), RGB in [0, 1] on the host; returns host float32, not clamped.

    Args:
        network: A LESRCNN-family network or its ``FastLESRCNN`` (``scales``, ``default_scale``,
            ``network(x, scale=k)``).
        x: Input batch.
        scale: Scale to run (for multi-scale networks); defaults to the network's.
        tile: Core tile size in LR pixels; ``None`` runs the whole image at once; ``'auto'``:
            ``auto_tile_size`` for this image and device.
        tile_overlap: Context around each tile in LR pixels; defaults to
            ``receptive_field_margin(network)``, the smallest overlap that leaves no seam.
        self_ensemble: Average the outputs over the 8 flips/rotations (x8 slower).
        device: Where to run; defaults to where the network's parameters are.
        dtype: Compute type; defaults to the network's parameter type.
        channels_last: Feed NHWC inputs (prepare the network with ``channels_last`` too).

    Every argument after ``x`` is keyword-only, in ``upscale_image``'s order.
    """
    parameter = next(network.parameters(), None)
    device = torch.device(device) if device is not None else (parameter.device if parameter is not None else 'cpu')
    dtype = dtype or (parameter.dtype if parameter is not None else torch.float32)
    scale = network.default_scale if scale is None else scale
    forward = _runner(network, scale, device, dtype, channels_last)
    if isinstance(tile, str) and tile != 'auto':
        raise ValueError(f"tile must be a number of pixels, None or 'auto', got {tile!r}")
    if tile is not None:
        overlap = receptive_field_margin(network, scale) if tile_overlap is None else tile_overlap
        tile = auto_tile_size(*x.shape[-2:], overlap, device.type) if tile == 'auto' else tile
    if tile is not None:
        # CPU threads do better on a small tile each than all on one (tiled_forward); a GPU, or a tile
        # larger than auto's, runs one at a time, so that memory stays that of one tile
        small = tile + 2 * overlap <= AUTO_TILE_LIMIT['cpu']
        workers = torch.get_num_threads() if device.type == 'cpu' and small else 1
        untiled = forward

        def forward(t: torch.Tensor) -> torch.Tensor:
            return tiled_forward(untiled, t, scale, tile, overlap, workers)

    x = x.float().cpu()
    with torch.inference_mode():
        return self_ensemble_forward(forward, x) if self_ensemble else forward(x)


def upscale_image(network: nn.Module, image: np.ndarray, *, scale: int | None = None, tile: int | str | None = None,
                  tile_overlap: int | None = None, self_ensemble: bool = False, device=None,
                  dtype: torch.dtype | None = None, channels_last: bool = False) -> np.ndarray:
    """Super-resolve an OpenCV image (8/16-bit; gray, gray+alpha, BGR or BGRA), keeping its type and layout.

    Gray is replicated to RGB and brought back with the BT.601 luma weights; alpha is resized
    bicubically (OpenCV) and kept; 16-bit stays 16-bit. Other arguments as for ``upscale_tensor``.

    Returns:
        The super-resolved image, ``scale`` times larger, same dtype and channel layout as ``image``.
    """
    if image.dtype not in _PIXEL_MAX:
        raise ImageError(f'unsupported pixel type {image.dtype} (8- and 16-bit images are supported)')
    if image.ndim not in (2, 3) or _channels(image) not in (1, 2, 3, 4):
        raise ImageError(f'unsupported image shape {image.shape}')
    pixel_max = _PIXEL_MAX[image.dtype]
    pixels = image.astype(np.float32) / pixel_max
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    gray = pixels.shape[2] in (1, 2)
    colour_channels = 1 if gray else 3
    colour = pixels[..., :colour_channels]
    alpha = pixels[..., colour_channels] if pixels.shape[2] > colour_channels else None
    rgb = np.repeat(colour, 3, axis=2) if gray else colour[..., ::-1]
    x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
    y = upscale_tensor(network, x, scale=scale, tile=tile, tile_overlap=tile_overlap, self_ensemble=self_ensemble,
                       device=device, dtype=dtype, channels_last=channels_last)
    # The float output is scale^2 times the input: it is clamped, scaled and rounded in place, so that
    # the host holds one float copy of it (lesrcnn-upscale's --max-pixels defaults count on that).
    sr = y[0].permute(1, 2, 0).numpy()
    np.clip(sr, 0, 1, out=sr)
    if gray:
        sr = (sr @ np.asarray(BT601_LUMA_RGB, dtype=np.float32))[..., None]
    else:
        sr = sr[..., ::-1]
    if alpha is not None:
        height, width = sr.shape[:2]
        resized = cv2.resize(alpha, (width, height), interpolation=cv2.INTER_CUBIC)
        sr = np.concatenate([sr, np.clip(resized, 0, 1)[..., None]], axis=2)
    np.clip(sr, 0, 1, out=sr)
    np.multiply(sr, pixel_max, out=sr)
    out = np.rint(sr, out=sr).astype(image.dtype)
    return out[..., 0] if image.ndim == 2 else out


__all__ = ['AUTO_TILE_LIMIT', 'BT601_LUMA_RGB', 'DIHEDRAL_TRANSFORMS', 'DTYPES', 'NonFiniteOutputError', 'auto_tile_size',
           'prepare_network', 'receptive_field_margin', 'resolve_device', 'self_ensemble_forward', 'tiled_forward',
           'upscale_image', 'upscale_tensor']
