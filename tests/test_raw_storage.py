"""Raw-pixel LMDBs (``lesrcnn-prepare-div2k --storage raw``): written and verified pixel for pixel against
the PNG databases, and read by BasicSR's and MMagic's datasets into the same samples, with the same
random patches for a seed, as the PNG databases; both frameworks train a few iterations from them."""
from __future__ import annotations

import math
import random
import shutil
import sys
from pathlib import Path

import cv2
import lmdb
import numpy as np
import pytest
import torch

from _training_runs import logged_iterations, make_datasets, run_logs, train, write_div2k_like
from lesrcnn_plugin.cli.prepare_div2k import main as prepare_div2k
from lesrcnn_plugin.data import read_meta_info
from lesrcnn_plugin.data.raw_store import (convert_png_lmdb, decode_raw, encode_raw, png_db_path, raw_db_path,
                                           verify_raw_lmdb, write_raw_lmdb)
from lesrcnn_plugin.errors import DataError


REPO = Path(__file__).resolve().parents[1]
DIV2K = Path('datasets/DIV2K')


def convert_all(root: Path) -> None:
    """Raw copies of every PNG database under ``root/datasets/DIV2K``."""
    for png_db in sorted((root / DIV2K).glob('*_sub.lmdb')):
        convert_png_lmdb(png_db, progress=False)


@pytest.fixture(scope='module')
def div2k_like(tmp_path_factory) -> Path:
    """The canonical layout (PNG LMDBs at x2/x3/x4, Set5) plus the raw copies, under a module-wide root."""
    root = tmp_path_factory.mktemp('raw_storage')
    write_div2k_like(root)
    convert_all(root)
    return root


def values(db: Path) -> dict[str, bytes]:
    """Every record of a database, by key."""
    with lmdb.open(str(db), readonly=True, lock=False) as env, env.begin() as txn:
        return {key.decode(): value for key, value in txn.cursor()}


def test_raw_values_round_trip_and_refuse_what_they_are_not():
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), np.uint8)
    decoded = decode_raw(encode_raw(image), 'x')
    assert decoded.dtype == np.uint8 and not decoded.flags.writeable
    np.testing.assert_array_equal(decoded, image)
    with pytest.raises(DataError, match='a PNG database'):
        decode_raw(cv2.imencode('.png', image)[1].tobytes(), 'db[key]')
    with pytest.raises(DataError, match=r'db\[key\]: 50 bytes do not hold'):
        decode_raw(encode_raw(image)[:50], 'db[key]')
    with pytest.raises(DataError, match='no such key'):
        decode_raw(None, 'db[key]')
    with pytest.raises(DataError, match='HxWx3 uint8'):
        encode_raw(image[..., 0])
    assert raw_db_path('d/X{scale}_sub.lmdb') == 'd/X{scale}_sub_raw.lmdb'
    assert png_db_path(raw_db_path('d/HR_sub.lmdb/')) == 'd/HR_sub.lmdb'
    with pytest.raises(DataError):
        raw_db_path('d/HR_sub_raw.lmdb')


def test_raw_copy_has_the_same_keys_order_and_pixels(div2k_like):
    png_db = div2k_like / DIV2K / 'DIV2K_train_HR_sub.lmdb'
    raw_db = Path(raw_db_path(png_db))
    assert [key for key, _ in read_meta_info(raw_db)] == [key for key, _ in read_meta_info(png_db)]
    assert verify_raw_lmdb(raw_db) == 6
    pngs, raws = values(png_db), values(raw_db)
    for key, shape in read_meta_info(png_db):
        pixels = cv2.imdecode(np.frombuffer(pngs[key], np.uint8), cv2.IMREAD_COLOR)
        np.testing.assert_array_equal(decode_raw(raws[key], key), pixels)
        assert pixels.shape == shape


def test_verify_finds_a_changed_pixel_and_a_missing_key(div2k_like, tmp_path):
    png_db = div2k_like / DIV2K / 'DIV2K_train_LR_bicubic_X2_sub.lmdb'
    pngs = values(png_db)
    images = [(key, cv2.imdecode(np.frombuffer(pngs[key], np.uint8), cv2.IMREAD_COLOR))
              for key, _ in read_meta_info(png_db)]
    images[3][1][5, 5, 1] ^= 1
    write_raw_lmdb(tmp_path / 'changed_raw.lmdb', images)
    with pytest.raises(DataError, match=r'changed_raw.lmdb\[0004_s001\]: pixels differ'):
        verify_raw_lmdb(tmp_path / 'changed_raw.lmdb', png_db)
    write_raw_lmdb(tmp_path / 'short_raw.lmdb', images[:-1])
    with pytest.raises(DataError, match='list different images'):
        verify_raw_lmdb(tmp_path / 'short_raw.lmdb', png_db)


