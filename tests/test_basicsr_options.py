"""Every YAML in options/ parses with BasicSR's own parser, follows the paper's recipe, and builds
its network and datasets once ``--force_yml`` points the dataroots at generated fixtures."""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import lesrcnn_plugin.basicsr  # noqa: F401  (registers the family; installs the torchvision alias first)
from basicsr.archs import build_network
from basicsr.data import build_dataset
from basicsr.utils.options import parse_options
from lesrcnn_plugin.data import write_lmdb

OPTIONS = Path(__file__).resolve().parents[1] / 'options'
TRAIN_OPTIONS = sorted(p.name for p in OPTIONS.glob('train_*.yml'))
TEST_OPTIONS = sorted(p.name for p in OPTIONS.glob('test_*.yml'))
HR_SIZE = 264  # divisible by 2, 3 and 4, and its x4 LR holds one 64x64 LR patch
BENCHMARKS = ('Set5', 'Set14', 'BSD100', 'Urban100')


def test_the_expected_option_files_are_shipped():
    names = {'lesrcnn_x2', 'lesrcnn_x3', 'lesrcnn_x4', 'multiscale_lesrcnn', 'dual_kernel_lesrcnn_x2'}
    assert set(TRAIN_OPTIONS) == {f'train_{n}.yml' for n in names}
    assert set(TEST_OPTIONS) == {f'test_{n}.yml' for n in names}


