"""lesrcnn-prepare-div2k on a generated miniature DIV2K: content, resumability, dry run, verify,
and bad inputs. Crops are 48 pixels (step 24) instead of 480 to keep the test fast."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import cv2
import lmdb
import numpy as np
import pytest

from lesrcnn_plugin.cli import prepare_div2k
from lesrcnn_plugin.data import crop_grid, imresize, modcrop, read_meta_info, write_lmdb
from lesrcnn_plugin.data import div2k as div2k_engine

SMALL = ['--crop-size', '48', '--step', '24', '--workers', '1']
SIZES = {'0001': (96, 120), '0002': (84, 108), '0003': (120, 72)}  # multiples of 12: no modcrop


def _smooth_image(rng, height, width):
    return cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (5, 5), 0)


@pytest.fixture
def div2k(tmp_path):
    """``tmp_path/DIV2K/DIV2K_train_HR`` with three small images; returns the DIV2K folder."""
    return write_div2k_images(tmp_path)


def write_div2k_images(tmp_path: Path) -> Path:
    """Write ``tmp_path/DIV2K/DIV2K_train_HR`` with three small images; returns the DIV2K folder."""
    rng = np.random.default_rng(0)
    hr_dir = tmp_path / 'DIV2K' / 'DIV2K_train_HR'
    hr_dir.mkdir(parents=True)
    for name, (height, width) in SIZES.items():
        cv2.imwrite(str(hr_dir / f'{name}.png'), _smooth_image(rng, height, width))
    return tmp_path / 'DIV2K'


def _read_db(path: Path) -> dict[str, np.ndarray]:
    env = lmdb.open(str(path), readonly=True, lock=False)
    with env.begin() as txn:
        images = {key.decode(): cv2.imdecode(np.frombuffer(value, np.uint8), cv2.IMREAD_UNCHANGED)
                  for key, value in txn.cursor()}
    env.close()
    return images


def _dead_pid() -> int:
    """The id of a process that has exited."""
    process = subprocess.Popen([sys.executable, '-c', 'pass'])
    process.wait()
    return process.pid


def _db_bytes(folder: Path) -> dict[str, bytes]:
    return {f'{db.name}/{name}': (db / name).read_bytes() for db in sorted(folder.glob('*.lmdb'))
            for name in ('data.mdb', 'meta_info.txt')}


def test_generated_lr_sub_images(div2k, capsys):
    assert prepare_div2k.main(['--input', str(div2k), '--verify', *SMALL]) == 0
    assert 'verified' in capsys.readouterr().out
    hr_db = _read_db(div2k / 'DIV2K_train_HR_sub.lmdb')
    expected = sum(len(crop_grid(h, w, 48, 24)) for h, w in SIZES.values())
    assert len(hr_db) == expected
    # Keys in meta_info are in image order, then crop order.
    keys = [key for key, _ in read_meta_info(div2k / 'DIV2K_train_HR_sub.lmdb')]
    assert keys[:2] == ['0001_s001', '0001_s002'] and keys[-1] == f'0003_s{len(crop_grid(120, 72, 48, 24)):03d}'
    hr = cv2.imread(str(div2k / 'DIV2K_train_HR' / '0002.png'))
    positions = crop_grid(*SIZES['0002'], 48, 24)
    top, left = positions[-1]
    np.testing.assert_array_equal(hr_db[f'0002_s{len(positions):03d}'], hr[top:top + 48, left:left + 48])
    for scale in (2, 3, 4):
        lr_db = _read_db(div2k / f'DIV2K_train_LR_bicubic_X{scale}_sub.lmdb')
        assert set(lr_db) == set(hr_db)
        lr = imresize(modcrop(hr, scale), 1 / scale)
        size = 48 // scale
        np.testing.assert_array_equal(lr_db[f'0002_s{len(positions):03d}'],
                                      lr[top // scale:top // scale + size, left // scale:left // scale + size])
    assert not (div2k / '.staging').exists()


def test_reads_div2k_lr_files_and_basicsr_loads_pairs(div2k):
    # DIV2K's own LR files (here a different downscaler, to tell them from generated ones).
    lr_dir = div2k / 'DIV2K_train_LR_bicubic' / 'X2'
    lr_dir.mkdir(parents=True)
    for name, (height, width) in SIZES.items():
        hr = cv2.imread(str(div2k / 'DIV2K_train_HR' / f'{name}.png'))
        cv2.imwrite(str(lr_dir / f'{name}x2.png'), cv2.resize(hr, (width // 2, height // 2),
                                                             interpolation=cv2.INTER_AREA))
    assert prepare_div2k.main(['--input', str(div2k), '--scales', '2', *SMALL]) == 0
    lr_file = cv2.imread(str(lr_dir / '0001x2.png'))
    lr_db = _read_db(div2k / 'DIV2K_train_LR_bicubic_X2_sub.lmdb')
    np.testing.assert_array_equal(lr_db['0001_s002'], lr_file[0:24, 12:36])

    from lesrcnn_plugin.compat import install_torchvision_alias
    install_torchvision_alias()
    from basicsr.data.paired_image_dataset import PairedImageDataset
    dataset = PairedImageDataset({
        'dataroot_gt': str(div2k / 'DIV2K_train_HR_sub.lmdb'),
        'dataroot_lq': str(div2k / 'DIV2K_train_LR_bicubic_X2_sub.lmdb'),
        'io_backend': {'type': 'lmdb'}, 'phase': 'val', 'scale': 2, 'filename_tmpl': '{}'})
    assert len(dataset) == len(lr_db)
    item = dataset[0]
    assert tuple(item['gt'].shape) == (3, 48, 48) and tuple(item['lq'].shape) == (3, 24, 24)


def test_interrupted_run_resumes_to_identical_databases(div2k, tmp_path, monkeypatch):
    reference = tmp_path / 'reference'
    assert prepare_div2k.main(['--input', str(div2k), '--output', str(reference), '--in-memory', *SMALL]) == 0

    real = div2k_engine.image_records

    def crash_on_third(hr_path, *args):
        if hr_path.stem == '0003':
            raise KeyboardInterrupt  # as if the run were killed while working on 0003
        return real(hr_path, *args)

    monkeypatch.setattr(div2k_engine, 'image_records', crash_on_third)
    assert prepare_div2k.main(['--input', str(div2k), *SMALL]) == 130  # an interrupted command exits 130
    staging = div2k / '.staging' / 'DIV2K_train'
    assert sorted(p.name for p in staging.iterdir() if not p.name.startswith('.')) == ['0001', '0002',
                                                                                     'settings.json']
    assert not list(div2k.glob('*.lmdb'))
    # What a killed run leaves: a half-staged image and a half-written database.
    dead_pid = _dead_pid()
    (staging / f'.0003.{dead_pid}.0123abcd.partial').mkdir()
    (div2k / f'.DIV2K_train_HR_sub.lmdb.{dead_pid}.0123abcd.tmp').mkdir()

    monkeypatch.setattr(div2k_engine, 'image_records', real)
    calls = []
    monkeypatch.setattr(div2k_engine, 'image_records', lambda path, *a: calls.append(path.stem) or real(path, *a))
    assert prepare_div2k.main(['--input', str(div2k), *SMALL]) == 0
    assert calls == ['0003']  # only the missing image was processed again
    assert _db_bytes(div2k) == _db_bytes(reference)
    assert len(_db_bytes(div2k)) == 8
    assert sorted(p.name for p in div2k.iterdir()) == sorted(['DIV2K_train_HR'] + [p.name for p in reference.iterdir()])


def test_existing_databases_are_kept_unless_overwrite(div2k, capsys):
    args = ['--input', str(div2k), '--scales', '4', *SMALL]
    assert prepare_div2k.main(args) == 0
    before = _db_bytes(div2k)
    write_lmdb(div2k / 'DIV2K_train_LR_bicubic_X4_sub.lmdb', [('0001_s001', np.zeros((5, 5, 3), np.uint8))],
               overwrite=True)
    assert prepare_div2k.main(args) == 0
    assert 'exists, kept' in capsys.readouterr().out
    assert prepare_div2k.main(args + ['--verify']) == 1
    assert 'different keys' in capsys.readouterr().err
    assert prepare_div2k.main(args + ['--overwrite', '--verify']) == 0
    assert _db_bytes(div2k) == before


def test_two_workers_give_the_same_databases(div2k, tmp_path):
    one, two = tmp_path / 'one', tmp_path / 'two'
    assert prepare_div2k.main(['--input', str(div2k), '--output', str(one), '--scales', '3', *SMALL]) == 0
    assert prepare_div2k.main(['--input', str(div2k), '--output', str(two), '--scales', '3', *SMALL[:-2],
                               '--workers', '2']) == 0
    assert {k.split('/', 1)[1]: v for k, v in _db_bytes(one).items()} == \
        {k.split('/', 1)[1]: v for k, v in _db_bytes(two).items()}


def test_dry_run_counts_and_writes_nothing(div2k, capsys):
    assert prepare_div2k.main(['--input', str(div2k), '--dry-run', '--valid', *SMALL]) == 1
    assert 'DIV2K_valid_HR: not found' in capsys.readouterr().err
    before = sorted(p.name for p in div2k.iterdir())
    assert prepare_div2k.main(['--input', str(div2k), '--dry-run', *SMALL]) == 0
    out = capsys.readouterr().out
    expected = sum(len(crop_grid(h, w, 48, 24)) for h, w in SIZES.values())
    assert '3 images' in out and f'{expected} sub-images' in out and 'generated (MATLAB bicubic)' in out
    assert sorted(p.name for p in div2k.iterdir()) == before


def test_valid_split(div2k):
    valid = div2k / 'DIV2K_valid_HR'
    valid.mkdir()
    cv2.imwrite(str(valid / '0801.png'), _smooth_image(np.random.default_rng(1), 60, 60))
    assert prepare_div2k.main(['--input', str(div2k), '--valid', '--scales', '2', *SMALL]) == 0
    assert set(_read_db(div2k / 'DIV2K_valid_LR_bicubic_X2_sub.lmdb')) == {f'0801_s00{i}' for i in range(1, 5)}


def _bad_png_16bit(path):
    cv2.imwrite(str(path), np.full((96, 96, 3), 4000, np.uint16))


def _bad_truncated(path):
    data = cv2.imencode('.png', np.random.default_rng(2).integers(0, 256, (96, 96, 3), dtype=np.uint8))[1]
    path.write_bytes(data.tobytes()[:len(data) // 2])


def _bad_transparent(path):
    image = np.zeros((96, 96, 4), np.uint8)
    image[:, :, 3] = 128
    cv2.imwrite(str(path), image)


def _bad_small(path):
    cv2.imwrite(str(path), np.zeros((36, 96, 3), np.uint8))


def _bad_duplicate(path):
    cv2.imwrite(str(path.with_name('0001.bmp')), np.zeros((96, 96, 3), np.uint8))


@pytest.mark.parametrize('make_bad, message', [
    (_bad_png_16bit, '16-bit'),
    (_bad_truncated, 'cannot decode'),
    (_bad_transparent, 'transparent'),
    (_bad_small, 'smaller than the crop size'),
    (_bad_duplicate, 'two images named "0001"'),
])
def test_bad_inputs_fail_clearly_and_leave_nothing(div2k, capsys, make_bad, message):
    bad = div2k / 'DIV2K_train_HR' / '0004.png'
    make_bad(bad)
    assert prepare_div2k.main(['--input', str(div2k), '--scales', '2', *SMALL]) == 1
    err = capsys.readouterr().err
    assert message in err and ('0004.png' in err or '0001' in err)
    assert not list(div2k.glob('*.lmdb')) and not list(div2k.glob('.*.tmp'))
    staging = div2k / '.staging' / 'DIV2K_train'
    assert not staging.exists() or not list(staging.glob('.*.partial'))


def test_lr_size_mismatch_and_missing_lr(div2k, capsys):
    lr_dir = div2k / 'DIV2K_train_LR_bicubic' / 'X2'
    lr_dir.mkdir(parents=True)
    cv2.imwrite(str(lr_dir / '0001x2.png'), np.zeros((40, 60, 3), np.uint8))  # HR is 120x96 -> 60x48
    assert prepare_div2k.main(['--input', str(div2k), '--scales', '2', *SMALL]) == 1
    err = capsys.readouterr().err
    assert '0001x2.png: LR size 60x40 does not match HR' in err
    cv2.imwrite(str(lr_dir / '0001x2.png'), np.zeros((48, 60, 3), np.uint8))
    assert prepare_div2k.main(['--input', str(div2k), '--scales', '2', *SMALL]) == 1
    err = capsys.readouterr().err
    assert 'no LR image for' in err and 'expected 0002x2.png' in err
    assert prepare_div2k.main(['--input', str(div2k), '--scales', '2', '--generate-lr', *SMALL]) == 0


def test_lr_crop_must_be_integer(div2k, capsys):
    assert prepare_div2k.main(['--input', str(div2k), '--crop-size', '50', '--step', '24', '--scales', '3']) == 1
    assert 'must both be divisible by the scale 3' in capsys.readouterr().err


def test_crop_grid_follows_basicsr():
    # Last crop flush with the edge when pixels are left over; none when the grid ends on the edge.
    assert crop_grid(600, 480, 480, 240) == [(0, 0), (120, 0)]
    assert [left for _, left in crop_grid(480, 2040, 480, 240)] == [0, 240, 480, 720, 960, 1200, 1440, 1560]
    assert len(crop_grid(1356, 2040, 480, 240)) == math.prod([len([0, 240, 480, 720, 876]), 8])
