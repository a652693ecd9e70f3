"""Smoke training through ``python -m lesrcnn_plugin.basicsr.train`` on tiny LMDBs generated here.

Each run is a subprocess in a temporary working directory (BasicSR's logger is process-global), on
the shipped options with ``--force_yml`` overrides: a few iterations, batch 2, small patches, no
dataloader workers. Checked: checkpoints and training states are written under the working
directory, losses are finite, ``--auto_resume`` continues from the saved iteration, LESRCNN-S trains
one drawn scale per iteration and validates every scale. LESRCNN x2 is the test run's one BasicSR
training (``basicsr_x2_training``, tests/_training_runs.py), which other files read too.
"""
from __future__ import annotations

import math
import re
import subprocess
import sys

import pytest

# Other test files import the training helpers from here too.
from _training_runs import OPTIONS, logged_iterations, run_logs, train, write_div2k_like  # noqa: F401
from lesrcnn_plugin.checkpoint import load_model


@pytest.mark.slow
def test_lesrcnn_x2_trains(basicsr_x2_training):
    run = basicsr_x2_training
    experiment = run.experiment
    assert run.states_after_first_run == ['2.state', '4.state']
    assert {'net_g_2.pth', 'net_g_4.pth', 'net_g_latest.pth'} <= {p.name for p in (experiment / 'models').iterdir()}
    assert list((run.root / 'tb_logger' / run.name).glob('events.out.tfevents.*')), 'tensorboard log not under the CWD'
    first = logged_iterations(run_logs(experiment)[0])
    assert [row['iter'] for row in first] == [1, 2, 3, 4]
    assert all(math.isfinite(row['l_pix']) and math.isfinite(row['grad_norm']) for row in first)
    # The checkpoint is BasicSR's format and holds the network of the options.
    net = load_model(experiment / 'models' / 'net_g_4.pth')
    assert type(net).__name__ == 'LESRCNN' and net.upscale == 2


@pytest.mark.slow
def test_lesrcnn_x2_resumes_in_fp16(basicsr_x2_training):
    """The two resumed iterations ran in fp16 (slow on a CPU): its gradient scaler joins the state."""
    experiment = basicsr_x2_training.experiment
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


@pytest.mark.slow
def test_multiscale_lesrcnn_trains_one_scale_per_iteration_and_resumes(tmp_path):
    from lesrcnn_plugin.basicsr.lesrcnn_model import draw_scale

    write_div2k_like(tmp_path)
    name = 'smoke_MultiScaleLESRCNN'
    # Validation at iteration 4 only, in the resumed run; the draws of iterations 1-4 are 4, 3, 2, 4.
    common = (f'name={name}', 'datasets:train:lq_size=8', 'logger:save_checkpoint_freq=2', 'val:val_freq=4',
              'logger:use_tb_logger=false')
    train(tmp_path, 'train_multiscale_lesrcnn.yml', *common, 'train:total_iter=2')
    experiment = tmp_path / 'experiments' / name
    train(tmp_path, 'train_multiscale_lesrcnn.yml', *common, 'train:total_iter=4', 'train:amp=bf16', resume=True)

    first, second = (logged_iterations(log) for log in run_logs(experiment))
    assert [row['iter'] for row in first] == [1, 2]
    assert [row['iter'] for row in second] == [3, 4]
    rows = first + second
    assert all(math.isfinite(row['l_pix']) for row in rows)
    # One scale per iteration, drawn from the seed and the iteration (so the resumed run continues
    # the same sequence), and over these iterations every scale is trained.
    assert [row['scale'] for row in rows] == [draw_scale([2, 3, 4], 10, row['iter']) for row in rows]
    assert {row['scale'] for row in rows} == {2, 3, 4}
    assert sorted(p.name for p in (experiment / 'training_states').iterdir()) == ['2.state', '4.state']

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
    from lesrcnn_plugin.basicsr.train import main

    assert main(argv) == 1
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_missing_training_data_is_reported_without_traceback(tmp_path):
    command = [sys.executable, '-m', 'lesrcnn_plugin.basicsr.train', '-opt', str(OPTIONS / 'train_lesrcnn_x2.yml'),
               '--force_yml', 'logger:use_tb_logger=false']
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert 'lesrcnn-train: error:' in result.stderr and 'DIV2K_train_' in result.stderr
    assert 'Traceback' not in result.stderr
