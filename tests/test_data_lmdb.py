"""BasicSR-layout LMDBs: layout, determinism, atomicity, and reading back through BasicSR's and
MMagic's own loaders."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from lesrcnn_plugin.data import read_meta_info, verify_lmdb, write_lmdb
from lesrcnn_plugin.errors import DataError


def _images(count=4, size=(24, 20), gray_last=True, seed=0):
    rng = np.random.default_rng(seed)
    images = [(f'{i + 1:04d}_s{j + 1:03d}', rng.integers(0, 256, size + (3,), dtype=np.uint8))
              for i in range(count // 2) for j in range(2)]
    if gray_last:
        images.append(('gray_s001', rng.integers(0, 256, size, dtype=np.uint8)))
    return images


def test_layout_and_meta_info(tmp_path):
    images = _images()
    db = tmp_path / 'train_HR_sub.lmdb'
    assert write_lmdb(db, images) == len(images)
    assert sorted(p.name for p in db.iterdir()) == ['data.mdb', 'lock.mdb', 'meta_info.txt']
    lines = (db / 'meta_info.txt').read_text().splitlines()
    assert lines[0] == '0001_s001.png (24,20,3) 1'
    assert lines[-1] == 'gray_s001.png (24,20,1) 1'
    assert [key for key, _ in read_meta_info(db)] == [key for key, _ in images]
    assert verify_lmdb(db)['gray_s001'] == (24, 20, 1)
    assert list(tmp_path.iterdir()) == [db]  # no temporary folder left behind
    (tmp_path / 'plain').mkdir()  # the database gets the permissions of any new folder, not mkdtemp's 0700
    assert db.stat().st_mode & 0o777 == (tmp_path / 'plain').stat().st_mode & 0o777


def test_same_input_gives_identical_bytes(tmp_path):
    images = _images(6)
    write_lmdb(tmp_path / 'a.lmdb', images)
    write_lmdb(tmp_path / 'b.lmdb', images)
    for name in ('data.mdb', 'meta_info.txt'):
        assert (tmp_path / 'a.lmdb' / name).read_bytes() == (tmp_path / 'b.lmdb' / name).read_bytes()


def test_grows_past_initial_map_size(tmp_path):
    # Incompressible 3 MB images overflow the 64 MiB initial map; the writer enlarges it.
    noise = np.random.default_rng(3).integers(0, 256, (1000, 1000, 3), dtype=np.uint8)
    images = [(f'img{i:02d}', np.roll(noise, i, axis=0)) for i in range(24)]
    db = tmp_path / 'big.lmdb'
    write_lmdb(db, images, compress_level=0)
    assert len(verify_lmdb(db)) == 24


def test_errors_leave_nothing_behind(tmp_path):
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(DataError, match='duplicate key'):
        write_lmdb(tmp_path / 'dup.lmdb', [('a', image), ('b', image), ('a', image)])
    with pytest.raises(DataError, match='invalid LMDB key'):
        write_lmdb(tmp_path / 'space.lmdb', [('a b', image)])
    with pytest.raises(DataError, match='uint8'):
        write_lmdb(tmp_path / 'float.lmdb', [('a', image.astype(np.float32))])
    assert list(tmp_path.iterdir()) == []
    write_lmdb(tmp_path / 'x.lmdb', [('a', image)])
    with pytest.raises(DataError, match='already exists'):
        write_lmdb(tmp_path / 'x.lmdb', [('b', image)])
    write_lmdb(tmp_path / 'x.lmdb', [('b', image)], overwrite=True)
    assert [k for k, _ in read_meta_info(tmp_path / 'x.lmdb')] == ['b']
    assert sorted(os.listdir(tmp_path)) == ['x.lmdb']


def test_verify_detects_corruption(tmp_path):
    db = tmp_path / 'c.lmdb'
    write_lmdb(db, _images(2, gray_last=False))
    with open(db / 'meta_info.txt', 'a') as meta:
        meta.write('missing_s001.png (24,20,3) 1\n')
    with pytest.raises(DataError, match='records but'):
        verify_lmdb(db)


@pytest.fixture
def paired_lmdbs(tmp_path):
    """HR and x2 LR databases with the same keys, plus the arrays written."""
    hr = _images(4, size=(32, 28), gray_last=False, seed=5)
    lr = [(key, cv2.resize(image, (14, 16), interpolation=cv2.INTER_AREA)) for key, image in hr]
    write_lmdb(tmp_path / 'HR_sub.lmdb', hr)
    write_lmdb(tmp_path / 'LR_X2_sub.lmdb', lr)
    return tmp_path / 'HR_sub.lmdb', tmp_path / 'LR_X2_sub.lmdb', dict(hr), dict(lr)


def test_basicsr_file_client_reads_back(paired_lmdbs):
    from lesrcnn_plugin.compat import install_torchvision_alias
    install_torchvision_alias()
    from basicsr.utils import FileClient, imfrombytes

    hr_db, lr_db, hr, lr = paired_lmdbs
    client = FileClient('lmdb', db_paths=[str(lr_db), str(hr_db)], client_keys=['lq', 'gt'])
    for key in hr:
        gt = imfrombytes(client.get(key, 'gt'), float32=False)
        lq = imfrombytes(client.get(key, 'lq'), float32=False)
        np.testing.assert_array_equal(gt, hr[key])
        np.testing.assert_array_equal(lq, lr[key])


def test_basicsr_paired_dataset_reads_back(paired_lmdbs):
    from lesrcnn_plugin.compat import install_torchvision_alias
    install_torchvision_alias()
    from basicsr.data.paired_image_dataset import PairedImageDataset

    hr_db, lr_db, hr, lr = paired_lmdbs
    dataset = PairedImageDataset({
        'dataroot_gt': str(hr_db), 'dataroot_lq': str(lr_db), 'io_backend': {'type': 'lmdb'},
        'phase': 'val', 'scale': 2, 'filename_tmpl': '{}'})
    assert len(dataset) == len(hr)
    for item in dataset:
        key = os.path.basename(item['gt_path'])
        assert item['lq_path'] == key
        # BasicSR returns RGB CHW float in [0, 1].
        gt = np.round(item['gt'].numpy().transpose(1, 2, 0)[:, :, ::-1] * 255).astype(np.uint8)
        np.testing.assert_array_equal(gt, hr[key])
        assert tuple(item['lq'].shape[1:]) == lr[key].shape[:2]


def test_mmagic_loader_reads_back(paired_lmdbs):
    from mmagic.datasets import BasicImageDataset
    from mmagic.datasets.transforms import LoadImageFromFile

    hr_db, lr_db, hr, lr = paired_lmdbs
    # The settings docs/data.md gives for MMagic configs.
    dataset = BasicImageDataset(
        data_root=str(hr_db.parent),
        ann_file=f'{hr_db.name}/meta_info.txt',
        data_prefix=dict(img=lr_db.name, gt=hr_db.name),
        filename_tmpl=dict(img='{}', gt='{}'),
        pipeline=[
            dict(type=LoadImageFromFile, key='img', color_type='color', channel_order='rgb',
                 backend_args=dict(backend='lmdb', db_path=str(lr_db))),
            dict(type=LoadImageFromFile, key='gt', color_type='color', channel_order='rgb',
                 backend_args=dict(backend='lmdb', db_path=str(hr_db))),
        ])
    assert len(dataset) == len(hr)
    for index in range(len(dataset)):
        item = dataset[index]
        np.testing.assert_array_equal(item['gt'], hr[item['key']][:, :, ::-1])
        np.testing.assert_array_equal(item['img'], lr[item['key']][:, :, ::-1])
