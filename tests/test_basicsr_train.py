"""Smoke training through ``python -m lesrcnn_plugin.train`` on tiny LMDBs generated here.

Each run is a subprocess in a temporary working directory (BasicSR's logger is process-global), on
the shipped options with ``--force_yml`` overrides: a few iterations, batch 2, small patches, no
dataloader workers. Checked: checkpoints and training states are written under the working
directory, losses are finite, ``--auto_resume`` continues from the saved iteration, LESRCNN-S trains
one drawn scale per iteration and validates every scale.
"""
from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from lesrcnn_plugin.checkpoint import load_model
from lesrcnn_plugin.data import write_lmdb

REPO = Path(__file__).resolve().parents[1]
OPTIONS = REPO / 'options'
HR_SIZE = 48  # divisible by 2, 3 and 4
ITER_LINE = re.compile(r'iter:\s*([\d,]+), lr:.*?l_pix: (\S+)(?: grad_norm: (\S+))?(?: scale: (\S+))?')


def write_div2k_like(root: Path, scales=(2, 3, 4), count: int = 6, seed: int = 0) -> None:
    """HR/LR sub-image LMDBs and a two-image Set5 in the canonical layout under ``root/datasets``."""
    rng = np.random.default_rng(seed)
    images = [(f'{i + 1:04d}_s001', cv2.GaussianBlur(rng.integers(0, 256, (HR_SIZE, HR_SIZE, 3), np.uint8), (5, 5), 1.5))
              for i in range(count)]
    write_lmdb(root / 'datasets/DIV2K/DIV2K_train_HR_sub.lmdb', images)
    for k in scales:
        def downscale(image, k=k):
            return cv2.resize(image, (HR_SIZE // k, HR_SIZE // k), interpolation=cv2.INTER_AREA)
        write_lmdb(root / f'datasets/DIV2K/DIV2K_train_LR_bicubic_X{k}_sub.lmdb', [(key, downscale(im)) for key, im in images])
        for folder in ('HR', 'LR'):
            (root / f'datasets/benchmark/Set5/X{k}/{folder}').mkdir(parents=True)
        for key, image in images[:2]:
            cv2.imwrite(str(root / f'datasets/benchmark/Set5/X{k}/HR/{key}.png'), image)
            cv2.imwrite(str(root / f'datasets/benchmark/Set5/X{k}/LR/{key}.png'), downscale(image))


def train(cwd: Path, options: str, *overrides: str, resume: bool = False) -> subprocess.CompletedProcess:
    """Run the training entry point in ``cwd``; fail the test with BasicSR's output if it fails."""
    command = [sys.executable, '-m', 'lesrcnn_plugin.train', '-opt', str(OPTIONS / options)]
    if resume:
        command.append('--auto_resume')
    command += ['--force_yml', 'datasets:train:batch_size_per_gpu=2', 'datasets:train:num_worker_per_gpu=0',
                'logger:print_freq=1', *overrides]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f'training failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}'
    return result


def logged_iterations(log_file: Path) -> list[dict]:
    """The per-iteration lines of a BasicSR training log: iteration, loss, gradient norm, scale."""
    rows = []
    for line in log_file.read_text().splitlines():
        match = ITER_LINE.search(line)
        if match:
            it, loss, grad_norm, scale = match.groups()
            rows.append({'iter': int(it.replace(',', '')), 'l_pix': float(loss),
                         'grad_norm': None if grad_norm is None else float(grad_norm),
                         'scale': None if scale is None else int(float(scale))})
    return rows


def run_logs(experiment: Path) -> list[Path]:
    """Training logs of an experiment, one per run, oldest first."""
    return sorted(experiment.glob('train_*.log'))


def test_lesrcnn_x2_trains_and_resumes(tmp_path):
    write_div2k_like(tmp_path, scales=(2,))
    name = 'smoke_LESRCNN_x2'
    common = (f'name={name}', 'datasets:train:gt_size=16', 'logger:save_checkpoint_freq=2', 'val:val_freq=4')
    train(tmp_path, 'train_lesrcnn_x2.yml', *common, 'train:total_iter=4')

    experiment = tmp_path / 'experiments' / name
    assert sorted(p.name for p in (experiment / 'training_states').iterdir()) == ['2.state', '4.state']
    assert {'net_g_2.pth', 'net_g_4.pth', 'net_g_latest.pth'} <= {p.name for p in (experiment / 'models').iterdir()}
    assert list((tmp_path / 'tb_logger' / name).glob('events.out.tfevents.*')), 'tensorboard log not under the CWD'
    first = logged_iterations(run_logs(experiment)[0])
    assert [row['iter'] for row in first] == [1, 2, 3, 4]
    assert all(math.isfinite(row['l_pix']) and math.isfinite(row['grad_norm']) for row in first)
    # The checkpoint is BasicSR's format and holds the network of the options.
    net = load_model(experiment / 'models' / 'net_g_4.pth')
    assert type(net).__name__ == 'LESRCNN' and net.upscale == 2

    # fp16 (slow on a CPU) for the two resumed iterations only: its gradient scaler joins the state.
    train(tmp_path, 'train_lesrcnn_x2.yml', *common, 'train:total_iter=6', 'train:amp=fp16', resume=True)
    logs = run_logs(experiment)
    assert len(logs) == 2
    resumed_text = logs[1].read_text()
    assert 'Resuming training from epoch: 1, iter: 4.' in resumed_text
    assert f'{experiment / "models" / "net_g_4.pth"}' in resumed_text  # weights of the resumed iteration
    second = logged_iterations(logs[1])
    assert [row['iter'] for row in second] == [5, 6]
    assert all(math.isfinite(row['l_pix']) for row in second)
    assert (experiment / 'training_states' / '6.state').is_file()
    import torch
    state = torch.load(experiment / 'training_states' / '6.state', weights_only=True)
    assert state['iter'] == 6 and 'grad_scaler' in state  # fp16 keeps its loss scale across resumes


def test_multiscale_lesrcnn_trains_one_scale_per_iteration_and_resumes(tmp_path):
    from lesrcnn_plugin.basicsr.lesrcnn_model import draw_scale

    write_div2k_like(tmp_path)
    name = 'smoke_MultiScaleLESRCNN'
    common = (f'name={name}', 'datasets:train:lq_size=8', 'logger:save_checkpoint_freq=3', 'val:val_freq=3',
              'logger:use_tb_logger=false')
    train(tmp_path, 'train_multiscale_lesrcnn.yml', *common, 'train:total_iter=6')
    experiment = tmp_path / 'experiments' / name
    train(tmp_path, 'train_multiscale_lesrcnn.yml', *common, 'train:total_iter=9', 'train:amp=bf16', resume=True)

    first, second = (logged_iterations(log) for log in run_logs(experiment))
    assert [row['iter'] for row in first] == list(range(1, 7))
    assert [row['iter'] for row in second] == [7, 8, 9]
    rows = first + second
    assert all(math.isfinite(row['l_pix']) for row in rows)
    # One scale per iteration, drawn from the seed and the iteration (so the resumed run continues
    # the same sequence), and over these iterations every scale is trained.
    assert [row['scale'] for row in rows] == [draw_scale([2, 3, 4], 10, row['iter']) for row in rows]
    assert {row['scale'] for row in rows} == {2, 3, 4}
    assert sorted(p.name for p in (experiment / 'training_states').iterdir()) == ['3.state', '6.state', '9.state']

    # Every validation set reports PSNR and SSIM under its scale's name.
    text = run_logs(experiment)[1].read_text()
    for k in (2, 3, 4):
        block = re.search(rf'Validation Set5_x{k}\n\t # psnr: (\S+).*\n\t # ssim: (\S+)', text)
        assert block, f'no Set5_x{k} validation in the log'
        assert math.isfinite(float(block.group(1))) and 0 < float(block.group(2)) <= 1

    net = load_model(experiment / 'models' / 'net_g_latest.pth')
    assert type(net).__name__ == 'MultiScaleLESRCNN' and tuple(net.scales) == (2, 3, 4)


@pytest.mark.parametrize('argv, message', [
    (['-opt', 'missing.yml'], 'option file missing.yml not found'),
    (['-opt', str(OPTIONS / 'train_lesrcnn_x2.yml'), '--force_yml', 'nosuch:section:key=1'], 'has no section nosuch'),
    (['-opt', str(OPTIONS / 'train_lesrcnn_x2.yml'), '--force_yml', 'name=a=b'], 'exactly one "="'),
])
def test_train_entry_point_reports_user_errors(argv, message, capsys):
    from lesrcnn_plugin.train import main

    assert main(argv) == 1
    assert message in capsys.readouterr().err


def test_missing_training_data_is_reported_without_traceback(tmp_path):
    command = [sys.executable, '-m', 'lesrcnn_plugin.train', '-opt', str(OPTIONS / 'train_lesrcnn_x2.yml'),
               '--force_yml', 'logger:use_tb_logger=false']
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert 'lesrcnn-train: error:' in result.stderr and 'DIV2K_train_' in result.stderr
    assert 'Traceback' not in result.stderr
