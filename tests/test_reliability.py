"""The tools under bad input and faults: no overwritten input, no crashed batch, no traceback, nothing
silently wrong. Outputs and --overwrite, image size limits read from headers, per-image failures of
any kind, non-finite weights and outputs, numeric arguments, and full or read-only file systems
simulated by fault injection (tests/test_reliability_mounts.py does the same on real mounts)."""
from __future__ import annotations

import errno
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from lesrcnn_plugin import fileio, image_io
from lesrcnn_plugin.archs import LESRCNN
from lesrcnn_plugin.checkpoint import save_checkpoint
from lesrcnn_plugin.cli import convert_checkpoint as convert_cli
from lesrcnn_plugin.cli import count_flops as count_flops_cli
from lesrcnn_plugin.cli import upscale as upscale_cli
from lesrcnn_plugin.cli._common import OutputError, OutputGuard, valid_names
from lesrcnn_plugin.errors import ImageError
from lesrcnn_plugin.image_io import ImageTooLargeError, decode_image, image_size, read_image, write_image
from lesrcnn_plugin.inference import prepare_network


def header_only_png(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming ``width`` x ``height`` RGB pixels, with an empty IDAT:
    a few dozen bytes that a decoder would expand to width * height * 3 bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))

    header = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(b'')) + chunk(b'IEND', b'')


def random_png(path: Path, size=(10, 12), seed: int = 0) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8))
    return path.read_bytes()


def hidden_files(folder: Path) -> list[str]:
    """Temporaries a writer would leave behind (``.<name>.<pid>.<random>.<kind>``)."""
    return sorted(p.name for p in folder.rglob('.*'))


@pytest.fixture(scope='module')
def weights(tmp_path_factory) -> Path:
    """A small x2 checkpoint (BasicSR format)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('weights') / 'w.pth'
    save_checkpoint(LESRCNN(2, num_feat=16).state_dict(), path, 'basicsr')
    return path


def upscale(weights: Path, *args: str) -> int:
    return upscale_cli.main(['-c', str(weights), *map(str, args)])


# ------------------------------------------------------------------------------------ outputs


def test_upscale_never_writes_over_its_input(tmp_path, weights, capsys):
    original = random_png(tmp_path / 'inplace.png')
    for extra in ([], ['--overwrite']):
        assert upscale(weights, tmp_path / 'inplace.png', '-o', tmp_path, '--suffix', '', *extra) == 1
        assert f'{tmp_path / "inplace.png"}: is the input' in capsys.readouterr().err
        assert (tmp_path / 'inplace.png').read_bytes() == original


def test_upscale_never_writes_over_another_input(tmp_path, weights, capsys):
    """photo.jpg's output name photo.png is the other input: refused even with --overwrite."""
    png = random_png(tmp_path / 'in' / 'photo.png', seed=1)
    cv2.imwrite(str(tmp_path / 'in' / 'photo.jpg'), np.zeros((8, 8, 3), np.uint8))
    assert upscale(weights, tmp_path / 'in' / 'photo.jpg', tmp_path / 'in' / 'photo.png', '-o', tmp_path / 'in',
                   '--suffix', '', '--overwrite') == 1
    assert 'is the input' in capsys.readouterr().err
    assert (tmp_path / 'in' / 'photo.png').read_bytes() == png


def test_upscale_refuses_existing_outputs_by_name_and_goes_on(tmp_path, weights, capsys):
    random_png(tmp_path / 'in' / 'a.png', seed=1)
    random_png(tmp_path / 'in' / 'b.png', seed=2)
    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / 'a_x2.png').write_bytes(b'keep me')
    assert upscale(weights, tmp_path / 'in', '-o', tmp_path / 'out') == 1
    err = capsys.readouterr().err
    assert f'{tmp_path / "out" / "a_x2.png"}: exists, not replaced (pass --overwrite to replace it)' in err
    assert (tmp_path / 'out' / 'a_x2.png').read_bytes() == b'keep me'
    assert read_image(tmp_path / 'out' / 'b_x2.png').shape == (20, 24, 3)  # the rest of the batch went on
    assert upscale(weights, tmp_path / 'in', '-o', tmp_path / 'out', '--overwrite') == 0
    assert read_image(tmp_path / 'out' / 'a_x2.png').shape == (20, 24, 3)


