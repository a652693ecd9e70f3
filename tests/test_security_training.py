"""Faults during training keep what was there (issue 20, part 4), run through the installed commands.

A full disk while saving, a truncated or damaged ``data.mdb``, a corrupt PNG inside an LMDB, options
of the wrong type or range, weights given as a training state, and a broken file handed to
``lesrcnn-measure-training``: each ends with one ``error:`` line naming the file (and the option or
key) and exit status 1, never a traceback, a SIGBUS (135) or a silent exit 0, and leaves the files
that were there as they were. Data is generated here (tiny LMDBs), runs are 1 to 3 iterations.
"""
from __future__ import annotations

import hashlib
import os
import resource
import signal
import struct
import subprocess
import sys
from pathlib import Path

import lmdb
import pytest
import torch
import yaml

from test_basicsr_train import write_div2k_like

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OPTIONS = REPO / 'options' / 'train_lesrcnn_x2.yml'
HR_DB = Path('datasets/DIV2K/DIV2K_train_HR_sub.lmdb')
TINY = ['datasets:train:batch_size_per_gpu=2', 'datasets:train:num_worker_per_gpu=0', 'datasets:train:gt_size=16',
        'logger:print_freq=1', 'logger:use_tb_logger=false', 'logger:save_checkpoint_freq=1', 'val:val_freq=100']


def command(name: str, *args: str, cwd: Path, file_limit: int | None = None) -> subprocess.CompletedProcess:
    """Run an installed ``lesrcnn-*`` command in ``cwd``; with ``file_limit``, no file it writes may grow past
    that many bytes (``RLIMIT_FSIZE``: a write beyond fails with EFBIG, as one on a full disk fails with ENOSPC)."""
    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, resource.RLIM_INFINITY))

    return subprocess.run([str(BIN / name), *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          preexec_fn=limit_files if file_limit else None,
                          env={**os.environ, 'OMP_NUM_THREADS': '1'})


def train(cwd: Path, *overrides: str, opt: Path = OPTIONS, **kwargs) -> subprocess.CompletedProcess:
    return command('lesrcnn-train', '-opt', str(opt), '--force_yml', *TINY, *overrides, cwd=cwd, **kwargs)


def error_line(result: subprocess.CompletedProcess, prog: str = 'lesrcnn-train') -> str:
    """The run's one error line (after asserting exit 1, exactly one, and no traceback)."""
    output = result.stdout + result.stderr
    assert result.returncode == 1, f'exit {result.returncode}:\n{output[-3000:]}'
    assert 'Traceback' not in output, output[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith(f'{prog}: error:')
              or line.startswith('error:')]
    assert len(errors) == 1, output[-3000:]
    return errors[0]


def digests(folder: Path) -> dict[str, str]:
    """``{name: sha256}`` of every file in ``folder``, hidden ones included."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def workspace(tmp_path) -> Path:
    """A working directory holding ``datasets/``: six 48-pixel DIV2K-like sub-images at x2, and Set5."""
    write_div2k_like(tmp_path, scales=(2,))
    return tmp_path


# ------------------------------------------------------------------------------ a full disk


@pytest.mark.slow  # two training runs
def test_full_disk_while_saving_stops_in_one_line_and_keeps_the_saved_files(workspace):
    assert train(workspace, 'name=full', 'train:total_iter=2').returncode == 0
    experiment = workspace / 'experiments' / 'full'
    before = {folder: digests(experiment / folder) for folder in ('models', 'training_states')}
    assert sorted(before['models']) == ['net_g_1.pth', 'net_g_2.pth', 'net_g_latest.pth']

    # Resumed, with no room for the next checkpoint (2.5 MB): iteration 3 trains, then cannot be saved.
    result = train(workspace, 'name=full', 'train:total_iter=4', '--auto_resume', file_limit=1_000_000)
    models = experiment / 'models'
    assert error_line(result) == (f'lesrcnn-train: error: {models / "net_g_3.pth"}: File too large; not saved, the '
                                  'files saved before it are kept')
    after = {folder: digests(experiment / folder) for folder in ('models', 'training_states')}
    assert after == before  # no net_g_3.pth, truncated or whole, no temporary, nothing changed
    state = torch.load(experiment / 'training_states' / '2.state', weights_only=True)
    assert state['iter'] == 2


@pytest.mark.slow  # a training run in a subprocess
def test_full_disk_while_mmagic_saves_a_checkpoint_keeps_the_last_one(tmp_path):
    """mmengine's CheckpointHook writes through the local file backend, which the integration makes atomic."""
    pytest.importorskip('mmagic')
    script = f'''
import os, resource, torch
import lesrcnn_plugin.mmagic  # what a config's custom_imports loads
from mmengine.runner.checkpoint import save_checkpoint
checkpoint = {{'state_dict': {{'w': torch.zeros(500_000)}}}}  # 2 MB
save_checkpoint(checkpoint, {str(tmp_path / 'iter_1.pth')!r})
resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, resource.RLIM_INFINITY))
try:
    save_checkpoint(checkpoint, {str(tmp_path / 'iter_1.pth')!r})
except OSError as exc:
    print('OSError', exc.filename, exc.strerror)
'''

    def ignore_sigxfsz() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=300,
                            preexec_fn=ignore_sigxfsz)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-1].startswith(f'OSError {tmp_path / "iter_1.pth"} File too large')
    assert [p.name for p in tmp_path.iterdir()] == ['iter_1.pth']  # no temporary left
    saved = torch.load(tmp_path / 'iter_1.pth', weights_only=True)
    assert saved['state_dict']['w'].shape == (500_000,)  # the first save, whole


