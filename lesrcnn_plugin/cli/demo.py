"""`make demo`: LESRCNN x2 on photographs that scikit-image ships: the authors' network, then fine-tuning.

Steps, all on the CPU:

1. Build a small DIV2K-style training set from scikit-image's bundled photographs: HR sub-images, LR
   made with the MATLAB-exact bicubic, written to LMDBs in the layout `lesrcnn-prepare-div2k` writes.
   Two photographs are held apart for evaluation.
   (Before anything else: the authors' trained x2 weights, `--weights` / $LESRCNN_OFFICIAL_WEIGHTS (a
   file or a registered name), else the registered name `lesrcnn_x2` (the cache, or a download with
   its SHA256 checked; $LESRCNN_WEIGHTS_MIRROR replaces the upstream address). When they cannot be
   had, the demo stops with one line saying why and how to get them, exit status 1, unless
   `--from-scratch` asks for the from-scratch run.)
2. Evaluate the authors' network against bicubic.
3. Train with BasicSR's own training pipeline (`python -m lesrcnn_plugin.train`) on the shipped recipe
   `train_lesrcnn_x2`, scaled down: by default fine-tuning the authors' network
   (`path: pretrain_network_g`), a real workflow for adapting LESRCNN to one's own images; with
   `--from-scratch`, from random weights, which a short CPU run cannot take past bicubic. The
   expected time, from a few training steps timed on this machine just before, is printed first.
4. Evaluate Y-PSNR/SSIM (border crop 2) on the held-apart images and print the signed change against
   the authors' network beside the change against bicubic; write a side-by-side PNG and print the
   complexity table.

Everything goes under ``--output`` (default ``demo_output/``).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml
from torch import nn

from ..archs import LESRCNN
from ..checkpoint import LoadedCheckpoint, load_checkpoint, load_model
from ..complexity import count_complexity, format_markdown, input_size
from ..data import crop_grid, extract, imresize, modcrop, scaled_crop, subimage_key, write_lmdb
from ..errors import LESRCNNError
from ..fileio import write_text_atomic
from ..image_io import read_image, write_image
from ..metrics import psnr_y, ssim_y
from ..recipes import find_recipe
from ._common import positive_int, requires_extras, run

SCALE = 2
# colorwheel gives the few photographs (mostly reds and browns) every hue.
TRAIN_IMAGES = ('astronaut', 'rocket', 'hubble_deep_field', 'immunohistochemistry', 'retina', 'colorwheel')
HELD_APART = ('chelsea', 'coffee')
HR_CROP, HR_STEP = 192, 96  # DIV2K uses 480/240; smaller crops give more sub-images from few photos
# Fine-tuning a trained network wants a small step, and few of them: on these few photographs longer
# runs learn the training photographs rather than super-resolution (see the README for the figures).
# Training from scratch for a few minutes wants a large step.
FINE_TUNE_ITERS, FINE_TUNE_LR = 40, 1e-5
SCRATCH_ITERS, SCRATCH_LR = 1000, 5e-4
OPTIONS = find_recipe('train_lesrcnn_x2', kind='options').path  # the installed copy, or the clone's


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--output', default='demo_output', help='folder for data, experiment and results')
    parser.add_argument('--iters', type=positive_int,
                        help=f'training iterations (default: {FINE_TUNE_ITERS} when fine-tuning, {SCRATCH_ITERS} '
                             'from scratch)')
    parser.add_argument('--batch-size', type=positive_int, default=8, help='training batch size')
    parser.add_argument('--lr-patch', type=positive_int, default=32, help='LR training patch size (HR patch = 2x)')
    parser.add_argument('--lr', type=float,
                        help=f'learning rate (default: {FINE_TUNE_LR:g} when fine-tuning, {SCRATCH_LR:g} from '
                             'scratch; the paper uses 1e-4 over 600k iterations)')
    parser.add_argument('--weights', '--official-weights', dest='weights',
                        default=os.environ.get('LESRCNN_OFFICIAL_WEIGHTS') or 'lesrcnn_x2',
                        help="the authors' x2 weights: a file or a registered name (default: "
                             '$LESRCNN_OFFICIAL_WEIGHTS, else lesrcnn_x2, downloaded once into the cache)')
    parser.add_argument('--from-scratch', action='store_true',
                        help="train from random weights instead of fine-tuning the authors' (which are still "
                             'evaluated when available); without it, the demo stops if they cannot be had')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    args.iters = args.iters or (SCRATCH_ITERS if args.from_scratch else FINE_TUNE_ITERS)
    args.lr = args.lr or (SCRATCH_LR if args.from_scratch else FINE_TUNE_LR)
    return args


def rgb_photo(name: str) -> np.ndarray:
    """A scikit-image sample photograph as HxWx3 RGB uint8."""
    import skimage.data

    image = getattr(skimage.data, name)()
    return image[..., :3] if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)


def build_dataset(root: Path) -> tuple[int, Path]:
    """Training LMDBs and the held-apart evaluation pairs; returns the number of sub-images.

    Sub-images follow ``lesrcnn-prepare-div2k``'s grid (``thresh_size`` 0: a last crop flush with the
    far edge) and keys (``0001_s001``), with the LR crops co-located with the HR ones.
    """
    lr_crop, _ = scaled_crop(HR_CROP, HR_STEP, SCALE)
    hr_items, lr_items = [], []
    for index, name in enumerate(TRAIN_IMAGES, start=1):
        hr = cv2.cvtColor(modcrop(rgb_photo(name), SCALE), cv2.COLOR_RGB2BGR)
        lr = imresize(hr, 1 / SCALE)
        positions = crop_grid(hr.shape[0], hr.shape[1], HR_CROP, HR_STEP)
        keys = [subimage_key(f'{index:04d}', number) for number in range(1, len(positions) + 1)]
        hr_items += zip(keys, extract(hr, positions, HR_CROP))
        lr_items += zip(keys, extract(lr, [(top // SCALE, left // SCALE) for top, left in positions], lr_crop))
    # The demo's own generated data: a rerun replaces it.
    write_lmdb(root / 'train_HR_sub.lmdb', hr_items, overwrite=True)
    write_lmdb(root / f'train_LR_bicubic_X{SCALE}_sub.lmdb', lr_items, overwrite=True)

    val = root / 'held_apart'
    for name in HELD_APART:
        hr = cv2.cvtColor(modcrop(rgb_photo(name), SCALE), cv2.COLOR_RGB2BGR)
        write_image(val / 'HR' / f'{name}.png', hr)
        write_image(val / 'LR' / f'{name}.png', imresize(hr, 1 / SCALE))
    return len(hr_items), val


def training_options(args: argparse.Namespace, data: Path, val: Path, pretrained: str | None) -> dict:
    """The shipped x2 recipe, scaled down for a short CPU run; fine-tuning from ``pretrained`` if given."""
    if not OPTIONS.is_file():
        raise FileNotFoundError(f'{OPTIONS}: the shipped training options are missing (run from a clone)')
    opt = yaml.safe_load(OPTIONS.read_text())
    opt.update(name='demo_lesrcnn_x2', num_gpu=0, manual_seed=args.seed)
    train_set = opt['datasets']['train']
    train_set.update(dataroot_gt=str(data / 'train_HR_sub.lmdb'),
                     dataroot_lq=str(data / f'train_LR_bicubic_X{SCALE}_sub.lmdb'),
                     gt_size=args.lr_patch * SCALE, batch_size_per_gpu=args.batch_size, num_worker_per_gpu=0,
                     dataset_enlarge_ratio=1, prefetch_mode=None)
    train_set.pop('pin_memory', None)
    opt['datasets'] = {'train': train_set, 'val': {
        'name': 'held_apart', 'type': 'PairedImageDataset', 'dataroot_gt': str(val / 'HR'),
        'dataroot_lq': str(val / 'LR'), 'io_backend': {'type': 'disk'}}}
    train = opt['train']
    train['optim_g']['lr'] = args.lr
    train['scheduler'].update(milestones=[args.iters * 3 // 4], gamma=0.5)
    train['total_iter'] = args.iters
    opt['val']['val_freq'] = 10 * args.iters  # BasicSR validates once more when training ends
    opt['logger'].update(print_freq=max(1, args.iters // 10), save_checkpoint_freq=args.iters, use_tb_logger=False)
    opt['logger'].pop('wandb', None)
    # LESRCNNModel reads any format or a registered name here (the authors' file as it is released).
    opt['path'] = {'pretrain_network_g': pretrained, 'strict_load_g': True, 'resume_state': None}
    return opt


def evaluate(model: torch.nn.Module | None, val: Path) -> tuple[dict[str, np.ndarray], float, float]:
    """SR (bicubic when ``model`` is None) of each held-apart image; mean Y-PSNR and SSIM."""
    outputs, psnrs, ssims = {}, [], []
    for name in HELD_APART:
        hr = read_image(val / 'HR' / f'{name}.png')[..., ::-1]
        lr = read_image(val / 'LR' / f'{name}.png')[..., ::-1]
        if model is None:
            sr = imresize(lr, SCALE)
        else:
            with torch.inference_mode():
                x = torch.from_numpy(lr.copy()).permute(2, 0, 1)[None].float() / 255
                y = model(x)[0].clamp(0, 1).permute(1, 2, 0).numpy()
            sr = np.round(y * 255).astype(np.uint8)
        outputs[name] = sr
        psnrs.append(psnr_y(sr, hr, SCALE))
        ssims.append(ssim_y(sr, hr, SCALE))
    return outputs, float(np.mean(psnrs)), float(np.mean(ssims))


def side_by_side(panels: list[tuple[str, np.ndarray]], path: Path) -> None:
    """Label each RGB panel and write them next to each other as one PNG."""
    labelled = []
    for label, image in panels:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        bar = np.full((28, image.shape[1], 3), 255, np.uint8)
        cv2.putText(bar, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        labelled.append(np.vstack([bar, image]))
    gap = np.full((labelled[0].shape[0], 4, 3), 255, np.uint8)
    write_image(path, np.hstack([part for panel in labelled for part in (panel, gap)][:-1]))


def complexity_table() -> str:
    """Per-block parameters, MACs, FLOPs and activations of LESRCNN x2 for a 720p output."""
    return format_markdown([count_complexity(LESRCNN(upscale=SCALE), input_size(SCALE, preset='720p'))])


class WeightsUnavailableError(LESRCNNError):
    """The authors' weights cannot be had, and from-scratch training was not asked for."""


