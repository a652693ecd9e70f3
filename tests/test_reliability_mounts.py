"""Every writer on a real full file system and a real read-only one: one line naming the file the user
asked for, exit status 1, no temporary left. The file systems are 64 KiB tmpfs mounts, which needs
root (or CAP_SYS_ADMIN); the tests skip, saying so, where mounting is not permitted."""
from __future__ import annotations

import errno
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from lesrcnn_plugin.archs import LESRCNN
from lesrcnn_plugin.checkpoint import save_checkpoint
from lesrcnn_plugin.cli import convert_checkpoint, count_flops, prepare_testsets, upscale


def mount_tmpfs(target: Path, *options: str) -> None:
    """Mount a 64 KiB tmpfs on ``target``, or skip the test saying why it cannot be."""
    if shutil.which('mount') is None:
        pytest.skip('no mount command on this machine')
    result = subprocess.run(['mount', '-t', 'tmpfs', '-o', ','.join(['size=64k', *options]), 'tmpfs', str(target)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f'mounting a tmpfs is not permitted here: {result.stderr.strip() or result.returncode}')


def fill(folder: Path) -> None:
    """Write into ``folder`` until its file system is full."""
    with open(folder / 'filler', 'wb', buffering=0) as filler:
        try:
            while True:
                filler.write(bytes(4096))
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


@pytest.fixture(scope='module')
def inputs(tmp_path_factory) -> Path:
    """A checkpoint, an image, a miniature DIV2K and a benchmark set, outside the mounts."""
    root = tmp_path_factory.mktemp('inputs')
    torch.manual_seed(0)
    save_checkpoint(LESRCNN(2, num_feat=16).state_dict(), root / 'w.pth', 'basicsr')
    image = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    cv2.imwrite(str(root / 'in.png'), image)
    for folder in (root / 'DIV2K' / 'DIV2K_train_HR', root / 'Set5' / 'HR'):
        folder.mkdir(parents=True)
        cv2.imwrite(str(folder / '0001.png'), image)
    return root


@pytest.fixture(params=['full', 'read-only'])
def target(request, tmp_path):
    """``(folder, reason)``: a full or a read-only file system, unmounted afterwards."""
    folder = tmp_path / request.param
    folder.mkdir()
    mount_tmpfs(folder, *(['ro'] if request.param == 'read-only' else []))
    # Lazily: a file a failed writer left open must not keep the mount, or fail the test.
    request.addfinalizer(lambda: subprocess.run(['umount', '--lazy', str(folder)], check=True))
    if request.param == 'full':
        fill(folder)
    return folder, 'No space left on device' if request.param == 'full' else 'Read-only file system'


def only_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith('error: ')]
    assert len(lines) == 1, lines
    return lines[0]


def test_upscale(inputs, target, capsys):
    folder, reason = target
    assert upscale.main(['-c', str(inputs / 'w.pth'), str(inputs / 'in.png'), '-o', str(folder / 'out')]) == 1
    assert only_line(capsys) == f'error: {folder / "out" / "in_x2.png"}: {reason}'
    assert sorted(p.name for p in folder.iterdir()) in ([], ['filler'], ['filler', 'out'])


def test_convert(inputs, target, capsys):
    """torch.save's own writer would report a full disk as a RuntimeError, naming nothing."""
    folder, reason = target
    assert convert_checkpoint.main([str(inputs / 'w.pth'), str(folder / 'w.pth'), '--to', 'official']) == 1
    assert only_line(capsys) == f'error: {folder / "w.pth"}: {reason}'
    assert sorted(p.name for p in folder.iterdir()) in ([], ['filler'])


def test_export_onnx(inputs, target, capsys):
    pytest.importorskip('onnxruntime')
    from lesrcnn_plugin.cli import export_onnx

    folder, reason = target
    assert export_onnx.main([str(inputs / 'w.pth'), str(folder / 'w.onnx')]) == 1
    assert only_line(capsys) == f'error: {folder / "w.onnx"}: {reason}'
    assert sorted(p.name for p in folder.iterdir()) in ([], ['filler'])


def test_count_flops_output(target, capsys):
    folder, reason = target
    assert count_flops.main(['--arch', 'LESRCNN', '--output', str(folder / 'flops.md')]) == 1
    assert only_line(capsys) == f'error: {folder / "flops.md"}: {reason}'


def test_prepare_testsets(inputs, target, capsys):
    folder, reason = target
    assert prepare_testsets.main([str(inputs / 'Set5'), '--output', str(folder), '--scales', '2']) == 1
    assert only_line(capsys) == f'error: {folder / "Set5" / "X2"}: {reason}'
    assert not list(folder.rglob('.*'))


def test_prepare_div2k(inputs, target):
    """In a subprocess: LMDB writes its lock file through a memory map, and a write to a map of a
    full tmpfs is a SIGBUS, which would take pytest down with it."""
    folder, reason = target
    result = subprocess.run([sys.executable, '-m', 'lesrcnn_plugin.cli.prepare_div2k', '--input',
                             str(inputs / 'DIV2K'), '--output', str(folder), '--scales', '2', '--crop-size', '24',
                             '--step', '24', '--workers', '1', '--in-memory'], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1, result
    errors = [line for line in result.stderr.replace('\r', '\n').splitlines() if line.startswith('error: ')]
    assert errors == [f'error: {folder / "DIV2K_train_HR_sub.lmdb"}: {reason}']
    assert sorted(p.name for p in folder.iterdir()) in ([], ['filler'])