def test_convert_refuses_existing_output_and_input(tmp_path, weights, capsys):
    out = tmp_path / 'out.pth'
    out.write_bytes(b'keep me')
    assert convert_cli.main([str(weights), str(out), '--to', 'plain']) == 1
    assert f'{out}: exists, not replaced (pass --overwrite' in capsys.readouterr().err
    assert out.read_bytes() == b'keep me'
    assert convert_cli.main([str(weights), str(out), '--to', 'plain', '--overwrite']) == 0
    assert out.read_bytes() != b'keep me'
    before = weights.read_bytes()
    with pytest.raises(SystemExit) as exit_info:  # the input as output is a usage error, --overwrite or not
        convert_cli.main([str(weights), str(weights), '--to', 'official', '--overwrite'])
    assert exit_info.value.code == 2 and weights.read_bytes() == before


def test_output_guard_knows_inputs_by_identity(tmp_path):
    source = tmp_path / 'input.png'
    source.write_bytes(b'x')
    (tmp_path / 'symlink.png').symlink_to(source)
    os.link(source, tmp_path / 'hardlink.png')
    guard = OutputGuard([source], overwrite=True)
    for alias in (tmp_path / 'symlink.png', tmp_path / 'hardlink.png', tmp_path / '.' / 'input.png'):
        with pytest.raises(OutputError, match='is the input'):
            guard.check(alias)
    guard.check(tmp_path / 'new.png')
    (tmp_path / 'other.png').write_bytes(b'y')
    guard.check(tmp_path / 'other.png')  # exists, and --overwrite was given
    with pytest.raises(OutputError, match='exists, not replaced'):
        OutputGuard([source], overwrite=False).check(tmp_path / 'other.png')


# ------------------------------------------------------------------------------------- limits


def test_a_header_bomb_is_refused_by_name_and_the_batch_goes_on(tmp_path, weights, capsys, monkeypatch):
    random_png(tmp_path / 'in' / 'good.png')
    (tmp_path / 'in' / 'bomb60k.png').write_bytes(header_only_png(60000, 60000))
    (tmp_path / 'in' / 'bomb30k.png').write_bytes(header_only_png(30000, 30000))
    decoded = []
    real_decode = image_io.decode_image
    monkeypatch.setattr(image_io, 'decode_image', lambda data, source: decoded.append(source)
                        or real_decode(data, source))
    assert upscale(weights, tmp_path / 'in', '-o', tmp_path / 'out', '--tile', 'none') == 1
    err = capsys.readouterr().err
    limit = upscale_cli.default_max_pixels(prepare_network(LESRCNN(2, num_feat=8)), None, torch.device('cpu'),
                                           torch.float32)
    for name, side in (('bomb60k.png', 60000), ('bomb30k.png', 30000)):
        assert (f'{tmp_path / "in" / name}: {side}x{side} image ({side * side / 1e6:.1f} MP) is larger than the limit '
                f'of {limit / 1e6:.1f} MP (not decoded); use --tile 512 (up to 16 MP) or raise --max-pixels') in err
    assert decoded == [str(tmp_path / 'in' / 'good.png')]  # the bombs were never decoded
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['good_x2.png']