def authors_weights(args: argparse.Namespace) -> LoadedCheckpoint | None:
    """The authors' network from a file or a registered name.

    When it cannot be had, the demo stops in one line (a long run that cannot show what was asked
    for must not start unasked), or, with ``--from-scratch``, says so and returns None.
    """
    try:
        return load_checkpoint(args.weights)
    except LESRCNNError as exc:
        if not args.from_scratch:
            raise WeightsUnavailableError(
                f"the demo fine-tunes the authors' LESRCNN x2 weights, which are not available: {exc} "
                '(--weights or LESRCNN_OFFICIAL_WEIGHTS takes a file); or pass --from-scratch (make demo '
                f'DEMO_ARGS=--from-scratch) to train from random weights instead, {SCRATCH_ITERS} iterations '
                "by default: minutes on idle cores, and a short CPU run ends below bicubic") from None
        print(f"      the authors' weights are not available ({exc}); training from scratch, as asked")
        return None


def seconds_per_iteration(args: argparse.Namespace, steps: int = 3) -> float:
    """One training step of the demo's batch, timed on this machine now (so a busy machine shows).

    The network, batch, loss and optimiser of the run, on random data; the first step (allocation,
    warm-up) is not counted.
    """
    network = LESRCNN(upscale=SCALE)
    optimizer = torch.optim.Adam(network.parameters(), lr=args.lr)
    lr = torch.rand(args.batch_size, 3, args.lr_patch, args.lr_patch)
    hr = torch.rand(args.batch_size, 3, args.lr_patch * SCALE, args.lr_patch * SCALE)
    times = []
    for _ in range(steps):
        begin = time.perf_counter()
        optimizer.zero_grad()
        nn.functional.mse_loss(network(lr), hr).backward()
        optimizer.step()
        times.append(time.perf_counter() - begin)
    return float(np.mean(times[1:]))