@pytest.fixture(scope='module')
def fixtures(tmp_path_factory) -> Path:
    """Training LMDBs (HR and X2/X3/X4, same keys) and one HR/LR pair per scale on disk."""
    root = tmp_path_factory.mktemp('options_fixtures')
    rng = np.random.default_rng(0)
    images = [(f'000{i}_s001', rng.integers(0, 256, (HR_SIZE, HR_SIZE, 3), np.uint8)) for i in (1, 2)]
    write_lmdb(root / 'HR.lmdb', images)
    for k in (2, 3, 4):
        size = HR_SIZE // k
        write_lmdb(root / f'X{k}.lmdb', [(key, cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA))
                                         for key, im in images])
        for folder, image in (('HR', images[0][1][:48, :48]), ('LR', images[0][1][:48 // k, :48 // k])):
            (root / f'X{k}' / folder).mkdir(parents=True)
            cv2.imwrite(str(root / f'X{k}' / folder / 'img.png'), image)
    return root


def parse(options: str, is_train: bool, overrides: list[str], root: Path, monkeypatch) -> dict:
    """BasicSR's ``parse_options`` on a shipped file, as the entry points run it."""
    monkeypatch.setattr(sys, 'argv', ['lesrcnn-train', '-opt', str(OPTIONS / options), '--force_yml', *overrides])
    opt, _ = parse_options(str(root), is_train=is_train)
    return opt


def dataset_scale(opt: dict, dataset_opt: dict) -> int:
    return dataset_opt.get('scale', opt.get('scale'))


def fixture_overrides(options: str, fixtures: Path) -> list[str]:
    """--force_yml entries pointing every dataset of ``options`` at the fixtures."""
    import yaml

    raw = yaml.safe_load((OPTIONS / options).read_text())
    overrides = []
    for key, dataset in raw['datasets'].items():
        if key == 'train':
            overrides.append(f'datasets:train:dataroot_gt={fixtures / "HR.lmdb"}')
            overrides.append(f'datasets:train:dataroot_lq={fixtures}/X{{scale}}.lmdb' if 'scales' in dataset
                             else f'datasets:train:dataroot_lq={fixtures / ("X%d.lmdb" % raw["scale"])}')
        else:
            k = dataset.get('scale', raw.get('scale'))
            overrides += [f'datasets:{key}:dataroot_gt={fixtures / f"X{k}" / "HR"}',
                          f'datasets:{key}:dataroot_lq={fixtures / f"X{k}" / "LR"}']
    return overrides


def check_builds(opt: dict) -> None:
    """The network upsamples by each dataset's scale; every dataset yields correctly shaped samples."""
    net = build_network(opt['network_g']).eval()
    for phase_key, dataset_opt in opt['datasets'].items():
        dataset = build_dataset(dataset_opt)
        sample = dataset[0]
        if dataset_opt['type'] == 'MultiScalePairedImageDataset':
            for k in dataset_opt['scales']:
                lq_size = dataset_opt['lq_size']
                assert sample[f'lq_x{k}'].shape == (3, lq_size, lq_size)
                assert sample[f'gt_x{k}'].shape == (3, lq_size * k, lq_size * k)
            continue
        k = dataset_scale(opt, dataset_opt)
        assert sample['gt'].shape[-2:] == tuple(k * s for s in sample['lq'].shape[-2:]), phase_key
        with torch.no_grad():
            lq = sample['lq'][None, :, :12, :12]
            out = net(lq, scale=k) if opt['network_g']['type'] == 'MultiScaleLESRCNN' else net(lq)
        assert out.shape == (1, 3, 12 * k, 12 * k), phase_key


@pytest.mark.parametrize('options', TRAIN_OPTIONS)
def test_train_options_follow_the_recipe_and_build(options, fixtures, tmp_path, monkeypatch):
    opt = parse(options, True, fixture_overrides(options, fixtures), tmp_path, monkeypatch)
    train, data = opt['train'], opt['datasets']['train']
    assert opt['model_type'] == 'LESRCNNModel'
    assert train['pixel_opt']['type'] == 'MSELoss'
    assert train['optim_g'] == {'type': 'Adam', 'lr': 1e-4, 'weight_decay': 0, 'betas': [0.9, 0.999], 'eps': 1e-8}
    assert train['scheduler'] == {'type': 'MultiStepLR', 'milestones': [400000], 'gamma': 0.5}
    assert train['total_iter'] == 600000 and train['grad_clip_norm'] == 10
    assert data['batch_size_per_gpu'] == 64 and data['use_hflip'] and data['use_rot']
    assert data['dataroot_gt'] != 'datasets/DIV2K/DIV2K_train_HR_sub.lmdb'  # the override applied
    assert opt['val']['val_freq'] == 5000 and opt['logger']['use_tb_logger']
    # Paths of the experiment are under the root passed by the entry point (the working directory).
    assert opt['path']['experiments_root'] == str(tmp_path / 'experiments' / opt['name'])

    val_sets = {key: d for key, d in opt['datasets'].items() if key.startswith('val')}
    if data['type'] == 'MultiScalePairedImageDataset':
        assert data['lq_size'] == 64 and data['scales'] == [2, 3, 4]
        assert sorted(d['name'] for d in val_sets.values()) == ['Set5_x2', 'Set5_x3', 'Set5_x4']
        assert all(d['scale'] == int(d['name'][-1]) for d in val_sets.values())
        crop = 'scale'
    else:
        assert data['gt_size'] == 64 * opt['scale']
        assert [d['name'] for d in val_sets.values()] == ['Set5']
        crop = opt['scale']
    for metric in ('psnr', 'ssim'):
        assert opt['val']['metrics'][metric]['test_y_channel'] is True
        assert opt['val']['metrics'][metric]['crop_border'] == crop
    check_builds(opt)


@pytest.mark.parametrize('options', TEST_OPTIONS)
def test_test_options_cover_the_four_benchmarks_and_build(options, fixtures, tmp_path, monkeypatch):
    opt = parse(options, False, fixture_overrides(options, fixtures), tmp_path, monkeypatch)
    names = [d['name'] for d in opt['datasets'].values()]
    if opt['network_g']['type'] == 'MultiScaleLESRCNN':
        assert names == [f'{s}_x{k}' for s in BENCHMARKS for k in (2, 3, 4)]
        crop = 'scale'
    else:
        assert names == list(BENCHMARKS)
        crop = opt['scale']
    for metric in ('psnr', 'ssim'):
        assert opt['val']['metrics'][metric]['test_y_channel'] is True
        assert opt['val']['metrics'][metric]['crop_border'] == crop
    assert opt['path']['pretrain_network_g'].startswith('experiments/')
    assert opt['path']['results_root'] == str(tmp_path / 'results' / opt['name'])
    check_builds(opt)


def test_canonical_dataroots(monkeypatch, tmp_path):
    """Without overrides, the files name the canonical layout, relative to the working directory."""
    opt = parse('train_lesrcnn_x3.yml', True, ['name=x'], tmp_path, monkeypatch)
    assert opt['datasets']['train']['dataroot_gt'] == 'datasets/DIV2K/DIV2K_train_HR_sub.lmdb'
    assert opt['datasets']['train']['dataroot_lq'] == 'datasets/DIV2K/DIV2K_train_LR_bicubic_X3_sub.lmdb'
    assert opt['datasets']['val']['dataroot_gt'] == 'datasets/benchmark/Set5/X3/HR'
    opt = parse('test_lesrcnn_x4.yml', False, ['name=x'], tmp_path, monkeypatch)
    assert [d['dataroot_lq'] for d in opt['datasets'].values()] == [f'datasets/benchmark/{s}/X4/LR' for s in BENCHMARKS]
    assert opt['path']['pretrain_network_g'] == 'experiments/pretrained_models/lesrcnn_x4_basicsr.pth'
