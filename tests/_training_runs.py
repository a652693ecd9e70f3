"""Real training loops shared by the test run, and the helpers that start them.

A training through BasicSR or MMagic is the slowest thing the suite does (a fresh interpreter that
imports the framework, then a few iterations, checkpoints and validations), so each framework's
LESRCNN x2 training runs once per test run (``tests/conftest.py``'s session fixtures
``basicsr_x2_training`` and ``mmagic_x2_training``). The tests that check what a training writes
(checkpoints, training states, logs, TensorBoard events, validation metrics) read these runs'
outputs; runs that need other options (another recipe, a launcher, raw storage) stay in their tests,
as short as their checks allow.

Every run is a subprocess in its own working directory: BasicSR's logger and mmengine's Runner are
process-global.

``make test`` runs the suite on pytest-xdist workers, each a process with its own session, where a
session fixture would run once per worker that asks for it: ``once_per_run`` builds it once for the
whole run, in the run's shared temporary folder, and records it for the other workers.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
from filelock import FileLock

from lesrcnn_plugin.data import write_lmdb

REPO = Path(__file__).resolve().parents[1]
OPTIONS = REPO / 'options'
PYTHON = sys.executable

# ------------------------------------------------------------------------------------------ BasicSR

BASICSR_HR_SIZE = 48  # divisible by 2, 3 and 4
ITER_LINE = re.compile(r'iter:\s*([\d,]+), lr:.*?l_pix: (\S+)(?: grad_norm: (\S+))?(?: scale: (\S+))?')


def write_div2k_like(root: Path, scales=(2, 3, 4), count: int = 6, seed: int = 0) -> None:
    """HR/LR sub-image LMDBs and a two-image Set5 in the canonical layout under ``root/datasets``."""
    rng = np.random.default_rng(seed)
    size = BASICSR_HR_SIZE
    images = [(f'{i + 1:04d}_s001', cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), np.uint8), (5, 5), 1.5))
              for i in range(count)]
    write_lmdb(root / 'datasets/DIV2K/DIV2K_train_HR_sub.lmdb', images)
    for k in scales:
        def downscale(image, k=k):
            return cv2.resize(image, (size // k, size // k), interpolation=cv2.INTER_AREA)
        write_lmdb(root / f'datasets/DIV2K/DIV2K_train_LR_bicubic_X{k}_sub.lmdb', [(key, downscale(im)) for key, im in images])
        for folder in ('HR', 'LR'):
            (root / f'datasets/benchmark/Set5/X{k}/{folder}').mkdir(parents=True)
        for key, image in images[:2]:
            cv2.imwrite(str(root / f'datasets/benchmark/Set5/X{k}/HR/{key}.png'), image)
            cv2.imwrite(str(root / f'datasets/benchmark/Set5/X{k}/LR/{key}.png'), downscale(image))


def train(cwd: Path, options: str, *overrides: str, resume: bool = False) -> subprocess.CompletedProcess:
    """Run ``python -m lesrcnn_plugin.basicsr.train`` in ``cwd`` on a shipped options file, batch 2, no loader
    workers, a log line per iteration; fail the test with BasicSR's output if it fails."""
    command = [PYTHON, '-m', 'lesrcnn_plugin.basicsr.train', '-opt', str(OPTIONS / options)]
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


@dataclass(frozen=True)
class BasicSRTraining:
    """``lesrcnn-train`` of LESRCNN x2 for 4 iterations (checkpoints every 2, Set5 validation and
    TensorBoard on), then resumed with ``--auto_resume`` for 2 iterations in fp16."""
    root: Path  # the working directory of both runs
    experiment: Path  # experiments/<name>
    name: str
    states_after_first_run: list[str]  # training_states/ before the resume added its own
    resumed: subprocess.CompletedProcess

    def record(self) -> dict:
        run = self.resumed
        return {'root': str(self.root), 'experiment': str(self.experiment), 'name': self.name,
                'states_after_first_run': self.states_after_first_run,
                'resumed': [[str(arg) for arg in run.args], run.returncode, run.stdout, run.stderr]}

    @classmethod
    def from_record(cls, record: dict) -> BasicSRTraining:
        return cls(Path(record['root']), Path(record['experiment']), record['name'], record['states_after_first_run'],
                   subprocess.CompletedProcess(*record['resumed']))


def basicsr_x2_training(root: Path) -> BasicSRTraining:
    write_div2k_like(root, scales=(2,))
    name = 'smoke_LESRCNN_x2'
    common = (f'name={name}', 'datasets:train:gt_size=16', 'logger:save_checkpoint_freq=2', 'val:val_freq=4')
    train(root, 'train_lesrcnn_x2.yml', *common, 'train:total_iter=4')
    experiment = root / 'experiments' / name
    states = sorted(p.name for p in (experiment / 'training_states').iterdir())
    # fp16 (slow on a CPU) for the two resumed iterations only.
    resumed = train(root, 'train_lesrcnn_x2.yml', *common, 'train:total_iter=6', 'train:amp=fp16', resume=True)
    return BasicSRTraining(root, experiment, name, states, resumed)


# ------------------------------------------------------------------------------------------- MMagic

