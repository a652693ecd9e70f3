#!/usr/bin/env python
"""Time and peak memory of three ways to upscale a large image on this machine (docs/inference.md).

Methods, each run in a fresh subprocess (its peak resident memory is ``resource.getrusage``'s
``ru_maxrss``: torch allocations are invisible to tracemalloc):

* ``untiled``: ``lesrcnn-upscale --tile 0``'s call, ``upscale_image(prepare_network(model), image)``;
* ``auto``: ``lesrcnn-upscale``'s default, ``upscale_image(..., tile='auto')`` (``auto_tile_size``);
* ``comfyui``: what ComfyUI's "Upscale Image (using Model)" does: spandrel's ``ImageModelDescriptor``
  (``ModelLoader().load_from_state_dict``) called on 512-pixel tiles overlapping by 32 pixels, blended
  by linear ramps, then clamped and converted to 8 bits by truncation as its "Save Image" does.
  ``comfyui_tiled_scale`` below is a small rewrite of the 2-D case of ``tiled_scale`` /
  ``tiled_scale_multidim`` in ComfyUI's ``comfy/utils.py`` (Comfy-Org/ComfyUI, as called by
  ``comfy_extras/nodes_upscale_model.py``), not a copy.

Each timing covers the upscale from the decoded 8-bit image to the 8-bit result (model loading and
file I/O excluded). Repeats are interleaved (every method of every case once, in a rotating order,
then again) so that a machine whose load changes affects all methods alike; the report gives
medians and ranges. The first repeat also keeps the outputs, rounded to 8 bits (ComfyUI's own
truncation aside), and compares them with the untiled one.

    python tools/measure_upscale_tiling.py --repeats 3 --cases 1100x700x4 960x540x4 --out results.jsonl

Images: a Set5 photograph (``../shared``) resized to the case's size, else a smooth synthetic image;
weights: the authors' (``../shared``), else a seeded random network (timings alike; seam figures
then mean nothing).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get('LESRCNN_SHARED_DIR', REPO.parent / 'shared'))
METHODS = ('untiled', 'auto', 'comfyui')
COMFYUI_TILE, COMFYUI_OVERLAP = 512, 32


def comfyui_tiled_scale(x, function, scale: int, tile: int = COMFYUI_TILE, overlap: int = COMFYUI_OVERLAP):
    """ComfyUI's tiled upscale of an (N, C, H, W) tensor, rewritten for 2-D (see the module docstring).

    An image no larger than ``tile`` a side runs whole. Otherwise tiles start every ``tile - overlap``
    pixels (the last start clamped to ``size - overlap``; a last tile may be shorter), each runs on
    its own (zero padding at its edges), and its output is weighted by a mask that ramps linearly
    over ``overlap * scale`` pixels at every edge of the tile; the sum is divided by the summed masks.
    """
    import torch

    batch, _, height, width = x.shape
    if height <= tile and width <= tile:
        return function(x)

    def starts(size):
        if size <= tile:
            return [0]
        return [max(0, min(size - overlap, start)) for start in range(0, size - overlap, tile - overlap)]

    def ramp(length, feather):
        weights = torch.ones(length)
        if feather < length:
            steps = torch.arange(1, feather + 1, dtype=torch.float32) / feather
            weights[:feather] *= steps
            weights[length - feather:] *= steps.flip(0)
        return weights

    feather = round(overlap * scale)
    output = torch.zeros(batch, 3, height * scale, width * scale)
    weight = torch.zeros(1, 1, height * scale, width * scale)
    for top in starts(height):
        for left in starts(width):
            piece = function(x[..., top:top + tile, left:left + tile])
            h, w = piece.shape[-2:]
            mask = ramp(h, feather)[:, None] * ramp(w, feather)[None, :]
            output[..., top * scale:top * scale + h, left * scale:left * scale + w] += piece * mask
            weight[..., top * scale:top * scale + h, left * scale:left * scale + w] += mask
    return output.div_(weight)


def test_image(height: int, width: int) -> np.ndarray:
    """An 8-bit BGR photograph of the case's size (Set5 butterfly, resized), or a synthetic one."""
    import cv2

    photo = SHARED / 'datasets' / 'Set5' / 'HR' / 'butterfly.png'
    if photo.is_file():
        return cv2.resize(cv2.imread(str(photo)), (width, height), interpolation=cv2.INTER_CUBIC)
    noise = np.random.default_rng(0).integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), np.uint8)
    return cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)


def state_dict(scale: int) -> tuple[dict, str]:
    import torch

    from lesrcnn_plugin.archs import LESRCNN
    from lesrcnn_plugin.safe_load import load_untrusted

    weights = SHARED / 'weights' / 'lesrcnn_official' / f'lesrcnn_x{scale}.pth'
    if weights.is_file():
        return dict(load_untrusted(weights)), 'authors'
    torch.manual_seed(0)
    return LESRCNN(upscale=scale).state_dict(), 'random'


