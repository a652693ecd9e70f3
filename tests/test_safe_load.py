"""Checkpoints read as inert data (``lesrcnn_plugin.safe_load``): a genuine MMagic training checkpoint
reads and resumes, crafted ones are refused in one line before anything in them runs.

One 2-iteration MMagic training on generated data (module fixture) gives the genuine ``iter_2.pth``;
the crafted files are that checkpoint with a gadget added to ``message_hub['runtime_info']``, which
``MessageHub.load_state_dict`` deep-copies on resume. Each gadget writes a marker file if it runs.
"""
from __future__ import annotations

import copyreg
import subprocess
from collections import Counter, OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from lesrcnn_plugin.checkpoint import CheckpointError, read_checkpoint
from lesrcnn_plugin.safe_load import load_untrusted
from _training_runs import once_per_run
from test_mmagic_configs import make_datasets
from test_mmagic_runner import PYTHON, REPO, TINY, patch_option, run, train_losses

CONFIG = REPO / 'configs' / 'lesrcnn' / 'lesrcnn_x2_div2k.py'


class Call:
    """Pickles as ``func(*args)``: a call a crafted file asks the unpickler to make."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


class NewObject:
    """Pickles as an instance of ``cls`` (NEWOBJ) given ``state`` (BUILD), whatever ``cls`` allows."""

    def __init__(self, cls, state):
        self.cls, self.state = cls, state

    @property
    def __class__(self):  # pickle checks that an object is of the class its NEWOBJ names
        return self.cls

    def __reduce__(self):
        return copyreg.__newobj__, (self.cls,), self.state


def writes_marker(marker) -> str:
    return f'open({str(marker)!r}, "w").write("code from the checkpoint ran")'


def exec_gadget(marker):
    """The plain attack: an object whose reduction is ``exec(code)``."""
    return Call(exec, writes_marker(marker))


def planted_history_buffer(marker):
    """The attack on the old allow-list (HistoryBuffer, numpy and ``getattr``), built from getattr alone.

    ``getattr(getattr, '__self__')`` is the builtins module, hence ``exec``; HistoryBuffer's
    ``__setstate__`` stores any state in its ``__dict__``, so its ``__reduce_ex__`` becomes
    ``{4: (exec, (code,))}.get``, which ``copy.deepcopy`` calls with 4 and then calls what it returns.
    """
    from mmengine.logging import HistoryBuffer

    exec_function = Call(getattr, Call(getattr, getattr, '__self__'), 'exec')
    reduce_ex = Call(getattr, {4: (exec_function, (writes_marker(marker),))}, 'get')
    state = {'max_length': 10, '_log_history': np.zeros(1), '_count_history': np.ones(1, np.int64),
             '__reduce_ex__': reduce_ex}
    return NewObject(HistoryBuffer, state)


def old_allow_list() -> list:
    """What ``mmagic._cli.mmengine_checkpoint_globals`` admitted before this fix (commit 3b73785)."""
    from mmengine.logging import HistoryBuffer

    multiarray = np.core.multiarray
    return ([HistoryBuffer, np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar, getattr]
            + [type(np.dtype(name)) for name in ('float64', 'float32', 'int64', 'int32')])


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A workspace with generated datasets and a 2-iteration training in ``work`` (``iter_2.pth``), once
    per test run (``once_per_run``: its tests may run on several pytest-xdist workers)."""
    def build(root: Path) -> Path:
        make_datasets(root)
        run(train_command(root / 'work', max_iters=2), root)
        return root

    return once_per_run(tmp_path_factory, 'safe_load_trained', build, str, Path)


def train_command(work_dir, max_iters: int, *extra: str) -> list[str]:
    return [PYTHON, str(REPO / 'tools' / 'train.py'), str(CONFIG), '--work-dir', str(work_dir), '--cfg-options',
            *TINY, 'val_dataloader.num_workers=0', patch_option(2), f'train_cfg.max_iters={max_iters}', *extra]


def crafted_checkpoint(trained, tmp_path, gadget) -> tuple:
    """The genuine ``iter_2.pth`` with ``gadget(marker)`` in its message hub; returns (path, marker)."""
    marker = tmp_path / 'marker'
    checkpoint = torch.load(trained / 'work' / 'iter_2.pth', weights_only=False)  # written by this test: trusted
    checkpoint['message_hub']['runtime_info']['gadget'] = gadget(marker)
    path = tmp_path / 'crafted.pth'
    torch.save(checkpoint, path)
    return path, marker


