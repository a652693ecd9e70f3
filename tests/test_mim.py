"""OpenMMLab's launcher: ``mim train mmagic CONFIG`` and ``mim test mmagic CONFIG --checkpoint ...`` run
the plugin's configs in the environment ``make setup`` builds (openmim, setuptools < 81 for its
pkg_resources), two training iterations on generated data, with TensorBoard switched on through the
``--cfg-options`` documented in configs/_base_/default_runtime.py."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip('mmagic')

from _training_runs import PYTHON, REPO, TINY, make_datasets, patch_option, run  # noqa: E402

MIM = Path(sys.executable).with_name('mim')
CONFIG = REPO / 'configs' / 'lesrcnn' / 'lesrcnn_x2_div2k.py'
TENSORBOARD_INSTEAD = 'visualizer.vis_backends.0.type=TensorboardVisBackend'


@pytest.mark.slow
@pytest.mark.skipif(not MIM.is_file(), reason=f'{MIM} not found: openmim is installed by `make setup`')
def test_mim_trains_and_tests_a_plugin_config(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    make_datasets(tmp_path)
    work = tmp_path / 'work'
    run([str(MIM), 'train', 'mmagic', str(CONFIG), '--work-dir', str(work),
         '--cfg-options', *TINY, 'val_dataloader.num_workers=0', patch_option(2), 'train_cfg.max_iters=2',
         TENSORBOARD_INSTEAD], tmp_path)
    assert (work / 'iter_2.pth').is_file()
    event_file, = work.glob('2*/vis_data/events.out.tfevents.*')
    events = EventAccumulator(str(event_file))
    events.Reload()
    assert [event.step for event in events.Scalars('Set5x2/PSNR')] == [2]

    # mmengine's loader reads --checkpoint with torch.load(weights_only=True), which refuses a training
    # checkpoint's message hub: mim test takes the weights alone (docs/mmagic.md).
    weights = tmp_path / 'lesrcnn_x2_mmagic.pth'
    run([PYTHON, '-m', 'lesrcnn_plugin.cli.convert_checkpoint', str(work / 'iter_2.pth'), str(weights),
         '--to', 'mmagic'], tmp_path)
    result = run([str(MIM), 'test', 'mmagic', str(CONFIG), '--checkpoint', str(weights),
                  '--work-dir', str(tmp_path / 'test'),
                  '--cfg-options', *[f'test_dataloader.{i}.num_workers=0' for i in range(4)]], tmp_path)
    output = result.stdout + result.stderr
    assert 'Set5x2/PSNR' in output and 'Urban100x2/SSIM' in output
    assert 'Testing finished successfully' in output