def test_max_pixels_and_its_defaults(tmp_path, weights, capsys):
    random_png(tmp_path / 'in.png', size=(10, 12))
    assert upscale(weights, tmp_path / 'in.png', '-o', tmp_path / 'out', '--max-pixels', '119', '--tile', 'none') == 1
    assert 'larger than the limit of 0.0 MP (not decoded); use --tile 512' in capsys.readouterr().err
    assert upscale(weights, tmp_path / 'in.png', '-o', tmp_path / 'out', '--max-pixels', '119') == 1  # --tile auto
    assert 'raise --max-pixels if this machine has the memory' in capsys.readouterr().err
    assert upscale(weights, tmp_path / 'in.png', '-o', tmp_path / 'out', '--max-pixels', '119', '--tile', '4') == 1
    assert 'raise --max-pixels if this machine has the memory' in capsys.readouterr().err
    assert upscale(weights, tmp_path / 'in.png', '-o', tmp_path / 'out', '--max-pixels', '120') == 0

    model = LESRCNN(2, num_feat=8).eval()
    cpu = torch.device('cpu')
    fast = prepare_network(model, fast=True)
    assert upscale_cli.default_max_pixels(fast, None, cpu, torch.float32) == upscale_cli.MAX_PIXELS_UNTILED_FUSED
    assert upscale_cli.default_max_pixels(fast, None, cpu, torch.bfloat16) == upscale_cli.MAX_PIXELS_UNTILED
    assert upscale_cli.default_max_pixels(model, None, cpu, torch.float32) == upscale_cli.MAX_PIXELS_UNTILED
    assert upscale_cli.default_max_pixels(model, 256, cpu, torch.float32) == upscale_cli.MAX_PIXELS_TILED
    assert upscale_cli.default_max_pixels(model, None, torch.device('cuda'), torch.float16) == \
        upscale_cli.MAX_PIXELS_TILED


def test_image_size_reads_headers_only(tmp_path):
    (tmp_path / 'bomb.png').write_bytes(header_only_png(60000, 60000))
    assert image_size(tmp_path / 'bomb.png') == (60000, 60000)  # past Pillow's own bomb limit
    with pytest.raises(ImageTooLargeError, match='60000x60000'):
        read_image(tmp_path / 'bomb.png', max_pixels=10**9)
    # Without a limit the decoder refuses it: one ImageError, not cv2.error.
    with pytest.raises(ImageError, match='bomb.png: not a readable image'):
        decode_image((tmp_path / 'bomb.png').read_bytes(), str(tmp_path / 'bomb.png'))
    (tmp_path / 'damaged.ppm').write_bytes(b'P6\n4\xb9 40\n255\n' + bytes(100))  # Pillow: ValueError
    (tmp_path / 'text.png').write_text('not an image')
    for name in ('damaged.ppm', 'text.png', 'absent.png'):
        with pytest.raises(ImageError, match=name):
            image_size(tmp_path / name)


@pytest.mark.parametrize('error, expected', [
    (MemoryError('Unable to allocate 23.5 GiB'), 'MemoryError: out of host memory (Unable to allocate 23.5 GiB); '
                                                 'use --tile or a lower --max-pixels'),
    (ZeroDivisionError('division by zero'), 'ZeroDivisionError: division by zero'),
    (OSError(errno.EIO, 'Input/output error'), 'OSError: [Errno 5] Input/output error'),
])
def test_any_failure_of_one_image_is_reported_and_the_batch_goes_on(tmp_path, weights, capsys, monkeypatch,
                                                                    error, expected):
    random_png(tmp_path / 'in' / 'a.png', seed=1)
    random_png(tmp_path / 'in' / 'b.png', seed=2)
    real_read, real_upscale, reading = upscale_cli.read_image, upscale_cli.upscale_image, []

    def read(path, **kwargs):
        reading.append(Path(path).name)
        return real_read(path, **kwargs)

    def fail_on_a(network, image, **kwargs):
        if reading[-1] == 'a.png':
            raise error
        return real_upscale(network, image, **kwargs)

    monkeypatch.setattr(upscale_cli, 'read_image', read)
    monkeypatch.setattr(upscale_cli, 'upscale_image', fail_on_a)
    assert upscale(weights, tmp_path / 'in', '-o', tmp_path / 'out') == 1
    err = capsys.readouterr().err
    assert f'  {tmp_path / "in" / "a.png"}: {expected}' in err.splitlines()
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['b_x2.png']