# Tiny runs: LR patches of 16 pixels, batch 1, validation and a checkpoint every 2 iterations.
TINY = ['train_dataloader.batch_size=1', 'train_dataloader.num_workers=0', 'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=2', 'train_cfg.val_interval=2']
MMAGIC_SCALES = (2, 3, 4)


def make_datasets(root: Path, hr_size: int = 264, num_images: int = 3, seed: int = 0) -> None:
    """The canonical layout of the MMagic configs under ``root/datasets`` with tiny random images.

    DIV2K LMDBs (keys ``0001_s001``...) at x2/x3/x4 and the four benchmarks, whose HR images are one
    pixel larger than LR*k (EDSR-like, so that ``CropGTToInput`` has work to do).
    """
    rng = np.random.default_rng(seed)
    hr_images = [(f'{i // 2 + 1:04d}_s{i % 2 + 1:03d}', rng.integers(0, 256, (hr_size, hr_size, 3), np.uint8))
                 for i in range(num_images)]
    div2k = root / 'datasets' / 'DIV2K'
    write_lmdb(div2k / 'DIV2K_train_HR_sub.lmdb', hr_images)
    for scale in MMAGIC_SCALES:
        size = hr_size // scale
        write_lmdb(div2k / f'DIV2K_train_LR_bicubic_X{scale}_sub.lmdb',
                   [(key, cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)) for key, img in hr_images])
        for name in ('Set5', 'Set14', 'BSD100', 'Urban100'):
            folder = root / 'datasets' / 'benchmark' / name / f'X{scale}'
            (folder / 'HR').mkdir(parents=True, exist_ok=True)
            (folder / 'LR').mkdir(parents=True, exist_ok=True)
            lr = rng.integers(0, 256, (10, 8, 3), np.uint8)
            hr = rng.integers(0, 256, (10 * scale + 1, 8 * scale + 1, 3), np.uint8)
            cv2.imwrite(str(folder / 'LR' / 'img1.png'), lr)
            cv2.imwrite(str(folder / 'HR' / 'img1.png'), hr)


def run(args, cwd, timeout=300, **env) -> subprocess.CompletedProcess:
    """Run a command (one thread per process); fail the test with its output if it fails."""
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, 'OMP_NUM_THREADS': '1', **env})
    assert result.returncode == 0, f'{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}'
    return result


def train_losses(work_dir: Path) -> dict[int, float]:
    """Training loss per iteration, from every run's vis_data/scalars.json under ``work_dir``."""
    losses = {}
    for log in sorted(work_dir.glob('*/vis_data/scalars.json')):
        for line in log.read_text().splitlines():
            record = json.loads(line)
            if 'loss' in record:
                losses[record['iter']] = record['loss']
    return losses


def patch_option(scale: int, index: int = 3) -> str:
    return f'train_dataloader.dataset.pipeline.{index}.gt_patch_size={16 * scale}'


@dataclass(frozen=True)
class MMagicTraining:
    """``tools/train.py lesrcnn:lesrcnn_x2_div2k --tensorboard`` for 4 iterations, checkpoints and
    Set5 validation every 2, on ``make_datasets`` data."""
    root: Path  # the working directory, holding datasets/
    work_dir: Path
    log_dir: Path  # <work_dir>/<timestamp>
    output: str  # the run's standard output and error

    def record(self) -> dict:
        return {'root': str(self.root), 'work_dir': str(self.work_dir), 'log_dir': str(self.log_dir),
                'output': self.output}

    @classmethod
    def from_record(cls, record: dict) -> MMagicTraining:
        return cls(Path(record['root']), Path(record['work_dir']), Path(record['log_dir']), record['output'])


MMAGIC_X2_VALIDATIONS = [2, 4]


def mmagic_x2_training(root: Path) -> MMagicTraining:
    make_datasets(root)
    work = root / 'work'
    result = run([PYTHON, str(REPO / 'tools' / 'train.py'), 'lesrcnn:lesrcnn_x2_div2k', '--tensorboard',
                  '--work-dir', str(work), '--cfg-options', *TINY, 'val_dataloader.num_workers=0', patch_option(2),
                  'train_cfg.max_iters=4'], root)
    log_dir, = work.glob('2*/')
    return MMagicTraining(root, work, log_dir, result.stdout + result.stderr)


Built = TypeVar('Built')


def once_per_run(tmp_path_factory, name: str, build: Callable[[Path], Built], record: Callable[[Built], dict],
                 from_record: Callable[[dict], Built]) -> Built:
    """``build(folder)`` once per test run, in one process or on pytest-xdist workers.

    Under xdist the first worker to ask builds in the run's shared temporary folder (the parent of
    the workers' own) while it holds a lock; the others wait on the lock, then read its JSON
    ``record``. If the build fails, the next worker to ask builds again (and fails with its own
    output), rather than reading a half-made folder.
    """
    if 'PYTEST_XDIST_WORKER' not in os.environ:
        return build(tmp_path_factory.mktemp(name))
    shared = tmp_path_factory.getbasetemp().parent
    recorded = shared / f'{name}.json'
    with FileLock(shared / f'{name}.lock'):
        if recorded.is_file():
            return from_record(json.loads(recorded.read_text()))
        folder = shared / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        built = build(folder)
        recorded.write_text(json.dumps(record(built)))
        return built
