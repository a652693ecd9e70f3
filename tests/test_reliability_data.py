"""Data preparation and datasets under bad input and faults: LMDB keys that meta_info.txt lists but
the database lacks, databases of one split cut with other settings, and full disks while writing
databases, staged sub-images and benchmark folders."""
from __future__ import annotations

import errno
from pathlib import Path

import cv2
import lmdb
import numpy as np
import pytest
import yaml

from lesrcnn_plugin.cli import prepare_div2k, prepare_testsets
from lesrcnn_plugin.data import check_lmdb_keys, lmdb_io, write_lmdb
from lesrcnn_plugin.data.div2k import DB_SETTINGS_FILE
from lesrcnn_plugin.errors import DataError
from test_data_div2k import SMALL, div2k  # noqa: F401  (div2k is a fixture)


def hidden_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob('.*') if p.name != '.staging')


def delete_key(db: Path, key: str) -> None:
    """Remove one record, leaving meta_info.txt listing it: a database damaged after it was built."""
    env = lmdb.open(str(db))
    with env.begin(write=True) as txn:
        assert txn.delete(key.encode())
    env.close()


def write_pair(root: Path, keys=('0001_s001', '0002_s001', '0003_s001'), scales=(2,)) -> Path:
    """HR and LR LMDBs of 24-pixel sub-images under ``root``; returns the folder holding them."""
    rng = np.random.default_rng(0)
    images = [(key, rng.integers(0, 256, (24, 24, 3), np.uint8)) for key in keys]
    write_lmdb(root / 'HR_sub.lmdb', images)
    for scale in scales:
        write_lmdb(root / f'LR_X{scale}_sub.lmdb', [(key, image[::scale, ::scale].copy()) for key, image in images])
    return root


# --------------------------------------------------------------------------------- LMDB keys


def test_check_lmdb_keys_names_the_database_and_the_first_missing_key(tmp_path):
    root = write_pair(tmp_path)
    assert check_lmdb_keys(root / 'HR_sub.lmdb') == 3
    delete_key(root / 'HR_sub.lmdb', '0002_s001')
    with pytest.raises(DataError) as error:
        check_lmdb_keys(root / 'HR_sub.lmdb')
    assert str(error.value) == (f"{root / 'HR_sub.lmdb'}: key '0002_s001', listed in "
                                f"{root / 'HR_sub.lmdb' / 'meta_info.txt'}, is not in the database (2 records); "
                                'rebuild it (lesrcnn-prepare-div2k --overwrite)')
    (tmp_path / 'folder').mkdir()
    with pytest.raises(DataError, match='folder: not an LMDB database'):
        check_lmdb_keys(tmp_path / 'folder', ['0001_s001'])


def test_multiscale_dataset_refuses_a_database_with_a_missing_key(tmp_path):
    pytest.importorskip('lesrcnn_plugin.basicsr')  # installs the alias BasicSR needs, then imports it
    from lesrcnn_plugin.basicsr.multiscale_paired_dataset import MultiScalePairedImageDataset

    root = write_pair(tmp_path, scales=(2, 3))
    opt = {'scales': [2, 3], 'dataroot_gt': str(root / 'HR_sub.lmdb'), 'dataroot_lq': str(root / 'LR_X{scale}_sub.lmdb'),
           'io_backend': {'type': 'lmdb'}, 'lq_size': 4, 'use_hflip': True, 'use_rot': True}
    assert len(MultiScalePairedImageDataset(opt)) == 3
    delete_key(root / 'LR_X3_sub.lmdb', '0003_s001')
    with pytest.raises(DataError, match=r"LR_X3_sub.lmdb: key '0003_s001', listed in .*meta_info.txt, is not in"):
        MultiScalePairedImageDataset(opt)


# ------------------------------------------------------------------------- DIV2K databases


def test_databases_record_their_settings_and_refuse_to_mix_crops(div2k, capsys):  # noqa: F811
    assert prepare_div2k.main(['--input', str(div2k), '--scales', '2', '4', *SMALL]) == 0
    x2 = div2k / 'DIV2K_train_LR_bicubic_X2_sub.lmdb'
    assert yaml.safe_load((x2 / DB_SETTINGS_FILE).read_text()) == {
        'crop_size': 48, 'step': 24, 'thresh_size': 0, 'scales_lcm': 4, 'scale': 2, 'lr_source': 'generated'}
    before = {path.name: (path / 'data.mdb').read_bytes() for path in div2k.glob('*.lmdb')}
    capsys.readouterr()

    # The case that mixed 48-pixel HR crops with 12-pixel LR crops under the same keys.
    for extra in ([], ['--overwrite']):
        args = ['--input', str(div2k), '--scales', '2', '--crop-size', '24', '--step', '24', '--workers', '1', *extra]
        assert prepare_div2k.main(args) == 1
        assert capsys.readouterr().err.splitlines() == [
            f"error: {div2k / 'DIV2K_train_HR_sub.lmdb'}: built with crop_size 48 (this run: 24); pass --replace to "
            "rebuild it with this run's settings"]
    # With --replace, the X4 database (a scale this run does not build) would still be cut differently.
    assert prepare_div2k.main(args + ['--replace']) == 1
    assert ("DIV2K_train_LR_bicubic_X4_sub.lmdb: built with crop_size 48 (this run: 24); scale 4 is not in --scales: "
            'add it and pass --replace, or remove the database') in capsys.readouterr().err
    assert {path.name: (path / 'data.mdb').read_bytes() for path in div2k.glob('*.lmdb')} == before
    assert hidden_files(div2k) == []

    args = ['--input', str(div2k), '--scales', '2', '4', '--crop-size', '24', '--step', '24', '--workers', '1']
    assert prepare_div2k.main(args + ['--replace', '--verify']) == 0
    assert yaml.safe_load((x2 / DB_SETTINGS_FILE).read_text())['crop_size'] == 24