@pytest.mark.slow
def test_training_checkpoint_reads_as_data(trained):
    from mmengine.logging import HistoryBuffer

    path = trained / 'work' / 'iter_2.pth'
    reference = torch.load(path, weights_only=False)  # written by this test: trusted
    checkpoint = load_untrusted(path)
    assert checkpoint['meta']['iter'] == 2
    assert checkpoint['state_dict'].keys() == reference['state_dict'].keys()
    assert all(torch.equal(checkpoint['state_dict'][k], v) for k, v in reference['state_dict'].items())
    scalars = checkpoint['message_hub']['log_scalars']
    assert scalars.keys() == reference['message_hub']['log_scalars'].keys()
    for key, buffer in scalars.items():
        assert type(buffer) is HistoryBuffer
        expected = reference['message_hub']['log_scalars'][key]
        assert np.array_equal(buffer._log_history, expected._log_history)
        assert np.array_equal(buffer._count_history, expected._count_history)
        assert buffer.max_length == expected.max_length and buffer.statistics('mean') == expected.mean()
    best = checkpoint['message_hub']['runtime_info']['best_score']
    assert type(best) is np.float64 and best == reference['message_hub']['runtime_info']['best_score']
    assert all(state['step'] == 2 for state in checkpoint['optimizer']['state'].values())
    assert checkpoint['param_schedulers'] == reference['param_schedulers']
    assert read_checkpoint(path).keys() == checkpoint.keys()


def test_basicsr_training_state_reads_as_data(tmp_path):
    """A BasicSR ``.state``: optimizer state and a scheduler whose milestones are a Counter."""
    net = torch.nn.Conv2d(3, 3, 3)
    optimizer = torch.optim.Adam(net.parameters())
    net(torch.ones(1, 3, 8, 8)).sum().backward()
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [10, 20])
    state = {'epoch': 0, 'iter': 1, 'optimizers': [optimizer.state_dict()], 'schedulers': [scheduler.state_dict()]}
    torch.save(state, tmp_path / '1.state')
    loaded = load_untrusted(tmp_path / '1.state')
    assert loaded['iter'] == 1 and loaded['schedulers'][0]['milestones'] == Counter([10, 20])
    assert torch.equal(loaded['optimizers'][0]['state'][0]['exp_avg'], optimizer.state_dict()['state'][0]['exp_avg'])


@pytest.mark.parametrize('gadget, refusal', [
    (exec_gadget, 'refuses to load global builtins.exec'),
    (planted_history_buffer, 'refuses to load global builtins.getattr'),
])
@pytest.mark.slow
def test_crafted_checkpoint_is_refused_before_its_code_runs(trained, tmp_path, gadget, refusal):
    path, marker = crafted_checkpoint(trained, tmp_path, gadget)
    for reader in (load_untrusted, read_checkpoint):
        with pytest.raises(CheckpointError) as error:
            reader(path)
        message = str(error.value)
        assert message.startswith(f'{path}: {refusal}') and '\n' not in message
    assert not marker.exists()


@pytest.mark.slow
def test_old_allow_list_ran_the_getattr_gadget(trained, tmp_path):
    """The exploit is real: with the former allow-list, resuming's message hub ran the file's code."""
    from mmengine.logging import MessageHub

    path, marker = crafted_checkpoint(trained, tmp_path, planted_history_buffer)
    with torch.serialization.safe_globals(old_allow_list()):
        checkpoint = torch.load(path, weights_only=True)
    MessageHub('old-allow-list').load_state_dict(checkpoint['message_hub'])  # as Runner.resume does
    assert marker.read_text() == 'code from the checkpoint ran'


@pytest.mark.slow
def test_resume_from_crafted_checkpoint_exits_in_one_line(trained, tmp_path):
    path, marker = crafted_checkpoint(trained, tmp_path, planted_history_buffer)
    result = subprocess.run(train_command(tmp_path / 'work', 4, '--resume', str(path)), cwd=trained,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1].startswith(f'error: {path}: refuses to load global builtins.getattr')
    assert 'Traceback' not in result.stderr
    assert not marker.exists()
    assert not list((tmp_path / 'work').glob('iter_*.pth'))


@pytest.mark.slow
def test_resume_continues_at_the_next_iteration_with_optimizer_state(trained, tmp_path):
    work = tmp_path / 'work'
    result = run(train_command(work, 3, '--resume', str(trained / 'work' / 'iter_2.pth')), trained)
    assert 'resumed' in (result.stdout + result.stderr).lower()
    assert sorted(train_losses(work)) == [3]
    checkpoint = load_untrusted(work / 'iter_3.pth')
    assert checkpoint['meta']['iter'] == 3
    # Adam counts its steps: 3 only if the two steps of the first run were restored.
    assert all(state['step'] == 3 for state in checkpoint['optimizer']['state'].values())


def hostile_file(tmp_path, payload):
    path = tmp_path / 'hostile.pth'
    torch.save(payload, path)
    return path


def test_object_arrays_are_refused(tmp_path):
    path = hostile_file(tmp_path, {'scores': np.array([print], dtype=object)})
    with pytest.raises(CheckpointError, match="refuses the numpy dtype 'O8'"):
        load_untrusted(path)


def test_planted_special_attribute_is_refused(tmp_path):
    """``weights_only`` itself lets a file set attributes on an OrderedDict; none named like a special method."""
    planted = OrderedDict(a=1)
    planted.__deepcopy__ = set
    with pytest.raises(CheckpointError, match='refuses OrderedDict attribute.s. __deepcopy__'):
        load_untrusted(hostile_file(tmp_path, {'runtime_info': planted}))