def test_prepare_div2k_writes_and_verifies_raw_copies(tmp_path, capsys):
    rng = np.random.default_rng(1)
    hr_dir = tmp_path / 'DIV2K' / 'DIV2K_train_HR'
    hr_dir.mkdir(parents=True)
    for name in ('0001', '0002'):
        image = cv2.GaussianBlur(rng.integers(0, 256, (72, 96, 3), np.uint8), (5, 5), 2)
        cv2.imwrite(str(hr_dir / f'{name}.png'), image)
    argv = ['--input', str(tmp_path / 'DIV2K'), '--scales', '2', '--crop-size', '48', '--step', '24', '--workers', '1',
            '--storage', 'raw', '--verify']
    assert prepare_div2k(argv) == 0
    out = capsys.readouterr().out
    for name in ('DIV2K_train_HR_sub', 'DIV2K_train_LR_bicubic_X2_sub'):
        assert f'{name}_raw.lmdb: 12 raw sub-images from {name}.lmdb' in out
        assert f'verified {tmp_path / "DIV2K" / name}_raw.lmdb: 12 keys, pixel for pixel equal' in out
    assert prepare_div2k(argv) == 0  # existing databases are kept, and verified again
    assert 'DIV2K_train_HR_sub_raw.lmdb: exists, kept' in capsys.readouterr().out


# ---------------------------------------------------------------------------------------- BasicSR
def basicsr_dataset(root: Path, storage: str, **options):
    import lesrcnn_plugin.basicsr  # noqa: F401  (registers the raw datasets)
    from basicsr.data import build_dataset

    suffix = '_raw' if storage == 'raw' else ''
    multiscale = 'scales' in options
    opt = dict(name='DIV2K', phase='train', io_backend=dict(type='lmdb'), use_hflip=True, use_rot=True,
               dataroot_gt=str(root / DIV2K / f'DIV2K_train_HR_sub{suffix}.lmdb'),
               dataroot_lq=str(root / DIV2K / f'DIV2K_train_LR_bicubic_X{{scale}}_sub{suffix}.lmdb'))
    opt.update(options)
    if not multiscale:
        opt['dataroot_lq'] = opt['dataroot_lq'].format(scale=opt['scale'])
    kind = 'MultiScalePairedImageDataset' if multiscale else 'PairedImageDataset'
    return build_dataset(dict(opt, type=f'RawLMDB{kind}' if storage == 'raw' else kind))


def seeded_samples(dataset, indices, seed: int = 3) -> list[dict]:
    random.seed(seed)
    np.random.seed(seed)
    return [dataset[index] for index in indices]


def assert_same_samples(a: list[dict], b: list[dict]) -> None:
    for sample_a, sample_b in zip(a, b, strict=True):
        assert sample_a.keys() == sample_b.keys()
        for key, value in sample_a.items():
            if torch.is_tensor(value):
                assert value.dtype == sample_b[key].dtype and torch.equal(value, sample_b[key]), key
            else:
                assert value == sample_b[key], key


# MultiScalePairedImageDataset flips its x2 patches in place, inside the decoded HR image that the x3
# and x4 patches are then cut from; the raw dataset flips copies. Compared without flips, and with
# flips on the first scale only.
@pytest.mark.parametrize('options', [dict(scale=2, gt_size=16), dict(scale=3, gt_size=24, phase='val'),
                                     dict(scales=[2, 3, 4], lq_size=8, use_hflip=False, use_rot=False)],
                         ids=['x2', 'x3_val', 'multiscale'])
def test_basicsr_raw_datasets_give_the_png_samples_and_crops(div2k_like, options):
    indices = [0, 3, 5, 1, 0, 2]
    png = seeded_samples(basicsr_dataset(div2k_like, 'png', **options), indices)
    raw = seeded_samples(basicsr_dataset(div2k_like, 'raw', **options), indices)
    assert_same_samples(png, raw)
    if options.get('phase') != 'val':  # the seed decides the crops: another seed gives other patches
        other = seeded_samples(basicsr_dataset(div2k_like, 'raw', **options), indices, seed=4)
        first = next(k for k in raw[0] if k.startswith('lq'))
        assert any(not torch.equal(a[first], b[first]) for a, b in zip(raw, other))


