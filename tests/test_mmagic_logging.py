"""MMagic logging: validation metrics at the iteration they were computed at, and the TensorBoard switch.

One short run (4 iterations, Set5 validation every 2) of ``lesrcnn-mmagic-train`` on generated data,
naming its config by recipe name, with ``--tensorboard``; the tests read what it logged.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip('mmagic')
pytest.importorskip('tensorboard')

from test_mmagic_configs import make_datasets  # noqa: E402
from test_mmagic_runner import PYTHON, REPO, TINY, patch_option, run  # noqa: E402

VALIDATION_STEPS = [2, 4]


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory) -> Path:
    """The run's log folder, ``<work_dir>/<timestamp>``."""
    root = tmp_path_factory.mktemp('logging')
    make_datasets(root)
    work = root / 'work'
    run([PYTHON, str(REPO / 'tools' / 'train.py'), 'lesrcnn:lesrcnn_x2_div2k', '--tensorboard', '--work-dir', str(work),
         '--cfg-options', *TINY, 'val_dataloader.num_workers=0', patch_option(2), 'train_cfg.max_iters=4'], root)
    log_dir, = work.glob('2*/')
    return log_dir


def test_validation_metrics_are_logged_at_their_iteration(run_dir):
    records = [json.loads(line) for line in (run_dir / 'vis_data' / 'scalars.json').read_text().splitlines()]
    validations = [record for record in records if 'Set5x2/PSNR' in record]
    assert [record['step'] for record in validations] == VALIDATION_STEPS  # not 0, the epoch of an iteration run
    assert [record['iter'] for record in records if 'loss' in record] == [1, 2, 3, 4]


def test_tensorboard_switch_writes_the_metrics_at_their_iteration(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    event_file, = (run_dir / 'vis_data').glob('events.out.tfevents.*')
    events = EventAccumulator(str(event_file))
    events.Reload()
    assert {'Set5x2/PSNR', 'Set5x2/SSIM', 'loss', 'lr'} <= set(events.Tags()['scalars'])
    assert [event.step for event in events.Scalars('Set5x2/PSNR')] == VALIDATION_STEPS
    assert [event.step for event in events.Scalars('loss')] == [1, 2, 3, 4]
    # The local backend still writes scalars.json beside the event file.
    assert (run_dir / 'vis_data' / 'scalars.json').is_file()
