"""Shared fixtures. ``../shared`` (or $LESRCNN_SHARED_DIR) holds the authors' weights, Set5 and the
reference outputs; tests that need it skip with a reason when it is absent. Each framework trains
once per test run (``basicsr_x2_training``, ``mmagic_x2_training``; see ``_training_runs``)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import _training_runs

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get('LESRCNN_SHARED_DIR', REPO.parent / 'shared'))


def shared_path(*parts: str) -> Path:
    """A path under the shared material, or skip the test saying what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f'{path} not found: the authors\' weights, Set5 and reference outputs live in ../shared '
                    '(set LESRCNN_SHARED_DIR to point elsewhere)')
    return path


@pytest.fixture
def official_weights():
    """``official_weights(k)`` -> path of the authors' x``k`` state dict."""
    return lambda scale: shared_path('weights', 'lesrcnn_official', f'lesrcnn_x{scale}.pth')


@pytest.fixture(scope='session')
def basicsr_x2_training(tmp_path_factory) -> _training_runs.BasicSRTraining:
    """The test run's one BasicSR training (LESRCNN x2, resumed once); see ``_training_runs``."""
    return _training_runs.once_per_run(tmp_path_factory, 'basicsr_x2_training', _training_runs.basicsr_x2_training,
                                       _training_runs.BasicSRTraining.record,
                                       _training_runs.BasicSRTraining.from_record)


@pytest.fixture(scope='session')
def mmagic_x2_training(tmp_path_factory) -> _training_runs.MMagicTraining:
    """The test run's one MMagic training (LESRCNN x2 by recipe name, TensorBoard on)."""
    pytest.importorskip('mmagic')
    return _training_runs.once_per_run(tmp_path_factory, 'mmagic_x2_training', _training_runs.mmagic_x2_training,
                                       _training_runs.MMagicTraining.record, _training_runs.MMagicTraining.from_record)


def pytest_configure(config):
    """Under pytest-xdist, share the cores among the workers: each worker's torch (and the programs its
    tests start, through OMP_NUM_THREADS) gets cores / workers threads. Two processes that each spin
    OpenMP threads on every core slow each other down several times over."""
    workers = os.environ.get('PYTEST_XDIST_WORKER_COUNT')
    if workers:
        import torch

        from lesrcnn_plugin.benchmark.load import cpu_count
        threads = str(max(1, cpu_count() // int(workers)))
        os.environ['OMP_NUM_THREADS'] = os.environ['MKL_NUM_THREADS'] = threads
        torch.set_num_threads(int(threads))
