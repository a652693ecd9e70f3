"""MMagic integration through mmengine's Runner, each run in a subprocess (the Runner sets up global
registries, loggers and process groups): training (the test run's one MMagic training,
``mmagic_x2_training``), resuming, multi-scale and two-process training on generated LMDBs, and the
test tool on Set5 with the authors' converted weights."""
from __future__ import annotations

import json
import math
import shutil

import pytest

pytest.importorskip('mmagic')

# Other test files import the run helpers from here too.
from _training_runs import PYTHON, REPO, TINY, make_datasets, patch_option, run, train_losses  # noqa: E402,F401
from conftest import shared_path  # noqa: E402


@pytest.fixture
def workspace(tmp_path):
    make_datasets(tmp_path)
    return tmp_path


@pytest.mark.slow
def test_train_writes_checkpoints_and_the_config(mmagic_x2_training):
    work = mmagic_x2_training.work_dir
    assert (work / 'iter_2.pth').is_file() and (work / 'iter_4.pth').is_file()
    assert (work / 'lesrcnn_x2_div2k.py').is_file()
    losses = train_losses(work)
    assert sorted(losses) == [1, 2, 3, 4] and all(math.isfinite(v) for v in losses.values())


@pytest.mark.slow
def test_resume_continues_from_the_saved_iteration(mmagic_x2_training, tmp_path):
    """The shared run's folder as it was at iteration 2 (its checkpoint and config, no logs), resumed
    there to iteration 4."""
    work = tmp_path / 'work'
    work.mkdir()
    for name in ('iter_2.pth', 'lesrcnn_x2_div2k.py'):
        shutil.copy2(mmagic_x2_training.work_dir / name, work / name)
    config = REPO / 'configs' / 'lesrcnn' / 'lesrcnn_x2_div2k.py'
    result = run([PYTHON, str(REPO / 'tools' / 'train.py'), str(config), '--work-dir', str(work),
                  '--cfg-options', *TINY, 'val_dataloader.num_workers=0', patch_option(2), 'train_cfg.max_iters=4',
                  '--resume', str(work / 'iter_2.pth')], mmagic_x2_training.root)
    resumed = train_losses(work)
    assert sorted(resumed) == [3, 4], 'resume must continue from the saved iteration'
    assert all(math.isfinite(v) for v in resumed.values())
    assert (work / 'iter_4.pth').is_file()
    assert 'resumed' in (result.stdout + result.stderr).lower()


@pytest.mark.slow
def test_multiscale_training_runs_one_scale_per_batch(workspace):
    config = REPO / 'configs' / 'lesrcnn' / 'multiscale_lesrcnn_div2k.py'
    work = workspace / 'work'
    patches = [f'train_dataloader.dataset.datasets.{i}.pipeline.3.gt_patch_size={16 * k}' for i, k in enumerate((2, 3, 4))]
    run([PYTHON, str(REPO / 'tools' / 'train.py'), str(config), '--work-dir', str(work), '--cfg-options', *TINY,
         *patches, 'train_cfg.max_iters=3', 'train_cfg.val_interval=3',  # one validation, at the end
         *[f'val_dataloader.{i}.num_workers=0' for i in range(3)]], workspace)
    losses = train_losses(work)
    assert sorted(losses) == [1, 2, 3] and all(math.isfinite(v) for v in losses.values())
    assert (work / 'iter_3.pth').is_file()


@pytest.mark.slow
def test_two_process_gloo_training(workspace):
    config = REPO / 'configs' / 'lesrcnn' / 'lesrcnn_x2_div2k.py'
    work = workspace / 'work'
    run([PYTHON, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
         str(REPO / 'tools' / 'train.py'), str(config), '--launcher', 'pytorch', '--work-dir', str(work),
         '--cfg-options', *TINY, 'val_dataloader.num_workers=0', patch_option(2), 'train_cfg.max_iters=2'],
        workspace)
    log = '\n'.join(p.read_text() for p in work.glob('2*/*.log'))
    # mmengine's environment report; it calls the world size "GPU number" whatever the device.
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert "dist_cfg: {'backend': 'gloo'}" in log
    losses = train_losses(work)
    assert sorted(losses) == [1, 2] and all(math.isfinite(v) for v in losses.values())
    assert (work / 'iter_2.pth').is_file()