def child(method: str, height: int, width: int, scale: int, keep: str | None) -> dict:
    """One timed upscale in this process; returns the measurements (and saves the output to ``keep``)."""
    import torch

    from lesrcnn_plugin.checkpoint import load_model
    from lesrcnn_plugin.inference import auto_tile_size, prepare_network, receptive_field_margin, upscale_image

    image = test_image(height, width)
    weights, origin = state_dict(scale)
    tile = None
    if method == 'comfyui':
        import spandrel

        import lesrcnn_plugin.spandrel  # noqa: F401  (registers LESRCNN, as the custom node does)

        descriptor = spandrel.ModelLoader().load_from_state_dict(weights).eval()

        def run(bgr):
            rgb = torch.from_numpy(bgr[..., ::-1].astype(np.float32) / 255)[None]  # ComfyUI's B x H x W x C
            with torch.inference_mode():
                out = comfyui_tiled_scale(rgb.movedim(-1, -3), lambda a: descriptor(a.float()), descriptor.scale)
            out = torch.clamp(out.movedim(-3, -1), 0, 1)[0].numpy()
            saved = np.clip(255.0 * out, 0, 255).astype(np.uint8)[..., ::-1]  # "Save Image" truncates
            # Compared rounded, as lesrcnn-upscale rounds: the differences left are the tiling's.
            return saved, np.rint(255.0 * out).astype(np.uint8)[..., ::-1]
    else:
        with tempfile.TemporaryDirectory() as folder:
            torch.save(weights, Path(folder) / 'weights.pth')
            model = load_model(Path(folder) / 'weights.pth')
        network = prepare_network(model)
        tile = 'auto' if method == 'auto' else None

        def run(bgr):
            result = upscale_image(network, bgr, tile=tile)
            return result, result
        if tile == 'auto':
            tile = auto_tile_size(height, width, receptive_field_margin(model))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start, cpu_start = time.perf_counter(), time.process_time()
    _, rounded = run(image)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if keep:
        np.save(keep, rounded)
    # CPU seconds (all threads) beside the wall time: on a machine shared with other work they show
    # the cost of a method apart from the share of the CPU it happened to get.
    return {'method': method, 'seconds': seconds, 'cpu_seconds': cpu_seconds, 'peak_rss_mb': peak / 1024, 'before_run_rss_mb': before / 1024,
            'tile': tile, 'weights': origin, 'threads': torch.get_num_threads()}


def compare(outputs: dict[str, Path]) -> dict:
    """Largest difference from the untiled output, in 8-bit levels, and the share of pixels that differ."""
    reference = np.load(outputs['untiled']).astype(np.int16)
    report = {}
    for method, path in outputs.items():
        diff = np.abs(np.load(path).astype(np.int16) - reference)
        report[method] = {'max_levels': int(diff.max()), 'differing_share': float((diff > 0).mean()),
                          'over_1_level_share': float((diff > 1).mean())}
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--cases', nargs='+', default=['1100x700x4', '960x540x4'], metavar='WxHxSCALE')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--methods', nargs='+', default=list(METHODS), choices=METHODS)
    parser.add_argument('--out', default='upscale_tiling.jsonl', help='one JSON line per run, appended as they end')
    parser.add_argument('--child', nargs=5, metavar=('METHOD', 'H', 'W', 'SCALE', 'KEEP'), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        method, height, width, scale, keep = args.child
        print(json.dumps(child(method, int(height), int(width), int(scale), keep if keep != '-' else None)))
        return 0

    cases = [tuple(int(v) for v in case.split('x')) for case in args.cases]
    runs = {}
    with tempfile.TemporaryDirectory() as folder, open(args.out, 'a') as log:
        for repeat in range(args.repeats):
            for index, (width, height, scale) in enumerate(cases):
                rotation = (repeat + index) % len(args.methods)
                for method in args.methods[rotation:] + args.methods[:rotation]:
                    keep = str(Path(folder) / f'{width}x{height}_{method}.npy') if repeat == 0 else '-'
                    command = [sys.executable, __file__, '--child', method, str(height), str(width), str(scale), keep]
                    result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
                    result.update(case=f'{width}x{height}x{scale}', repeat=repeat, load_average=os.getloadavg()[0])
                    print(json.dumps(result), file=log, flush=True)
                    print(json.dumps(result), flush=True)
                    runs.setdefault((result['case'], method), []).append(result)
                if repeat == 0 and 'untiled' in args.methods:
                    outputs = {m: Path(folder) / f'{width}x{height}_{m}.npy' for m in args.methods}
                    seams = {'case': f'{width}x{height}x{scale}', 'versus_untiled': compare(outputs)}
                    print(json.dumps(seams), file=log, flush=True)
                    print(json.dumps(seams), flush=True)
    for (case, method), results in runs.items():
        times, cpu = [r['seconds'] for r in results], [r['cpu_seconds'] for r in results]
        print(f'{case} {method:8s} median {statistics.median(times):7.1f} s, '
              f'range {min(times):.1f}-{max(times):.1f} s, CPU median {statistics.median(cpu):.1f} s, '
              f'peak RSS {max(r["peak_rss_mb"] for r in results):.0f} MB  ({len(times)} runs)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
