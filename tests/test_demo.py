"""lesrcnn-demo (`make demo`): its defaults, what it reports, and that offline it stops instead of
starting a long run nobody asked for. The full run is README's example (tests/test_doc_examples.py)."""
from __future__ import annotations

import pytest

pytest.importorskip('skimage', reason='lesrcnn-demo needs the "demo" extra (scikit-image)')

from lesrcnn_plugin.cli import demo  # noqa: E402  (after the extra's check)


def test_defaults_fine_tune_gently_and_from_scratch_keeps_its_own():
    fine_tune = demo.parse_args([])
    assert (fine_tune.iters, fine_tune.lr, fine_tune.from_scratch) == (demo.FINE_TUNE_ITERS, demo.FINE_TUNE_LR, False)
    scratch = demo.parse_args(['--from-scratch'])
    assert (scratch.iters, scratch.lr) == (demo.SCRATCH_ITERS, demo.SCRATCH_LR)
    chosen = demo.parse_args(['--from-scratch', '--iters', '7', '--lr', '3e-5'])
    assert (chosen.iters, chosen.lr) == (7, 3e-5)


def test_training_options_fine_tune_the_given_weights_and_validate_on_the_held_apart_photographs(tmp_path):
    args = demo.parse_args(['--iters', '40'])
    opt = demo.training_options(args, tmp_path / 'data', tmp_path / 'held_apart', '/abs/lesrcnn_x2.pth')
    assert opt['path']['pretrain_network_g'] == '/abs/lesrcnn_x2.pth'
    assert opt['train']['optim_g']['lr'] == demo.FINE_TUNE_LR and opt['train']['total_iter'] == 40
    assert opt['datasets']['val']['dataroot_gt'] == str(tmp_path / 'held_apart' / 'HR')
    assert opt['num_gpu'] == 0 and opt['logger']['save_checkpoint_freq'] == 40


def test_the_change_against_the_authors_network_is_signed_and_comes_first():
    assert demo.signed_changes(35.61, 35.57, 32.92) == ("+0.04 dB against the authors' network, "
                                                         '+2.69 dB against bicubic')
    assert demo.signed_changes(35.52, 35.57, 32.92) == ("-0.05 dB against the authors' network, "
                                                         '+2.60 dB against bicubic')
    assert demo.signed_changes(30.83, None, 32.92) == '-2.09 dB against bicubic'


def test_offline_without_weights_it_stops_in_one_line_and_starts_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('LESRCNN_WEIGHTS_DIR', str(tmp_path / 'cache'))
    monkeypatch.setenv('LESRCNN_WEIGHTS_MIRROR', 'http://127.0.0.1:9/unreachable')
    monkeypatch.setenv('NO_PROXY', '127.0.0.1')
    monkeypatch.delenv('LESRCNN_OFFICIAL_WEIGHTS', raising=False)
    output = tmp_path / 'demo_output'
    assert demo.main(['--output', str(output)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ''
    assert captured.err.count('\n') == 1 and captured.err.startswith('error: ')
    assert 'cannot download' in captured.err and '--from-scratch' in captured.err
    assert not output.exists()


def test_a_missing_weights_file_is_named(tmp_path, capsys):
    missing = tmp_path / 'no_such_x2.pth'
    assert demo.main(['--weights', str(missing), '--output', str(tmp_path / 'out')]) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and str(missing) in err and not (tmp_path / 'out').exists()