def test_test_tool_prints_and_writes_the_metrics_of_every_test_set(workspace):
    """``lesrcnn-mmagic-test`` on the generated benchmarks (one tiny image each) with a random x2 network:
    the quick set's run of the test tool (the Set5 figures below are in ``make test``)."""
    import torch

    from lesrcnn_plugin.archs import LESRCNN

    torch.manual_seed(0)
    weights = workspace / 'random_x2.pth'
    torch.save(LESRCNN(2).state_dict(), weights)
    out = workspace / 'metrics' / 'x2.json'
    out.parent.mkdir()
    result = run([PYTHON, '-m', 'lesrcnn_plugin.mmagic.test', str(REPO / 'configs' / 'lesrcnn' / 'lesrcnn_x2_div2k.py'),
                  str(weights), '--work-dir', str(workspace / 'test'), '--out', str(out),
                  '--cfg-options', *[f'test_dataloader.{i}.num_workers=0' for i in range(4)]], workspace)
    metrics = json.loads(out.read_text())
    assert {key.split('/')[0] for key in metrics} == {'Set5x2', 'Set14x2', 'BSD100x2', 'Urban100x2'}
    assert all(math.isfinite(value) for value in metrics.values())
    printed = dict(line.split(': ') for line in result.stdout.splitlines() if line.split(': ')[0] in metrics)
    assert {key: float(value) for key, value in printed.items()} == {k: round(v, 4) for k, v in metrics.items()}
    assert [p.name for p in out.parent.iterdir()] == ['x2.json']  # written through a temporary name, renamed


# The authors' network on Set5 (EDSR layout, HR cropped to LR*k), Y channel, SR not rounded to uint8.
SET5_NOT_QUANTISED = {2: (37.8091, 0.9599), 3: (34.0301, 0.9245), 4: (31.9253, 0.8917)}

SET5_CONFIG = """
_base_ = '{base}'
test_dataloader = [dict(
    batch_size=1, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='BasicImageDataset', metainfo=dict(dataset_type='set5', task_name='sisr'),
        data_root='{set5}', data_prefix=dict(img='LR_bicubic/X{k}', gt='HR'),
        filename_tmpl=dict(img='{{}}x{k}', gt='{{}}'),
        pipeline=[
            dict(type='LoadImageFromFile', key='img', channel_order='rgb', imdecode_backend='cv2'),
            dict(type='LoadImageFromFile', key='gt', channel_order='rgb', imdecode_backend='cv2'),
            dict(type='SetValues', dictionary=dict(scale={k})),
            dict(type='CropGTToInput'),
            dict(type='PackInputs', meta_keys=['scale'])]))]
test_evaluator = [_base_.benchmark_test_evaluators['x{k}'][0]]
"""


@pytest.mark.slow
def test_test_tool_reproduces_set5_with_official_weights(tmp_path, official_weights):
    """One process runs the three scales (mmagic's import alone takes seconds), then x3 weights in
    the x2 config, which must be refused (exit 1) before anything is tested."""
    set5 = shared_path('datasets', 'Set5')
    driver = ['from lesrcnn_plugin.cli.convert_checkpoint import main as convert',
              'from lesrcnn_plugin.mmagic.test import main as test']
    for k in SET5_NOT_QUANTISED:
        config = tmp_path / f'set5_x{k}.py'
        config.write_text(SET5_CONFIG.format(base=REPO / 'configs' / 'lesrcnn' / f'lesrcnn_x{k}_div2k.py',
                                             set5=set5, k=k))
        weights = tmp_path / f'lesrcnn_x{k}_mmagic.pth'
        driver += [f'assert convert([{str(official_weights(k))!r}, {str(weights)!r}, "--to", "mmagic"]) == 0',
                   f'assert test([{str(config)!r}, {str(weights)!r}, "--work-dir", {str(tmp_path / f"w{k}")!r}, '
                   f'"--out", {str(tmp_path / f"x{k}.json")!r}]) == 0']
    driver.append(f'assert test([{str(tmp_path / "set5_x2.py")!r}, {str(official_weights(3))!r}, '
                  f'"--work-dir", {str(tmp_path / "wrong")!r}]) == 1')
    result = run([PYTHON, '-c', '\n'.join(driver)], tmp_path, timeout=600)
    assert 'weights do not fit' in result.stderr and 'upsamplers.x3' in result.stderr
    for k, (psnr, ssim) in SET5_NOT_QUANTISED.items():
        metrics = json.loads((tmp_path / f'x{k}.json').read_text())
        assert metrics[f'Set5x{k}/PSNR'] == pytest.approx(psnr, abs=0.005)
        assert metrics[f'Set5x{k}/SSIM'] == pytest.approx(ssim, abs=0.0005)
