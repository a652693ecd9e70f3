"""No file a user hands the tools runs code or exhausts the machine (issue 20, parts 1, 2 and 5).

Each crafted file would leave a marker file if it were loaded the usual, unsafe way; each test first
shows that it does (so that it cannot pass by accident), then runs the installed command on it as a
user would and checks: no marker, exit status 1, one error line naming the file.
"""
from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Tuple

import pytest
import torch

from lesrcnn_plugin.archs import build_arch
from lesrcnn_plugin.cli import count_flops
from lesrcnn_plugin.errors import CheckpointError
from lesrcnn_plugin.safe_load import MAX_BYTES_VARIABLE, load_untrusted

BIN = Path(sys.executable).parent
TOOLS = ('lesrcnn-count-flops', 'lesrcnn-measure-runtime')


class PickleCallsCode:
    """A pickle whose ``__reduce__`` creates ``marker`` (through a shell) when unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


class ScriptedSetState(torch.nn.Module):
    """A TorchScript module whose ``__setstate__`` (run by ``torch.jit.load``) creates ``marker``."""

    def __init__(self, marker: str):
        super().__init__()
        self.marker = marker
        self.written = torch.zeros(1)

    def forward(self, x):
        return x

    @torch.jit.export
    def __getstate__(self) -> Tuple[str, bool]:
        return self.marker, self.training

    @torch.jit.export
    def __setstate__(self, state: Tuple[str, bool]) -> None:
        self.marker = state[0]
        self.training = state[1]
        self.written = torch.from_file(state[0], True, 1)  # shared=True creates the file


def run_tool(tool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / tool), *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, 'OMP_NUM_THREADS': '1'})


def assert_refused(result: subprocess.CompletedProcess, *words: str) -> str:
    """Exit status 1 and exactly one error line on standard error, holding ``words``."""
    errors = [line for line in result.stderr.splitlines() if line.startswith('error: ')]
    assert result.returncode == 1, result.stderr[-2000:]
    assert 'Traceback' not in result.stderr and len(errors) == 1, result.stderr[-2000:]
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def torchscript_file(tmp_path):
    """(archive, marker): a real TorchScript archive whose loading creates the marker."""
    marker = tmp_path / 'torchscript_ran'
    archive = tmp_path / 'model.pt'
    torch.jit.save(torch.jit.script(ScriptedSetState(str(marker))), str(archive))
    assert not marker.exists()
    return archive, marker


def test_the_torchscript_payload_runs_when_script_loaded(torchscript_file):
    archive, marker = torchscript_file
    torch.jit.load(str(archive))
    assert marker.exists()


@pytest.mark.parametrize('tool', TOOLS)
def test_torchscript_weights_are_refused_not_loaded(tool, torchscript_file, tmp_path):
    archive, marker = torchscript_file
    result = run_tool(tool, '--weights', str(archive), cwd=tmp_path)
    assert_refused(result, str(archive), 'TorchScript archive')
    assert not marker.exists()


def test_the_pickle_payload_runs_when_unpickled(tmp_path):
    marker = tmp_path / 'pickle_ran'
    torch.save({'weight': PickleCallsCode(marker)}, tmp_path / 'payload.pth')
    torch.load(tmp_path / 'payload.pth', weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize('tool', TOOLS)
def test_pickle_weights_are_refused_not_run(tool, tmp_path):
    marker = tmp_path / 'pickle_ran'
    torch.save({'weight': PickleCallsCode(marker)}, tmp_path / 'payload.pth')
    result = run_tool(tool, '--weights', 'payload.pth', cwd=tmp_path)
    assert_refused(result, 'payload.pth', 'refuses to load global posix.system')
    assert not marker.exists()


def write_options(path: Path, network_type: str, marker: Path) -> None:
    path.write_text(f'network_g:\n  type: "{network_type}"\n  command: "touch {marker}"\n', encoding='utf-8')


def test_a_module_callable_from_the_command_line_is_called(tmp_path):
    """What the options file below asks for, typed on the command line: it runs."""
    from lesrcnn_plugin.networks import resolve_network

    marker = tmp_path / 'command_ran'
    with pytest.raises(ValueError, match='not a torch.nn.Module'):
        resolve_network('os:system', {'command': f'touch {marker}'})
    assert marker.exists()


@pytest.mark.parametrize('tool', TOOLS)
def test_module_callable_in_an_options_file_is_refused(tool, tmp_path):
    marker = tmp_path / 'command_ran'
    write_options(tmp_path / 'evil.yml', 'os:system', marker)
    result = run_tool(tool, '-opt', 'evil.yml', cwd=tmp_path)
    assert_refused(result, 'evil.yml: network_g.type', "'os:system' is not a registered network name")
    assert not marker.exists()


def memory_bomb(path: Path, elements: int = 70_001, declared: int = 1_500_000_000) -> None:
    """A zip checkpoint of ``elements`` floats whose pickle declares ``declared`` of them (6 GB)."""
    buffer = io.BytesIO()
    torch.save({'weight': torch.zeros(elements)}, buffer)
    original, inflated = b'J' + struct.pack('<i', elements), b'J' + struct.pack('<i', declared)
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, 'w') as bomb:
        for record in source.infolist():
            data = source.read(record)
            if record.filename.endswith('/data.pkl'):
                assert data.count(original) == 2  # the storage's size and the tensor's shape
                data = data.replace(original, inflated)
            bomb.writestr(record, data)


def test_a_memory_bomb_declares_6_gb(tmp_path):
    """torch would allocate what the file declares: read on the meta device, nothing is allocated."""
    memory_bomb(tmp_path / 'bomb.pth')
    assert torch.load(tmp_path / 'bomb.pth', map_location='meta', weights_only=True)['weight'].numel() == 1_500_000_000
    assert (tmp_path / 'bomb.pth').stat().st_size < 400_000


@pytest.mark.parametrize('tool', TOOLS)
def test_a_memory_bomb_is_refused_before_allocating(tool, tmp_path):
    memory_bomb(tmp_path / 'bomb.pth')
    result = run_tool(tool, '--weights', 'bomb.pth', cwd=tmp_path)
    assert_refused(result, 'bomb.pth: storage 0 declares 6,000,000,000 bytes but its record data/0 holds 280,004')


def test_tensors_above_the_limit_are_refused_by_name(tmp_path, monkeypatch):
    torch.save(build_arch('LESRCNN', upscale=2).state_dict(), tmp_path / 'weights.pth')
    assert load_untrusted(tmp_path / 'weights.pth')
    monkeypatch.setenv(MAX_BYTES_VARIABLE, '100000')
    with pytest.raises(CheckpointError, match=r'weights.pth: its tensors declare 2,\d{3},\d{3} bytes, above the limit '
                                              r'of 100,000 \(raise it with LESRCNN_MAX_CHECKPOINT_BYTES=BYTES'):
        load_untrusted(tmp_path / 'weights.pth')
    monkeypatch.setenv(MAX_BYTES_VARIABLE, 'lots')
    with pytest.raises(ValueError, match="LESRCNN_MAX_CHECKPOINT_BYTES='lots': give a positive number of bytes"):
        load_untrusted(tmp_path / 'weights.pth')


def test_a_legacy_file_declaring_more_than_it_holds_is_refused(tmp_path):
    """torch's format before 1.6 (the authors' files) allocates what its pickle declares, too."""
    torch.save({'weight': torch.zeros(1000)}, tmp_path / 'legacy.pth', _use_new_zipfile_serialization=False)
    data = (tmp_path / 'legacy.pth').read_bytes()
    (tmp_path / 'truncated.pth').write_bytes(data[:-2000])
    with pytest.raises(CheckpointError, match=r'truncated.pth: its tensors declare 4,000 bytes but the file holds '
                                              r'[\d,]+ after its pickles'):
        load_untrusted(tmp_path / 'truncated.pth')
    assert load_untrusted(tmp_path / 'legacy.pth')['weight'].shape == (1000,)


def count_flops_error(capsys, *argv: str) -> str:
    assert count_flops.main(list(argv)) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize('make, argv, message', [
    (lambda tmp: (tmp / 'folder').mkdir(), ['--weights', 'folder'], 'error: folder: is a folder, not a checkpoint file'),
    (lambda tmp: None, ['--weights', ''], "error: '': an empty name is neither a checkpoint file nor a weights name"),
    (lambda tmp: (tmp / 'notes.pth').write_text('not weights\n'), ['--weights', 'notes.pth'],
     'error: notes.pth: not a PyTorch checkpoint: neither a zip archive nor a file written by torch.save'),
    (lambda tmp: (tmp / 'x2.yml').write_text("network_g:\n  type: LESRCNN\n  upscale: '2'\n"), ['-opt', 'x2.yml'],
     "error: x2.yml: network_g.upscale: '2' is a str, not an integer"),
])
def test_checkpoint_and_option_messages_say_what_is_wrong(tmp_path, monkeypatch, capsys, make, argv, message):
    monkeypatch.chdir(tmp_path)
    make(tmp_path)
    assert count_flops_error(capsys, *argv) == message


def test_count_flops_refuses_nan_weights_by_key(tmp_path, monkeypatch, capsys):
    state = build_arch('LESRCNN', upscale=2).state_dict()
    state['refinement.to_rgb.weight'][0, 0, 0, 0] = float('nan')
    torch.save(state, tmp_path / 'nan.pth')
    monkeypatch.chdir(tmp_path)
    assert count_flops_error(capsys, '--weights', 'nan.pth') == \
        'error: nan.pth: non-finite weights (NaN or Inf) in refinement.to_rgb.weight'


def test_spandrel_gets_the_state_dict_read_as_data(tmp_path, monkeypatch, capsys):
    """A network outside the family still counts through spandrel, from the inert reader's state dict."""
    spandrel_span = pytest.importorskip('spandrel.architectures.SPAN', reason='the spandrel extra is not installed')
    torch.save(spandrel_span.SPAN(num_in_ch=3, num_out_ch=3, upscale=2).state_dict(), tmp_path / 'span.pth')
    monkeypatch.chdir(tmp_path)
    assert count_flops.main(['--weights', 'span.pth', '--format', 'json']) == 0
    assert '"network": "spandrel:SPAN"' in capsys.readouterr().out
    torch.save({'conv.weight': torch.zeros(3, 3, 1, 1)}, tmp_path / 'other.pth')
    assert count_flops_error(capsys, '--weights', 'other.pth') == (
        'error: other.pth: neither a LESRCNN-family checkpoint nor an architecture spandrel detects '
        '(first keys: conv.weight)')