def test_basicsr_raw_multiscale_dataset_flips_the_first_scale_as_the_png_one(div2k_like):
    options = dict(scales=[2, 3, 4], lq_size=8)
    png = seeded_samples(basicsr_dataset(div2k_like, 'png', **options), [0, 4, 2])
    raw = seeded_samples(basicsr_dataset(div2k_like, 'raw', **options), [0, 4, 2])
    assert_same_samples([{k: v for k, v in s.items() if k.endswith('_x2')} for s in png],
                        [{k: v for k, v in s.items() if k.endswith('_x2')} for s in raw])


def test_basicsr_raw_dataset_refuses_a_png_database(div2k_like):
    dataset = basicsr_dataset(div2k_like, 'png', scale=2, gt_size=16)
    from lesrcnn_plugin.basicsr import RawLMDBPairedImageDataset
    raw = RawLMDBPairedImageDataset(dict(dataset.opt, io_backend=dict(type='lmdb')))
    with pytest.raises(DataError, match='this is a PNG database'):
        raw[0]


@pytest.mark.slow
def test_basicsr_trains_from_raw_storage(div2k_like, tmp_path):
    shutil.copytree(div2k_like / 'datasets', tmp_path / 'datasets')
    name = 'raw_LESRCNN_x2'
    train(tmp_path, 'train_lesrcnn_x2.yml', f'name={name}', 'datasets:train:type=RawLMDBPairedImageDataset',
          f'datasets:train:dataroot_gt={DIV2K}/DIV2K_train_HR_sub_raw.lmdb',
          f'datasets:train:dataroot_lq={DIV2K}/DIV2K_train_LR_bicubic_X2_sub_raw.lmdb',
          'datasets:train:gt_size=16', 'train:total_iter=3', 'val:val_freq=3', 'logger:save_checkpoint_freq=3',
          'logger:use_tb_logger=false')
    rows = logged_iterations(run_logs(tmp_path / 'experiments' / name)[0])
    assert [row['iter'] for row in rows] == [1, 2, 3] and all(math.isfinite(row['l_pix']) for row in rows)


# ----------------------------------------------------------------------------------------- MMagic
@pytest.fixture
def mmagic_div2k(tmp_path, monkeypatch):
    pytest.importorskip('mmagic')
    make_datasets(tmp_path)
    convert_all(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize('config', ['lesrcnn_x2_div2k', 'lesrcnn_x4_div2k'])
def test_mmagic_raw_pipeline_gives_the_png_samples_and_crops(mmagic_div2k, config):
    import lesrcnn_plugin.mmagic  # noqa: F401
    from mmagic.registry import DATASETS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmagic')
    cfg = Config.fromfile(str(REPO / 'configs' / 'lesrcnn' / f'{config}.py'))
    scale = int(config.split('_x')[1][0])
    datasets = {storage: DATASETS.build(cfg[name][f'x{scale}'])
                for storage, name in (('png', 'div2k_train_datasets'), ('raw', 'div2k_raw_train_datasets'))}
    raw_steps = cfg.div2k_raw_train_datasets[f'x{scale}'].pipeline[:2]
    assert [step['type'] for step in raw_steps] == ['LoadImageFromRawLMDB'] * 2
    samples = {storage: seeded_samples(dataset, [0, 2, 1, 0]) for storage, dataset in datasets.items()}
    for png, raw in zip(samples['png'], samples['raw'], strict=True):
        assert torch.equal(png['inputs'], raw['inputs']) and tuple(png['inputs'].shape) == (3, 64, 64)
        assert torch.equal(png['data_samples'].gt_img, raw['data_samples'].gt_img)
        assert png['data_samples'].metainfo['scale'] == raw['data_samples'].metainfo['scale'] == scale


@pytest.mark.slow
def test_mmagic_trains_from_raw_storage(mmagic_div2k):
    config = mmagic_div2k / 'raw_x2.py'
    config.write_text(f"_base_ = '{REPO / 'configs' / 'lesrcnn' / 'lesrcnn_x2_div2k.py'}'\n"
                      "train_dataloader = dict(dataset=_base_.div2k_raw_train_datasets['x2'])\n")
    from _training_runs import TINY, patch_option, run, train_losses
    work = mmagic_div2k / 'work'
    run([sys.executable, str(REPO / 'tools' / 'train.py'), str(config), '--work-dir', str(work), '--cfg-options',
         *TINY, 'val_dataloader.num_workers=0', patch_option(2), 'train_cfg.max_iters=2'], mmagic_div2k)
    log = '\n'.join(p.read_text() for p in work.glob('2*/*.log'))
    assert 'LoadImageFromRawLMDB' in log
    losses = train_losses(work)
    assert sorted(losses) == [1, 2] and all(math.isfinite(v) for v in losses.values())

