"""Two-process training on CPU (gloo) with each framework's own distributed engine (issue 22, part 4).

Both frameworks are run as their docs say, under torchrun with ``--launcher pytorch``, for 3 steps.
Both ranks then hold the same weights, and those equal one process with twice the batch (within
1e-5) on the same samples. DDP averages the two ranks' gradients of their mean losses, which is the
gradient of the mean loss over the four samples of one process's batch.

The samples are made the same as follows. The patch is the whole sub-image (the crop size equals its
size) and flips and rotations are off, so a sample does not depend on the random state of its
process. The order of the samples then depends on the sampler alone:

* BasicSR's ``EnlargedSampler`` shuffles by epoch alone. With 6 images, one process with batch 4
  trains on the first 4 indices of the epoch's permutation. Ranks 0 and 1 with batch 2 train on its
  even and odd positions among them.
* mmengine's ``InfiniteSampler``, given a seed (``train_dataloader.sampler.seed=0``), draws one
  endless stream of permutations, the same in every process. One process with batch 4 takes its
  next 4 indices per step; rank ``r`` of 2 takes positions ``r`` and ``r + 2`` of them.

The initial weights come from one file (BasicSR's ``pretrain_network_g``, MMagic's ``load_from``).

How each rank's weights are read: both frameworks save checkpoints from rank 0 only, so rank 1's
weights can only be seen from inside its process.

* MMagic: a hook of the test's own, loaded through the config's ``custom_imports`` (MMagic's way of
  adding user code). The command stays the documented one.
* BasicSR has no such way: its options cannot import user code. So the two-process run goes through
  a wrapper that adds one hook, writing each rank's weights (and LESRCNN-S scale seed) when BasicSR
  saves its models. The one-process run is the bare command, and the wrapper's rank-0 weights must
  equal the ``net_g_3.pth`` that BasicSR itself writes. The bare documented command
  (``torchrun --standalone --nproc_per_node=2 -m lesrcnn_plugin.basicsr.train -opt ... --launcher pytorch``)
  also runs once, for one step, and must exit 0 and write its checkpoint.
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
TORCHRUN = str(Path(sys.executable).with_name('torchrun'))
STEPS = 3
HR_SIZE = 24
# Adam moves a weight by about lr (1e-4) per step at most: 3 steps from the initial file stay well
# within this, and weights that were never loaded (a fresh random network) do not.
NEAR_INITIAL = 1e-3


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


def run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600,
                            env={**os.environ, 'OMP_NUM_THREADS': '1', **env})
    assert result.returncode == 0, f'{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}'
    return result


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[key] - b[key]).abs().max()) for key in a)


def assert_ranks_agree_and_match_one_process(rank0: dict, rank1: dict, one: dict, initial: dict) -> None:
    assert all(torch.equal(rank0[key], rank1[key]) for key in rank0), 'the ranks hold different weights'
    assert max_difference(rank0, one) <= 1e-5
    assert 1e-5 < max_difference(one, initial) < NEAR_INITIAL, 'training must start from the file and move'


@pytest.fixture
def workspace(tmp_path):
    write_div2k_x2(tmp_path)
    torch.manual_seed(0)
    torch.save(LESRCNN(upscale=2).state_dict(), tmp_path / 'initial.pth')
    for folder in ('one', 'two'):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / 'datasets').symlink_to(tmp_path / 'datasets')
    return tmp_path


# ------------------------------------------------------------------------------------------ BasicSR

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
runpy.run_module('lesrcnn_plugin.basicsr.train', run_name='__main__', alter_sys=True)
"""


@pytest.fixture
def basicsr_setup(workspace):
    options = yaml.safe_load((REPO / 'options' / 'train_lesrcnn_x2.yml').read_text())
    # Each process draws its own seed, as BasicSR does without one: the LESRCNN-S scale seed must
    # still be the same on both ranks.
    del options['manual_seed']
    (workspace / 'options.yml').write_text(yaml.safe_dump(options))
    (workspace / 'rank_hook.py').write_text(RANK_HOOK)
    return workspace


def basicsr_options(root: Path, name: str, batch: int, steps: int = STEPS, options: Path | None = None) -> list[str]:
    return ['-opt', str(options or root / 'options.yml'), '--force_yml', f'name={name}', f'datasets:train:batch_size_per_gpu={batch}',
            'datasets:train:num_worker_per_gpu=0', f'datasets:train:gt_size={HR_SIZE}', 'datasets:train:use_hflip=false',
            'datasets:train:use_rot=false', f'path:pretrain_network_g={root / "initial.pth"}', f'train:total_iter={steps}',
            f'logger:save_checkpoint_freq={steps}', 'logger:use_tb_logger=false', 'val:val_freq=1000']


def basicsr_weights(folder: Path, name: str, steps: int = STEPS) -> dict:
    """The generator weights BasicSR saved at ``steps`` in ``folder/experiments/name``."""
    return torch.load(folder / 'experiments' / name / 'models' / f'net_g_{steps}.pth')['params']


