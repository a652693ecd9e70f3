"""lesrcnn-prepare-testsets: every accepted layout, built in tmp_path, to the canonical layout; bad
inputs; and the shared Set5 in its EDSR and SelfExSR layouts."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import shared_path
from lesrcnn_plugin.cli import prepare_testsets
from lesrcnn_plugin.data import imresize, modcrop


def _image(seed, height, width, gray=False):
    rng = np.random.default_rng(seed)
    shape = (height, width) if gray else (height, width, 3)
    return cv2.GaussianBlur(rng.integers(0, 256, shape, dtype=np.uint8), (3, 3), 0)


def _write(path: Path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)


def _read(path: Path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def _outputs(root: Path):
    return sorted(str(p.relative_to(root)) for p in root.rglob('*.png'))


def test_edsr_layout_reads_lr_generates_missing_scale_and_fixes_gray(tmp_path, capsys):
    src = tmp_path / 'Set14'
    color, gray = _image(0, 50, 37), _image(1, 41, 30, gray=True)
    _write(src / 'HR' / 'comic.png', color)
    _write(src / 'HR' / 'lenna.png', gray)
    given_lr = {'comic': _image(2, 25, 18), 'lenna': _image(3, 20, 15, gray=True)}
    for name, lr in given_lr.items():
        _write(src / 'LR_bicubic' / 'X2' / f'{name}x2.png', lr)
    out = tmp_path / 'benchmark'
    assert prepare_testsets.main([str(src), '--output', str(out), '--scales', '2', '3']) == 0
    report = capsys.readouterr().out
    assert 'Set14: EDSR' in report and 'x3: no X3 folder, LR generated' in report
    assert 'x2: 2 images, LR read; 1 grayscale -> 3-channel; 2 HR cropped to LR*2' in report
    assert _outputs(out) == [f'Set14/X{k}/{kind}/{name}.png' for k in (2, 3) for kind in ('HR', 'LR')
                             for name in ('comic', 'lenna')]
    np.testing.assert_array_equal(_read(out / 'Set14/X2/LR/comic.png'), given_lr['comic'])
    np.testing.assert_array_equal(_read(out / 'Set14/X2/HR/comic.png'), color[:50, :36])
    lenna_hr = _read(out / 'Set14/X2/HR/lenna.png')
    assert lenna_hr.shape == (40, 30, 3)
    np.testing.assert_array_equal(lenna_hr, np.dstack([gray[:40]] * 3))
    np.testing.assert_array_equal(_read(out / 'Set14/X3/LR/comic.png'), imresize(modcrop(color, 3), 1 / 3))
    assert _read(out / 'Set14/X3/HR/comic.png').shape == (48, 36, 3)
    assert not list(out.rglob('.*'))  # no temporary folders


def test_basicsr_selfexsr_and_hr_only_layouts_in_one_root(tmp_path, capsys):
    root = tmp_path / 'downloads'
    hr = _image(4, 36, 48)
    # BasicSR: GTmod12 + LRbicx{k}, same file names.
    _write(root / 'Set5' / 'GTmod12' / 'bird.png', hr)
    _write(root / 'Set5' / 'LRbicx4' / 'bird.png', _image(5, 9, 12))
    # SelfExSR: x{k}/ and image_SRF_{k}/ with other methods' results next to HR/LR.
    _write(root / 'Urban100_SRF' / 'x4' / 'img_001_SRF_4_HR.png', hr)
    _write(root / 'Urban100_SRF' / 'x4' / 'img_001_SRF_4_LR.png', _image(6, 9, 12))
    _write(root / 'Urban100_SRF' / 'x4' / 'img_001_SRF_4_bicubic.png', _image(7, 36, 48))
    _write(root / 'Urban100_SRF' / 'image_SRF_2' / 'img_001_SRF_2_HR.png', hr)
    _write(root / 'Urban100_SRF' / 'image_SRF_2' / 'img_001_SRF_2_LR.png', _image(8, 18, 24))
    # HR only, images directly in the set folder; B100 is BSD100.
    _write(root / 'B100' / '3096.png', _image(9, 33, 50))
    out = tmp_path / 'benchmark'
    assert prepare_testsets.main([str(root), '--output', str(out), '--scales', '2', '4']) == 0
    report = capsys.readouterr().out
    assert 'Set5: BasicSR' in report and 'Urban100: SelfExSR' in report and 'BSD100: HR only' in report
    np.testing.assert_array_equal(_read(out / 'Set5/X4/LR/bird.png'), _image(5, 9, 12))
    np.testing.assert_array_equal(_read(out / 'Set5/X2/LR/bird.png'), imresize(hr, 1 / 2))
    np.testing.assert_array_equal(_read(out / 'Urban100/X2/LR/img_001.png'), _image(8, 18, 24))
    np.testing.assert_array_equal(_read(out / 'Urban100/X4/HR/img_001.png'), hr)
    assert len(list((out / 'Urban100/X4/LR').iterdir())) == 1
    bsd = _image(9, 33, 50)
    np.testing.assert_array_equal(_read(out / 'BSD100/X4/LR/3096.png'), imresize(modcrop(bsd, 4), 1 / 4))
    assert _read(out / 'BSD100/X4/HR/3096.png').shape == (32, 48, 3)

    # --sets selects; a rerun replaces the output folders.
    assert prepare_testsets.main([str(root), '--output', str(out), '--scales', '2', '--sets', 'Set5']) == 0
    assert 'Urban100' not in capsys.readouterr().out


def test_srf_layout_missing_scale_uses_other_hr(tmp_path, capsys):
    src = tmp_path / 'Set5'
    hr = _image(10, 48, 36)
    _write(src / 'x2' / 'img_002_SRF_2_HR.png', hr)
    _write(src / 'x2' / 'img_002_SRF_2_LR.png', _image(11, 24, 18))
    assert prepare_testsets.main([str(src), '--output', str(tmp_path / 'out'), '--scales', '3']) == 0
    assert 'x3: no x3 folder' in capsys.readouterr().out
    np.testing.assert_array_equal(_read(tmp_path / 'out/Set5/X3/LR/img_002.png'), imresize(hr, 1 / 3))


@pytest.mark.parametrize('case, message', [
    ('size', 'does not match HR'),
    ('missing_lr', 'no LR image for'),
    ('duplicate', 'two images named "baby"'),
    ('16bit', '16-bit'),
    ('transparent', 'transparent'),
    ('nothing', 'no test set found'),
])
def test_bad_inputs(tmp_path, capsys, case, message):
    src = tmp_path / 'Set5'
    _write(src / 'HR' / 'baby.png', _image(12, 40, 40))
    _write(src / 'HR' / 'bird.png', _image(13, 40, 40))
    _write(src / 'LR_bicubic' / 'X2' / 'babyx2.png', _image(14, 20, 20))
    _write(src / 'LR_bicubic' / 'X2' / 'birdx2.png', _image(15, 20, 20))
    if case == 'size':
        _write(src / 'LR_bicubic' / 'X2' / 'birdx2.png', _image(15, 20, 21))
    elif case == 'missing_lr':
        (src / 'LR_bicubic' / 'X2' / 'birdx2.png').unlink()
    elif case == 'duplicate':
        _write(src / 'HR' / 'baby.bmp', _image(12, 40, 40))
    elif case == '16bit':
        _write(src / 'HR' / 'bird.png', np.full((40, 40, 3), 1000, np.uint16))
    elif case == 'transparent':
        _write(src / 'HR' / 'bird.png', np.zeros((40, 40, 4), np.uint8))
    elif case == 'nothing':
        src = tmp_path / 'empty'
        src.mkdir()
    out = tmp_path / 'out'
    assert prepare_testsets.main([str(src), '--output', str(out), '--scales', '2']) == 1
    err = capsys.readouterr().err
    assert message in err and (case == 'nothing' or 'bird' in err or 'baby' in err)
    # Nothing half-written: no image files and no temporary folders.
    assert not out.exists() or not [p for p in out.rglob('*') if p.is_file() or p.name.startswith('.')]


def test_opaque_rgba_is_accepted(tmp_path):
    src = tmp_path / 'Set5'
    rgba = np.dstack([_image(16, 40, 40), np.full((40, 40), 255, np.uint8)])
    _write(src / 'HR' / 'bird.png', rgba)
    assert prepare_testsets.main([str(src), '--output', str(tmp_path / 'out'), '--scales', '4']) == 0
    np.testing.assert_array_equal(_read(tmp_path / 'out/Set5/X4/HR/bird.png'), rgba[:, :, :3])


@pytest.mark.parametrize('folder', ['Set5', 'Set5_SRF'])
def test_shared_set5(tmp_path, capsys, folder):
    src = shared_path('datasets', folder)
    out = tmp_path / 'benchmark'
    assert prepare_testsets.main([str(src), '--output', str(out)]) == 0
    assert capsys.readouterr().out.startswith('Set5: ')
    for scale in (2, 3, 4):
        names = sorted(p.name for p in (out / 'Set5' / f'X{scale}' / 'HR').iterdir())
        assert len(names) == 5 and names == sorted(p.name for p in (out / 'Set5' / f'X{scale}' / 'LR').iterdir())
        for name in names:
            hr, lr = _read(out / 'Set5' / f'X{scale}' / 'HR' / name), _read(out / 'Set5' / f'X{scale}' / 'LR' / name)
            assert hr.shape == (lr.shape[0] * scale, lr.shape[1] * scale, 3)
            if folder == 'Set5':  # MATLAB-made LR files, which the MATLAB-exact resize reproduces
                np.testing.assert_array_equal(lr, imresize(hr, 1 / scale))