# --------------------------------------------------------------------------- non-finite values


def nan_state() -> dict[str, torch.Tensor]:
    state = LESRCNN(2, num_feat=16).state_dict()
    state['refinement.to_rgb.weight'].fill_(float('nan'))
    return state


def test_a_nan_checkpoint_is_refused_by_upscale_and_export(tmp_path, capsys):
    save_checkpoint(nan_state(), tmp_path / 'nan.pth', 'basicsr')
    random_png(tmp_path / 'in.png')
    assert upscale(tmp_path / 'nan.pth', tmp_path / 'in.png', '-o', tmp_path / 'out') == 1
    assert 'non-finite weights (NaN or Inf) in refinement.to_rgb.weight' in capsys.readouterr().err
    pytest.importorskip('onnxruntime')
    from lesrcnn_plugin.cli import export_onnx as export_cli

    assert export_cli.main([str(tmp_path / 'nan.pth'), str(tmp_path / 'nan.onnx')]) == 1
    assert 'non-finite weights (NaN or Inf) in refinement.to_rgb.weight' in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in.png', 'nan.pth']


def test_parity_check_fails_on_nan_or_inf_from_either_side(tmp_path):
    pytest.importorskip('onnxruntime')
    from lesrcnn_plugin.export import NonFiniteOutputError, export_onnx, onnx_parity

    torch.manual_seed(4)
    good = LESRCNN(2, num_feat=16).eval()
    bad = LESRCNN(2, num_feat=16).eval()
    bad.load_state_dict(nan_state())  # built in Python: the loader would refuse these weights
    infinite = LESRCNN(2, num_feat=16).eval()
    with torch.no_grad():
        infinite.refinement.to_rgb.weight.fill_(float('inf'))
    good_onnx = export_onnx(good, tmp_path / 'good.onnx', fast=False)
    with pytest.raises(NonFiniteOutputError, match='from PyTorch on a 1x3x37x53 input'):
        onnx_parity(good_onnx, bad)
    with pytest.raises(NonFiniteOutputError, match='from onnxruntime'):
        onnx_parity(export_onnx(bad, tmp_path / 'bad.onnx', fast=False), good)
    with pytest.raises(NonFiniteOutputError, match='from onnxruntime'):
        onnx_parity(export_onnx(infinite, tmp_path / 'inf.onnx', fast=False), good)


def test_export_writes_nothing_when_outputs_are_not_finite(tmp_path, capsys):
    """Finite weights large enough to overflow float32: loaded, exported, refused by the parity check."""
    pytest.importorskip('onnxruntime')
    from lesrcnn_plugin.cli import export_onnx as export_cli

    state = LESRCNN(2, num_feat=16).state_dict()
    for name, tensor in state.items():
        if name.endswith('weight') and 'mean' not in name:
            tensor.mul_(1e30)
    save_checkpoint(state, tmp_path / 'huge.pth', 'basicsr')
    assert export_cli.main([str(tmp_path / 'huge.pth'), str(tmp_path / 'huge.onnx')]) == 1
    err = capsys.readouterr().err
    assert f'parity check failed; {tmp_path / "huge.onnx"} not written: non-finite output (NaN or Inf)' in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['huge.pth']


# -------------------------------------------------------------------------- numeric arguments