def test_a_rebuild_with_another_lr_source_needs_replace(div2k, capsys):  # noqa: F811
    assert prepare_div2k.main(['--input', str(div2k), '--scales', '2', *SMALL]) == 0
    lr_dir = div2k / 'DIV2K_train_LR_bicubic' / 'X2'
    lr_dir.mkdir(parents=True)
    for hr in (div2k / 'DIV2K_train_HR').iterdir():
        image = cv2.imread(str(hr))
        cv2.imwrite(str(lr_dir / f'{hr.stem}x2.png'), image[::2, ::2])
    assert prepare_div2k.main(['--input', str(div2k), '--scales', '2', *SMALL]) == 0  # kept: same grid
    assert prepare_div2k.main(['--input', str(div2k), '--scales', '2', '--overwrite', *SMALL]) == 1
    assert "built with lr_source 'generated' (this run: 'files'); pass --replace" in capsys.readouterr().err
    assert prepare_div2k.main(['--input', str(div2k), '--scales', '2', '--overwrite', '--replace', *SMALL]) == 0


def test_a_kept_database_must_hold_its_keys_and_an_unrecorded_one_is_reported(div2k, capsys):  # noqa: F811
    args = ['--input', str(div2k), '--scales', '2', *SMALL]
    assert prepare_div2k.main(args) == 0
    x2 = div2k / 'DIV2K_train_LR_bicubic_X2_sub.lmdb'
    (x2 / DB_SETTINGS_FILE).unlink()  # as a database made by another tool or an older version
    capsys.readouterr()
    assert prepare_div2k.main(args) == 0
    assert f'{x2}: no {DB_SETTINGS_FILE} (made by another tool or an older version)' in capsys.readouterr().out
    delete_key(x2, '0002_s003')
    assert prepare_div2k.main(args) == 1
    assert f"error: {x2}: key '0002_s003', listed in {x2 / 'meta_info.txt'}, is not in the database" in \
        capsys.readouterr().err


# ----------------------------------------------------------------------- full disks, data tools


def test_an_lmdb_write_on_a_full_disk_names_the_database(tmp_path, monkeypatch):
    images = [('0001', np.zeros((4, 4, 3), np.uint8))]

    def disk_full(env, batch):
        raise lmdb.DiskError('mdb_txn_commit: No space left on device')

    monkeypatch.setattr(lmdb_io, '_commit_batch', disk_full)
    with pytest.raises(DataError) as error:
        write_lmdb(tmp_path / 'a.lmdb', images)
    assert str(error.value) == f'{tmp_path / "a.lmdb"}: No space left on device'
    monkeypatch.undo()

    def lock_file_full(folder):
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(lmdb_io, '_reserve_lock_file', lock_file_full)
    with pytest.raises(OSError) as error:
        write_lmdb(tmp_path / 'b.lmdb', images)
    assert (error.value.errno, error.value.filename) == (errno.ENOSPC, str(tmp_path / 'b.lmdb'))
    assert list(tmp_path.iterdir()) == []


def test_staging_on_a_full_disk_names_the_staging_folder(div2k, capsys, monkeypatch):  # noqa: F811
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(Path, 'write_bytes', no_space)
    assert prepare_div2k.main(['--input', str(div2k), '--scales', '2', *SMALL]) == 1
    staging = div2k / '.staging' / 'DIV2K_train'
    assert capsys.readouterr().err.splitlines()[-1] == f'error: {staging / "0001"}: No space left on device'
    assert not list(staging.glob('.*')) and not list(div2k.glob('*.lmdb'))


def test_benchmark_folders_on_a_full_disk_name_the_target(tmp_path, capsys, monkeypatch):
    source = tmp_path / 'Set5' / 'HR'
    source.mkdir(parents=True)
    cv2.imwrite(str(source / 'baby.png'), np.zeros((24, 24, 3), np.uint8))

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(Path, 'write_bytes', no_space)
    out = tmp_path / 'out'
    assert prepare_testsets.main([str(tmp_path / 'Set5'), '--output', str(out), '--scales', '2']) == 1
    assert capsys.readouterr().err.splitlines()[-1] == f'error: {out / "Set5" / "X2"}: No space left on device'
    assert hidden_files(out) == []
