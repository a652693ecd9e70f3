"""Two-process training on CPU (gloo) with each framework's own distributed engine (issue 22, part 4).

BasicSR: ``torchrun --nproc_per_node=2 -m lesrcnn_plugin.train -opt ... --launcher pytorch``, run
through a wrapper that only adds a hook writing each rank's weights when BasicSR saves its models.
After 3 steps both ranks hold the same weights, and those equal one process with twice the batch
(within 1e-5) on the same samples. How the samples are made the same: the patch is the whole
sub-image (``gt_size`` = its size) with flips and rotations off, so a sample does not depend on the
random state of its process, and BasicSR's ``EnlargedSampler`` shuffles by epoch alone: with 6
images, one process with batch 4 trains on the first 4 indices of the epoch's permutation, and
ranks 0 and 1 with batch 2 on its even and odd positions among them. DDP averages the two ranks'
gradients of the mean loss, which is the gradient of the mean over the 4 samples. The initial weights
come from one file (``pretrain_network_g``), and ``manual_seed`` is removed, so that each process
draws its own seed, as BasicSR does: the LESRCNN-S scale seed is still the same on both ranks.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from lesrcnn_plugin.archs import LESRCNN
from lesrcnn_plugin.data import write_lmdb

REPO = Path(__file__).resolve().parents[1]
STEPS = 3
HR_SIZE = 24


def write_div2k_x2(root: Path, count: int = 6) -> None:
    """Tiny DIV2K-layout LMDBs (x2) and a one-image Set5 under ``root/datasets``."""
    rng = np.random.default_rng(0)
    images = [(f'{i + 1:04d}_s001', rng.integers(0, 256, (HR_SIZE, HR_SIZE, 3), np.uint8)) for i in range(count)]
    lr = [(key, cv2.resize(image, (HR_SIZE // 2, HR_SIZE // 2), interpolation=cv2.INTER_AREA)) for key, image in images]
    write_lmdb(root / 'datasets/DIV2K/DIV2K_train_HR_sub.lmdb', images)
    write_lmdb(root / 'datasets/DIV2K/DIV2K_train_LR_bicubic_X2_sub.lmdb', lr)
    for folder, image in (('HR', images[0][1]), ('LR', lr[0][1])):
        (root / f'datasets/benchmark/Set5/X2/{folder}').mkdir(parents=True)
        cv2.imwrite(str(root / f'datasets/benchmark/Set5/X2/{folder}/img.png'), image)

RANK_HOOK = """
import json, runpy, sys
import torch
import torch.distributed as dist
import lesrcnn_plugin.basicsr
from lesrcnn_plugin.basicsr.lesrcnn_model import LESRCNNModel

save = LESRCNNModel.save

def save_every_rank(self, epoch, current_iter):
    save(self, epoch, current_iter)
    if current_iter > 0:
        rank = dist.get_rank() if dist.is_initialized() else 0
        torch.save(self.get_bare_model(self.net_g).state_dict(), f'rank{rank}_iter{current_iter}.pth')
        with open(f'rank{rank}_seeds.json', 'w') as f:
            json.dump({'manual_seed': self.opt['manual_seed'], 'scale_seed': self.scale_seed}, f)

LESRCNNModel.save = save_every_rank
runpy.run_module('lesrcnn_plugin.train', run_name='__main__', alter_sys=True)
"""


def run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600,
                            env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert result.returncode == 0, f'{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}'


@pytest.fixture
def basicsr_setup(tmp_path):
    write_div2k_x2(tmp_path)
    options = yaml.safe_load((REPO / 'options' / 'train_lesrcnn_x2.yml').read_text())
    del options['manual_seed']
    (tmp_path / 'options.yml').write_text(yaml.safe_dump(options))
    torch.manual_seed(0)
    torch.save(LESRCNN(upscale=2).state_dict(), tmp_path / 'initial.pth')
    (tmp_path / 'rank_hook.py').write_text(RANK_HOOK)
    return tmp_path


def basicsr_command(root: Path, name: str, batch: int) -> list[str]:
    return ['-opt', str(root / 'options.yml'), '--force_yml', f'name={name}', f'datasets:train:batch_size_per_gpu={batch}',
            'datasets:train:num_worker_per_gpu=0', f'datasets:train:gt_size={HR_SIZE}', 'datasets:train:use_hflip=false',
            'datasets:train:use_rot=false', f'path:pretrain_network_g={root / "initial.pth"}', f'train:total_iter={STEPS}',
            f'logger:save_checkpoint_freq={STEPS}', 'logger:use_tb_logger=false', 'val:val_freq=1000']


@pytest.mark.slow
def test_basicsr_two_processes_match_one_process_with_twice_the_batch(basicsr_setup):
    root = basicsr_setup
    (root / 'one').mkdir()
    (root / 'two').mkdir()
    for folder in ('one', 'two'):
        (root / folder / 'datasets').symlink_to(root / 'datasets')
    run([sys.executable, str(root / 'rank_hook.py'), *basicsr_command(root, 'one', 4)], root / 'one')
    run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', str(root / 'rank_hook.py'),
         *basicsr_command(root, 'two', 2), '--launcher', 'pytorch'], root / 'two')

    one = torch.load(root / 'one' / f'rank0_iter{STEPS}.pth')
    rank0 = torch.load(root / 'two' / f'rank0_iter{STEPS}.pth')
    rank1 = torch.load(root / 'two' / f'rank1_iter{STEPS}.pth')
    initial = torch.load(root / 'initial.pth')
    assert all(torch.equal(rank0[key], rank1[key]) for key in rank0), 'the ranks hold different weights'
    assert max(float((rank0[key] - one[key]).abs().max()) for key in one) <= 1e-5
    assert max(float((one[key] - initial[key]).abs().max()) for key in one) > 1e-5, 'training must move the weights'
    # BasicSR's own checkpoint (rank 0 writes it) holds those weights.
    saved = torch.load(root / 'two' / 'experiments' / 'two' / 'models' / f'net_g_{STEPS}.pth')['params']
    assert all(torch.equal(saved[key], rank0[key]) for key in saved)
    # Each process drew its own manual_seed; the LESRCNN-S scale seed is rank 0's on both.
    seeds = [yaml.safe_load((root / 'two' / f'rank{r}_seeds.json').read_text()) for r in (0, 1)]
    assert seeds[0]['scale_seed'] == seeds[1]['scale_seed'] == seeds[0]['manual_seed']


def test_basicsr_slurm_launcher_without_gpus_is_one_line_error(monkeypatch):
    from lesrcnn_plugin.basicsr import launch
    from lesrcnn_plugin.errors import ConfigError
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(ConfigError, match='--launcher slurm needs GPUs'):
        launch.init_dist('slurm')
