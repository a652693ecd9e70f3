"""MMagic logging: validation metrics at the iteration they were computed at, and the TensorBoard switch.

The tests read what the test run's one MMagic training logged (``mmagic_x2_training``,
tests/_training_runs.py): ``lesrcnn-mmagic-train`` on generated data, naming its config by recipe
name, with ``--tensorboard``, 4 iterations, Set5 validation every 2.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip('mmagic')
pytest.importorskip('tensorboard')

from _training_runs import MMAGIC_X2_VALIDATIONS as VALIDATION_STEPS  # noqa: E402


@pytest.fixture
def run_dir(mmagic_x2_training) -> Path:
    """The run's log folder, ``<work_dir>/<timestamp>``."""
    return mmagic_x2_training.log_dir


@pytest.mark.slow
def test_validation_metrics_are_logged_at_their_iteration(run_dir):
    records = [json.loads(line) for line in (run_dir / 'vis_data' / 'scalars.json').read_text().splitlines()]
    validations = [record for record in records if 'Set5x2/PSNR' in record]
    assert [record['step'] for record in validations] == VALIDATION_STEPS  # not 0, the epoch of an iteration run
    assert [record['iter'] for record in records if 'loss' in record] == [1, 2, 3, 4]


@pytest.mark.slow
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