def expected_duration(args: argparse.Namespace) -> str:
    """The training run's expected length, from steps timed now, for the line printed before it starts."""
    per_step = seconds_per_iteration(args)
    # BasicSR's start-up and the closing validation come on top of the steps.
    seconds = per_step * args.iters + 30
    duration = f'{seconds:.0f} s' if seconds < 120 else f'{seconds / 60:.0f} min'
    return (f'expected: about {duration} ({per_step:.2f} s per iteration timed just now on '
            f'{torch.get_num_threads()} threads; longer if the machine gets busier)')


def signed_changes(score: float, authors: float | None, bicubic: float) -> str:
    """``+0.04 dB against the authors' network, +2.69 dB against bicubic`` (the first when known)."""
    changes = [] if authors is None else [f"{score - authors:+.2f} dB against the authors' network"]
    return ', '.join(changes + [f'{score - bicubic:+.2f} dB against bicubic'])


def demo(args: argparse.Namespace) -> int:
    torch.manual_seed(args.seed)
    out = Path(args.output).resolve()
    data = out / 'data'
    start = time.time()
    authors = authors_weights(args)  # first: without them (and without --from-scratch) nothing else runs

    print(f'[1/6] building the training set from scikit-image photographs in {data}', flush=True)
    count, val = build_dataset(data)
    print(f'      {count} HR/LR sub-image pairs from {len(TRAIN_IMAGES)} photographs; '
          f'held apart: {", ".join(HELD_APART)}')

    print(f"[2/6] the authors' LESRCNN x2 weights ({args.weights})", flush=True)
    bicubic, *bicubic_scores = evaluate(None, val)
    rows = [('bicubic (MATLAB)', *bicubic_scores)]
    authors_psnr = None
    if authors is not None:
        authors_outputs, authors_psnr, authors_ssim = evaluate(authors.model, val)
        rows.append(("LESRCNN x2, the authors' weights", authors_psnr, authors_ssim))
        print(f'      held-apart images: {authors_psnr:.2f} dB against {bicubic_scores[0]:.2f} dB for bicubic')
    # The training runs in another folder: it gets the weights' absolute path.
    pretrained = None if args.from_scratch else str(authors.path.resolve())
    mode = "fine-tuning the authors' network" if pretrained else 'from scratch'

    print(f'[3/6] training LESRCNN x2 through BasicSR for {args.iters} iterations, {mode} (CPU, learning rate '
          f'{args.lr:g})\n      {expected_duration(args)}', flush=True)
    options_path = out / 'train_demo_lesrcnn_x2.yml'
    write_text_atomic(options_path, yaml.safe_dump(training_options(args, data, val, pretrained), sort_keys=False))
    command = [sys.executable, '-m', 'lesrcnn_plugin.train', '-opt', str(options_path)]
    if subprocess.run(command, cwd=out).returncode != 0:
        raise LESRCNNError(f'training failed ({" ".join(command)})')
    checkpoint = out / 'experiments' / 'demo_lesrcnn_x2' / 'models' / f'net_g_{args.iters}.pth'

    print('[4/6] evaluating on the held-apart images (Y channel, border crop 2)', flush=True)
    trained, trained_psnr, trained_ssim = evaluate(load_model(checkpoint), val)
    label = 'fine-tuned' if pretrained else 'from scratch'
    rows.append((f'LESRCNN x2, {args.iters} iterations {label}', trained_psnr, trained_ssim))
    print('\n| method | PSNR-Y (dB) | SSIM-Y |\n|---|---|---|')
    for row_label, psnr, ssim in rows:
        print(f'| {row_label} | {psnr:.2f} | {ssim:.4f} |')
    print(f'\n      {label.capitalize()}: {trained_psnr:.2f} dB on photographs it never saw, '
          f'{signed_changes(trained_psnr, authors_psnr, bicubic_scores[0])}.')
    if not pretrained:
        print(f'      The paper trains 600,000 iterations of batch 64 on DIV2K; {args.iters} small CPU iterations on '
              f"{len(TRAIN_IMAGES)} photographs exercise the pipeline, they do not reach bicubic's quality.")

    print('\n[5/6] writing the side-by-side comparison', flush=True)
    name = HELD_APART[0]
    hr = read_image(val / 'HR' / f'{name}.png')[..., ::-1]
    panels = [('bicubic', bicubic[name])]
    if authors is not None:
        panels.append(("LESRCNN (authors')", authors_outputs[name]))
    panels += [('LESRCNN (fine-tuned)' if pretrained else 'LESRCNN (demo, from scratch)', trained[name]),
               ('ground truth', hr)]
    figure = out / 'comparison.png'
    side_by_side(panels, figure)
    print(f'      {figure}')

    print('[6/6] complexity of LESRCNN x2 (720p output)\n', flush=True)
    print(complexity_table())
    print(f'\ndone in {time.time() - start:.0f} s; everything is under {out}')
    return 0


@requires_extras('demo', 'basicsr', command='lesrcnn-demo')
def main(argv=None) -> int:
    args = parse_args(argv)
    return run(lambda: demo(args))


if __name__ == '__main__':
    sys.exit(main())