@pytest.mark.parametrize('argv', [
    ['--num-feat', '0'], ['--num-feat', '-3'], ['--lr-size', '8x8', '--num-feat', 'x'],
])
def test_count_flops_refuses_non_positive_widths(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        count_flops_cli.main(['--arch', 'LESRCNN', *argv])
    assert exit_info.value.code == 2
    assert '--num-feat' in capsys.readouterr().err


@pytest.mark.parametrize('argv', [['--tile', '0'], ['--tile', '8', '--tile-overlap', '-1'], ['--max-pixels', '0'],
                                  ['--tile-overlap', '4']])
def test_upscale_refuses_bad_numbers(tmp_path, weights, argv):
    with pytest.raises(SystemExit) as exit_info:
        upscale(weights, tmp_path / 'in.png', '-o', tmp_path / 'out', *argv)
    assert exit_info.value.code == 2


def test_upscale_reports_a_missing_checkpoint_before_missing_inputs(tmp_path, capsys):
    missing_checkpoint = tmp_path / 'no_such.pth'
    assert upscale_cli.main(['-c', str(missing_checkpoint), str(tmp_path / 'no_such.png'),
                             '-o', str(tmp_path / 'out')]) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and str(missing_checkpoint) in err and 'no_such.png' not in err
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('argv', [['--atol', 'nan'], ['--atol', '-1'], ['--atol', 'inf'], ['--opset', '0']])
def test_export_refuses_bad_numbers(tmp_path, weights, argv):
    pytest.importorskip('onnxruntime')
    from lesrcnn_plugin.cli import export_onnx as export_cli

    with pytest.raises(SystemExit) as exit_info:
        export_cli.main([str(weights), str(tmp_path / 'out.onnx'), *argv])
    assert exit_info.value.code == 2


def test_valid_names_puts_the_closest_first_and_counts_the_rest():
    assert valid_names('upscal', ['num_feat', 'variant', 'upscale']) == 'upscale, num_feat, variant'
    assert valid_names('LESRCN', [f'Net{i}' for i in range(30)] + ['LESRCNN'], limit=3) == \
        'LESRCNN, Net0, Net1 and 28 more'


# ------------------------------------------------------------------- full and read-only disks


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, 'No space left on device')  # what a failed write() raises: no file name


def test_atomic_writes_name_the_target_on_a_full_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(Path, 'write_bytes', no_space)
    with pytest.raises(OSError) as error:
        write_image(tmp_path / 'out.png', np.zeros((4, 4, 3), np.uint8))
    assert (error.value.errno, error.value.filename) == (errno.ENOSPC, str(tmp_path / 'out.png'))
    assert list(tmp_path.iterdir()) == []


def test_atomic_writes_name_the_target_in_a_read_only_folder(tmp_path, monkeypatch):
    """Creating the temporary fails naming the temporary, and so does removing it afterwards (on a
    read-only file system even unlinking a missing file fails): the error names the target."""
    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, 'Read-only file system', str(path))

    monkeypatch.setattr(Path, 'write_bytes', read_only)
    monkeypatch.setattr(Path, 'unlink', read_only)
    with pytest.raises(OSError) as error:
        fileio.write_bytes_atomic(tmp_path / 'out.bin', b'data')
    assert (error.value.errno, error.value.filename) == (errno.EROFS, str(tmp_path / 'out.bin'))
    monkeypatch.setattr(Path, 'mkdir', read_only)
    with pytest.raises(OSError) as error:
        fileio.make_sibling_dir(tmp_path / 'db.lmdb', 'tmp')
    assert error.value.filename == str(tmp_path / 'db.lmdb')


def test_upscale_names_the_output_on_a_full_disk(tmp_path, weights, capsys, monkeypatch):
    random_png(tmp_path / 'in.png')
    monkeypatch.setattr(Path, 'write_bytes', no_space)
    assert upscale(weights, tmp_path / 'in.png', '-o', tmp_path / 'out') == 1
    err = capsys.readouterr().err
    assert f'error: {tmp_path / "out" / "in_x2.png"}: No space left on device' in err
    assert hidden_files(tmp_path) == []


def test_convert_names_the_output_on_a_full_disk(tmp_path, weights, capsys, monkeypatch):
    monkeypatch.setattr(Path, 'write_bytes', no_space)
    assert convert_cli.main([str(weights), str(tmp_path / 'out.pth'), '--to', 'mmagic']) == 1
    assert capsys.readouterr().err.splitlines() == [f'error: {tmp_path / "out.pth"}: No space left on device']
    assert list(tmp_path.iterdir()) == []