@pytest.mark.slow
def test_basicsr_two_processes_match_one_process_with_twice_the_batch(basicsr_setup):
    root = basicsr_setup
    run([sys.executable, '-m', 'lesrcnn_plugin.basicsr.train', *basicsr_options(root, 'one', 4)], root / 'one')
    run([TORCHRUN, '--standalone', '--nproc_per_node=2', str(root / 'rank_hook.py'),
         *basicsr_options(root, 'two', 2), '--launcher', 'pytorch'], root / 'two')

    rank0, rank1 = (torch.load(root / 'two' / f'rank{r}_iter{STEPS}.pth') for r in (0, 1))
    assert all(torch.equal(saved, rank0[key]) for key, saved in basicsr_weights(root / 'two', 'two').items())
    assert_ranks_agree_and_match_one_process(rank0, rank1, basicsr_weights(root / 'one', 'one'),
                                             torch.load(root / 'initial.pth'))
    # Each process drew its own manual_seed; the LESRCNN-S scale seed is rank 0's on both.
    seeds = [yaml.safe_load((root / 'two' / f'rank{r}_seeds.json').read_text()) for r in (0, 1)]
    assert seeds[0]['scale_seed'] == seeds[1]['scale_seed'] == seeds[0]['manual_seed']


@pytest.mark.slow
def test_basicsr_documented_torchrun_command_trains(basicsr_setup):
    """``torchrun --standalone --nproc_per_node=2 -m lesrcnn_plugin.basicsr.train -opt ... --launcher pytorch``
    (docs/basicsr.md) as it is, for one step: it exits 0, and rank 0 writes the checkpoint."""
    root = basicsr_setup / 'two'
    run([TORCHRUN, '--standalone', '--nproc_per_node=2', '-m', 'lesrcnn_plugin.basicsr.train',
                  *basicsr_options(basicsr_setup, 'bare', 2, steps=1, options=REPO / 'options' / 'train_lesrcnn_x2.yml'),
                  '--launcher', 'pytorch'], root)
    log, = (root / 'experiments' / 'bare').glob('train_bare_*.log')
    assert 'world_size: 2' in log.read_text()  # BasicSR logs its options, the launcher's world size among them
    initial = torch.load(basicsr_setup / 'initial.pth')
    assert 1e-5 < max_difference(basicsr_weights(root, 'bare', steps=1), initial) < NEAR_INITIAL


def test_basicsr_slurm_launcher_without_gpus_is_one_line_error(monkeypatch):
    from lesrcnn_plugin.basicsr import launch
    from lesrcnn_plugin.errors import ConfigError
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(ConfigError, match='--launcher slurm needs GPUs'):
        launch.init_dist('slurm')


# ------------------------------------------------------------------------------------------- MMagic

RANK_WEIGHTS_HOOK = '''
"""The test's hook: each rank writes its generator's weights when training ends."""
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class SaveRankWeights(Hook):
    def after_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        torch.save(model.generator.state_dict(), f'{runner.work_dir}/rank{get_rank()}_weights.pth')
'''

MMAGIC_CONFIG = """
_base_ = '{base}'
custom_imports = dict(imports=['lesrcnn_plugin.mmagic', 'rank_weights_hook'], allow_failed_imports=False)
custom_hooks = [dict(type='SaveRankWeights')]
"""


def mmagic_options(root: Path, batch: int) -> list[str]:
    # pipeline: 3 PairedRandomCrop, 4 and 5 Flip, 6 RandomTransposeHW (configs/_base_/datasets/div2k_lmdb.py)
    return ['--cfg-options', f'train_dataloader.batch_size={batch}', 'train_dataloader.num_workers=0',
            'train_dataloader.sampler.seed=0', f'train_dataloader.dataset.pipeline.3.gt_patch_size={HR_SIZE}',
            'train_dataloader.dataset.pipeline.4.flip_ratio=0', 'train_dataloader.dataset.pipeline.5.flip_ratio=0',
            'train_dataloader.dataset.pipeline.6.transpose_ratio=0', f'load_from={root / "initial.pth"}',
            f'train_cfg.max_iters={STEPS}', 'train_cfg.val_interval=1000', 'val_dataloader.num_workers=0',
            f'default_hooks.checkpoint.interval={STEPS}', 'default_hooks.logger.interval=1']


def mmagic_generator(checkpoint: Path) -> dict:
    """The generator weights of an mmengine checkpoint."""
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)['state_dict']
    return {key.removeprefix('generator.'): value for key, value in state.items() if key.startswith('generator.')}


@pytest.mark.slow
def test_mmagic_two_processes_match_one_process_with_twice_the_batch(workspace):
    pytest.importorskip('mmagic')
    root = workspace
    (root / 'rank_weights_hook.py').write_text(RANK_WEIGHTS_HOOK)
    config = root / 'lesrcnn_x2_ranks.py'
    config.write_text(MMAGIC_CONFIG.format(base=REPO / 'configs' / 'lesrcnn' / 'lesrcnn_x2_div2k.py'))
    train = str(REPO / 'tools' / 'train.py')
    env = {'PYTHONPATH': os.pathsep.join(filter(None, [str(root), os.environ.get('PYTHONPATH')]))}
    run([sys.executable, train, str(config), '--work-dir', str(root / 'one' / 'work'), *mmagic_options(root, 4)],
        root / 'one', **env)
    run([TORCHRUN, '--standalone', '--nproc_per_node=2', train, str(config), '--launcher', 'pytorch',
         '--work-dir', str(root / 'two' / 'work'), *mmagic_options(root, 2)], root / 'two', **env)

    two = root / 'two' / 'work'
    log = '\n'.join(p.read_text() for p in two.glob('2*/*.log'))
    assert 'Distributed training: True' in log and "dist_cfg: {'backend': 'gloo'}" in log
    rank0, rank1 = (torch.load(two / f'rank{r}_weights.pth') for r in (0, 1))
    assert all(torch.equal(saved, rank0[key]) for key, saved in mmagic_generator(two / f'iter_{STEPS}.pth').items())
    one = mmagic_generator(root / 'one' / 'work' / f'iter_{STEPS}.pth')
    assert_ranks_agree_and_match_one_process(rank0, rank1, one, torch.load(root / 'initial.pth'))
