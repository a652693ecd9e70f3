#!/usr/bin/env python
"""bf16 autocast against fp32 over the first iterations of the x2 recipe (BasicSR's LESRCNNModel).

Both runs build ``LESRCNNModel`` from ``options/train_lesrcnn_x2.yml`` (``train: amp`` false, then
bf16), start from the same weights and train on the same batches: random LR patches of scikit-image's
astronaut (bundled with scikit-image, no download), HR patch = the image, LR = its MATLAB bicubic
(``lesrcnn_plugin.data.imresize``), random flips/rotations of BasicSR's ``augment``. The losses are
smoothed over a window (as a training log would show them) and compared.

    python tools/check_mixed_precision.py --iters 300 --batch 8 --lr-patch 24 --device cpu

Prints a Markdown table for docs/benchmarks.md ("Mixed precision: bf16 against fp32").
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import torch

import lesrcnn_plugin.basicsr  # noqa: F401  (registers the model; installs the torchvision alias first)
from basicsr.data.transforms import augment
from basicsr.models import build_model
from basicsr.utils.options import parse_options
from lesrcnn_plugin.data import imresize

OPTIONS = str(Path(__file__).resolve().parents[1] / 'options' / 'train_lesrcnn_x2.yml')


def batches(iters: int, batch: int, lr_patch: int, seed: int = 0):
    """``iters`` LR/HR batches (x2) cut from the astronaut image, float in [0, 1], NCHW."""
    from skimage.data import astronaut
    hr_image = astronaut()[:, :, ::-1]  # BGR, as BasicSR's datasets read images
    lr_image = imresize(hr_image, 1 / 2)
    rng = random.Random(seed)
    out = []
    for _ in range(iters):
        lqs, gts = [], []
        for _ in range(batch):
            top, left = rng.randrange(lr_image.shape[0] - lr_patch), rng.randrange(lr_image.shape[1] - lr_patch)
            lq = lr_image[top:top + lr_patch, left:left + lr_patch].astype(np.float32) / 255
            gt = hr_image[2 * top:2 * (top + lr_patch), 2 * left:2 * (left + lr_patch)].astype(np.float32) / 255
            random.seed(rng.random())
            gt, lq = augment([gt.copy(), lq.copy()], True, True)
            lqs.append(torch.from_numpy(np.ascontiguousarray(lq.transpose(2, 0, 1))))
            gts.append(torch.from_numpy(np.ascontiguousarray(gt.transpose(2, 0, 1))))
        out.append({'lq': torch.stack(lqs), 'gt': torch.stack(gts)})
    return out


def train_losses(amp: str, data, device: str, seed: int = 0) -> list[float]:
    """Losses of LESRCNNModel (x2 options, ``train: amp`` set) over ``data``, from seeded weights."""
    num_gpu = 1 if device == 'cuda' else 0
    argv = ['check_mixed_precision', '-opt', OPTIONS, '--force_yml', f'num_gpu={num_gpu}', f'train:amp={amp}']
    with tempfile.TemporaryDirectory() as root, mock.patch.object(sys, 'argv', argv):
        opt, _ = parse_options(root, is_train=True)
    torch.manual_seed(seed)
    model = build_model(opt)
    losses = []
    for current_iter, batch in enumerate(data, start=1):
        model.update_learning_rate(current_iter, warmup_iter=-1)
        model.feed_data(batch)
        model.optimize_parameters(current_iter)
        losses.append(model.log_dict['l_pix'])
    return losses


def smoothed(values: list[float], window: int) -> np.ndarray:
    """Trailing mean over ``window`` iterations (fewer at the start)."""
    cumulative = np.cumsum(np.insert(np.asarray(values, dtype=np.float64), 0, 0.0))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)


def compare(fp32: list[float], bf16: list[float], window: int) -> dict:
    """Per-iteration and smoothed relative deviations of the bf16 losses from the fp32 ones."""
    raw = np.abs(np.asarray(bf16) - np.asarray(fp32)) / np.asarray(fp32)
    smooth = np.abs(smoothed(bf16, window) - smoothed(fp32, window)) / smoothed(fp32, window)
    return {'max_raw': float(raw.max()), 'median_raw': float(np.median(raw)), 'max_smoothed': float(smooth.max()),
            'smoothed_fp32': smoothed(fp32, window), 'smoothed_bf16': smoothed(bf16, window)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--lr-patch', type=int, default=24, help='LR patch size (the recipe: 64)')
    parser.add_argument('--window', type=int, default=20, help='smoothing window, iterations')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    args = parser.parse_args(argv)
    data = batches(args.iters, args.batch, args.lr_patch)
    fp32 = train_losses('false', data, args.device)
    bf16 = train_losses('bf16', data, args.device)
    result = compare(fp32, bf16, args.window)
    print(f'{args.iters} iterations, batch {args.batch}, LR patch {args.lr_patch}, device {args.device}, '
          f'torch {torch.__version__}\n')
    print(f'| iteration | fp32 loss (mean of last {args.window}) | bf16 loss | bf16 / fp32 |')
    print('|---|---|---|---|')
    for it in sorted({args.window, *range(50, args.iters + 1, 50), args.iters}):
        f, b = result['smoothed_fp32'][it - 1], result['smoothed_bf16'][it - 1]
        print(f'| {it} | {f:.5f} | {b:.5f} | {b / f:.4f} |')
    print(f'\nper-iteration |bf16 - fp32| / fp32: median {result["median_raw"]:.4f}, max {result["max_raw"]:.4f}; '
          f'smoothed over {args.window}: max {result["max_smoothed"]:.4f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