# ------------------------------------------------------------------------ damaged databases


def truncate(db: Path, size: int = 12288) -> None:
    with open(db / 'data.mdb', 'r+b') as handle:
        handle.truncate(size)


def damage_value_size(db: Path, key: str) -> None:
    """Make the leaf node of ``key`` claim a 256 MB value: LMDB would read it past the end of the file."""
    data = bytearray((db / 'data.mdb').read_bytes())
    psize = 4096
    for start in range(2 * psize, len(data), psize):
        flags, lower = struct.unpack_from('<HH', data, start + 10)
        if not flags & 0x02:  # a leaf page
            continue
        for index in range((lower - 16) // 2):
            offset, = struct.unpack_from('<H', data, start + 16 + 2 * index)
            ksize, = struct.unpack_from('<H', data, start + offset + 6)
            if data[start + offset + 8:start + offset + 8 + ksize] == key.encode():
                struct.pack_into('<HH', data, start + offset, 0, 0x1000)
                (db / 'data.mdb').write_bytes(bytes(data))
                return
    raise AssertionError(f'key {key} not found')


def corrupt_png(db: Path, key: str) -> None:
    """Flip bytes in the middle of ``key``'s PNG inside ``data.mdb``: the record is there, its image is not."""
    env = lmdb.open(str(db), readonly=True, lock=False)
    with env.begin() as txn:
        value = bytes(txn.get(key.encode()))
    env.close()
    data = bytearray((db / 'data.mdb').read_bytes())
    at = data.find(value)
    for index in range(at + 60, at + len(value) - 20):
        data[index] ^= 0x5A
    (db / 'data.mdb').write_bytes(bytes(data))


@pytest.mark.slow  # a training run in a subprocess
def test_truncated_database_is_named_before_training(workspace):
    truncate(workspace / HR_DB)
    line = error_line(train(workspace, 'name=t', 'train:total_iter=1'))
    assert line.startswith(f'lesrcnn-train: error: {HR_DB}: data.mdb is truncated: 12288 bytes, its header counts '), \
        line
    assert not (workspace / 'experiments').exists()


def test_damaged_record_is_named_with_its_key_before_training(workspace):
    damage_value_size(workspace / HR_DB, '0004_s001')
    line = error_line(train(workspace, 'name=t', 'train:total_iter=3'))
    assert line.startswith(f'lesrcnn-train: error: {HR_DB}: data.mdb is damaged: page '), line
    assert "outside the file (pages 2 to " in line and "(at key '0004_s001')" in line
    assert not (workspace / 'experiments').exists()


@pytest.mark.parametrize('workers', [0, pytest.param(1, marks=pytest.mark.slow)])  # 1: in a loader worker
def test_corrupt_png_mid_training_stops_naming_database_and_key(workspace, workers):
    corrupt_png(workspace / HR_DB, '0002_s001')
    # Three iterations of two samples: every one of the six images is read.
    result = train(workspace, 'name=png', 'train:total_iter=3', f'datasets:train:num_worker_per_gpu={workers}')
    assert error_line(result) == (f'lesrcnn-train: error: {HR_DB}[0002_s001]: not a readable image (cannot decode '
                                  'it: empty, truncated, corrupt or of an unsupported format); rebuild the database')


@pytest.fixture
def div2k_databases(tmp_path) -> Path:
    from test_data_div2k import write_div2k_images

    return write_div2k_images(tmp_path)


@pytest.mark.parametrize('damage, message', [
    (truncate, 'data.mdb is truncated: 12288 bytes, its header counts '),
    (lambda db: damage_value_size(db, '0002_s002'), 'data.mdb is damaged: page '),
])
def test_verify_names_the_damaged_database(div2k_databases, damage, message):
    verify = ['--input', str(div2k_databases), '--scales', '2', '--crop-size', '48', '--step', '24', '--workers', '1',
              '--verify']
    assert command('lesrcnn-prepare-div2k', *verify, cwd=div2k_databases).returncode == 0
    db = div2k_databases / 'DIV2K_train_HR_sub.lmdb'
    damage(db)
    line = error_line(command('lesrcnn-prepare-div2k', *verify, cwd=div2k_databases))
    assert line.startswith(f'error: {db}') and message in line, line


# ------------------------------------------------------------------------- options and states


def test_negative_total_iter_is_refused_before_any_folder(workspace):
    options = yaml.safe_load(OPTIONS.read_text())
    options['train']['total_iter'] = -5
    (workspace / 'opt.yml').write_text(yaml.safe_dump(options))
    line = error_line(train(workspace, 'name=neg', opt=workspace / 'opt.yml'))
    assert line == f'lesrcnn-train: error: {workspace / "opt.yml"}: train.total_iter must be an integer of at least 1, got -5'
    assert not (workspace / 'experiments').exists()


@pytest.mark.parametrize('path, value, message', [
    ('datasets.train.gt_size', -32, 'datasets.train.gt_size must be an integer of at least 1, got -32'),
    ('datasets.train.gt_size', 17, 'datasets.train.gt_size must be a multiple of the scale 2, got 17'),
    ('train.total_iter', 'abc', "train.total_iter must be an integer of at least 1, got 'abc'"),
    ('train.optim_g.lr', -1e-4, 'train.optim_g.lr must be a number of at least 0, got -0.0001'),
    ('train.scheduler.milestones', [400000, 'x'], "train.scheduler.milestones must be a non-empty list of integers "
                                                  "of at least 1, got [400000, 'x']"),
    ('train.scheduler.gamma', '0.5', "train.scheduler.gamma must be a number above 0, got '0.5'"),
    ('datasets.train.batch_size_per_gpu', 0, 'datasets.train.batch_size_per_gpu must be an integer of at least 1, '
                                             'got 0'),
    ('datasets.train.num_worker_per_gpu', 1.5, 'datasets.train.num_worker_per_gpu must be an integer of at least 0, '
                                               'got 1.5'),
    ('val.val_freq', -1, 'val.val_freq must be an integer of at least 1, got -1'),
    ('logger.save_checkpoint_freq', 'often', "logger.save_checkpoint_freq must be an integer of at least 1, "
                                             "got 'often'"),
    ('num_gpu', 'all', "num_gpu must be an integer of at least 0 or 'auto', got 'all'"),
    ('scale', 0, 'scale must be an integer of at least 1, got 0'),
])
def test_options_of_wrong_type_or_range_are_named_before_any_folder(tmp_path, monkeypatch, capsys, path, value,
                                                                     message):
    pytest.importorskip('lesrcnn_plugin.basicsr')  # installs the alias BasicSR needs, then imports it
    from lesrcnn_plugin.basicsr import train as train_command
    from lesrcnn_plugin.basicsr import launch

    reached = []
    monkeypatch.setattr(launch, 'train_pipeline', reached.append)
    monkeypatch.chdir(tmp_path)
    options = yaml.safe_load(OPTIONS.read_text())
    section, *keys = path.split('.')
    target = options
    for key in [section, *keys][:-1]:
        target = target[key]
    target[path.split('.')[-1]] = value
    (tmp_path / 'opt.yml').write_text(yaml.safe_dump(options))
    assert train_command.main(['-opt', 'opt.yml']) == 1
    assert capsys.readouterr().err.splitlines() == [f'lesrcnn-train: error: opt.yml: {message}']
    assert not reached and sorted(p.name for p in tmp_path.iterdir()) == ['opt.yml']


@pytest.mark.slow  # a training run in a subprocess
def test_weights_given_as_training_state_are_named(workspace):
    from lesrcnn_plugin.archs import LESRCNN

    weights = workspace / 'weights.pth'
    torch.save({'params': LESRCNN(upscale=2).state_dict()}, weights)
    line = error_line(train(workspace, 'name=w', f'path:resume_state={weights}'))
    assert line == (f'lesrcnn-train: error: {weights} is network weights, not a BasicSR training state '
                    '(experiments/<name>/training_states/<iter>.state); to start from weights, give them as '
                    'path.pretrain_network_g')


@pytest.mark.parametrize('option, message', [
    ('train_cfg.max_iters=-5', 'train_cfg.max_iters must be an integer of at least 1, got -5'),
    ('train_dataloader.batch_size=abc', "train_dataloader.batch_size must be an integer of at least 1, got 'abc'"),
    ('optim_wrapper.optimizer.lr=-1e-4', 'optim_wrapper.optimizer.lr must be a number of at least 0, got -0.0001'),
    ('default_hooks.checkpoint.interval=0', 'default_hooks.checkpoint.interval must be an integer of at least 1 or '
                                            '-1, got 0'),
])
def test_mmagic_cfg_options_of_wrong_type_or_range_are_named_before_any_folder(tmp_path, monkeypatch, capsys,
                                                                                option, message):
    pytest.importorskip('mmagic')
    from lesrcnn_plugin.mmagic import train as mmagic_train

    monkeypatch.chdir(tmp_path)
    config = str(REPO / 'configs' / 'lesrcnn' / 'lesrcnn_x2_div2k.py')
    assert mmagic_train.main([config, '--work-dir', 'work', '--cfg-options', option]) == 1
    assert capsys.readouterr().err.splitlines() == [f'error: {config}: {message}']
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------- lesrcnn-measure-training


@pytest.mark.slow  # two runs of the command
def test_measure_training_refuses_a_broken_yaml_and_an_unknown_network_in_one_line(workspace):
    (workspace / 'broken.yml').write_text('train: [unclosed\n')
    line = error_line(command('lesrcnn-measure-training', '-opt', 'broken.yml', '--quiet', cwd=workspace))
    assert line.startswith('error: broken.yml: not valid YAML'), line

    options = yaml.safe_load(OPTIONS.read_text())
    options['network_g']['type'] = 'NoSuchNet'
    (workspace / 'unknown.yml').write_text(yaml.safe_dump(options))
    line = error_line(command('lesrcnn-measure-training', '-opt', 'unknown.yml', '--quiet', '--iters', '0',
                              '--workers', '0', cwd=workspace))
    assert line.startswith("error: unknown.yml: network_g.type 'NoSuchNet' is not a registered network"), line
