"""Training patches keep LR and HR aligned through every crop, flip and rotation of both frameworks.

The authors cut an LR patch and the HR patch at ``scale`` times its position, then apply one
``flipud`` / ``fliplr`` / ``rot90`` draw to both (``x2/dataset.py``). Here a non-symmetric synthetic
HR image and its MATLAB-bicubic LR images (``lesrcnn_plugin.data.imresize``) go through each
training dataset as configured for training (BasicSR's ``PairedImageDataset``, the plugin's raw and
multi-scale datasets, MMagic's DIV2K pipeline), and every patch produced must be
* the same dihedral transform (flips, transpose) of an LR crop and of the HR crop at ``scale``
  times its position, found by search over the 8 transforms and every position, and
* the bicubic downscaling of its own HR patch, away from the border the bicubic kernel reaches past.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from lesrcnn_plugin.data import imresize, write_lmdb
from lesrcnn_plugin.data.raw_store import write_raw_lmdb

HR_SIZE = 60  # divisible by 2, 3 and 4
LQ_SIZE = 10  # HR patches of 20, 30 and 40 pixels: the scales' crops of one image overlap
SCALES = (2, 3, 4)
SAMPLES = 16
BICUBIC_BORDER = 3  # LR pixels whose bicubic (antialiased, 4 LR pixels wide) support leaves the patch

DIHEDRAL = {
    'identity': lambda a: a,
    'fliplr': lambda a: a[:, ::-1],
    'flipud': lambda a: a[::-1],
    'rot180': lambda a: a[::-1, ::-1],
    'transpose': lambda a: a.transpose(1, 0, 2),
    'rot90': lambda a: np.rot90(a),
    'rot270': lambda a: np.rot90(a, 3),
    'antitranspose': lambda a: np.rot90(a, 2).transpose(1, 0, 2),
}


def synthetic_hr(seed: int = 0) -> np.ndarray:
    """A BGR uint8 image with no symmetry: ramps of different slopes plus smooth texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HR_SIZE, 0:HR_SIZE].astype(np.float64)
    texture = rng.normal(0, 1, (HR_SIZE // 4, HR_SIZE // 4, 3)).repeat(4, 0).repeat(4, 1)
    channels = [40 + 2.5 * x + 0.7 * y, 30 + 1.1 * y + 0.3 * x * y / HR_SIZE, 200 - 1.7 * x - 0.9 * y]
    image = np.stack(channels, axis=-1) + 25 * texture
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


@pytest.fixture(scope='module')
def images() -> dict:
    hr = synthetic_hr()
    return {'hr': hr, **{k: imresize(hr, 1 / k) for k in SCALES}}


@pytest.fixture(scope='module')
def databases(tmp_path_factory, images) -> Path:
    """PNG and raw LMDBs in the canonical DIV2K layout, one image (key ``0001_s001``)."""
    root = tmp_path_factory.mktemp('alignment')
    div2k = root / 'datasets' / 'DIV2K'
    for suffix, writer in (('', write_lmdb), ('_raw', write_raw_lmdb)):
        writer(div2k / f'DIV2K_train_HR_sub{suffix}.lmdb', [('0001_s001', images['hr'])])
        for k in SCALES:
            writer(div2k / f'DIV2K_train_LR_bicubic_X{k}_sub{suffix}.lmdb', [('0001_s001', images[k])])
    return root


def locate(patch: np.ndarray, image: np.ndarray) -> set[tuple[str, int, int]]:
    """Every ``(transform, top, left)`` with ``patch == transform(image[top:, left:] crop)``."""
    found = set()
    size = patch.shape[0]
    windows = np.lib.stride_tricks.sliding_window_view(image, (size, size), axis=(0, 1))  # H', W', C, h, w
    for name, transform in DIHEDRAL.items():
        matches = np.all(windows == transform(patch).transpose(2, 0, 1)[None, None], axis=(2, 3, 4))
        found |= {(name, int(top), int(left)) for top, left in zip(*np.nonzero(matches))}
    return found


def check_pair(hr_patch: np.ndarray, lr_patch: np.ndarray, scale: int, images: dict) -> str:
    """Assert that the pair is aligned (module docstring); return the transform applied."""
    lr_places = locate(lr_patch, images[scale])
    hr_places = {(name, top // scale, left // scale) for name, top, left in locate(hr_patch, images['hr'])
                 if top % scale == 0 and left % scale == 0}
    common = lr_places & hr_places
    assert common, (f'x{scale}: no transform and position give both patches (LR found at {sorted(lr_places)[:4]}, '
                    f'HR at {sorted(hr_places)[:4]})')
    b = BICUBIC_BORDER
    downscaled = imresize(hr_patch, 1 / scale).astype(np.int16)
    difference = np.abs(downscaled[b:-b, b:-b] - lr_patch[b:-b, b:-b].astype(np.int16)).max()
    assert difference <= 1, f'x{scale}: bicubic(HR patch) differs from the LR patch by {difference} in its interior'
    return sorted(common)[0][0]


def to_bgr_uint8(tensor) -> np.ndarray:
    """A BasicSR sample tensor (RGB, CHW, float in [0, 1]) as the BGR uint8 image it was cut from."""
    array = np.round(tensor.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
    return np.ascontiguousarray(array[..., ::-1])


def test_the_check_refuses_misaligned_patches(images):
    """The synthetic image has no symmetry: a pair flipped apart, or cut one pixel apart, fails."""
    hr, lr = images['hr'][12:32, 8:28], images[2][6:16, 4:14]
    assert check_pair(hr, lr, 2, images) == 'identity'
    assert check_pair(hr[::-1], lr[::-1], 2, images) == 'flipud'
    for wrong_hr in (hr[:, ::-1], hr.transpose(1, 0, 2), images['hr'][14:34, 8:28]):
        with pytest.raises(AssertionError):
            check_pair(wrong_hr, lr, 2, images)


def basicsr_options(root: Path, suffix: str, **extra) -> dict:
    div2k = root / 'datasets' / 'DIV2K'
    return {'phase': 'train', 'io_backend': {'type': 'lmdb'}, 'use_hflip': True, 'use_rot': True,
            'dataroot_gt': str(div2k / f'DIV2K_train_HR_sub{suffix}.lmdb'), **extra}


@pytest.mark.parametrize('storage', ['png', 'raw'])
@pytest.mark.parametrize('scale', SCALES)
def test_basicsr_paired_dataset_keeps_alignment(databases, images, storage, scale):
    from lesrcnn_plugin.basicsr.raw_lmdb_datasets import RawLMDBPairedImageDataset  # before basicsr (compat)
    from basicsr.data.paired_image_dataset import PairedImageDataset
    cls, suffix = {'png': (PairedImageDataset, ''), 'raw': (RawLMDBPairedImageDataset, '_raw')}[storage]
    dataset = cls(basicsr_options(
        databases, suffix, scale=scale, gt_size=LQ_SIZE * scale, filename_tmpl='{}',
        dataroot_lq=str(databases / 'datasets' / 'DIV2K' / f'DIV2K_train_LR_bicubic_X{scale}_sub{suffix}.lmdb')))
    transforms = set()
    for seed in range(SAMPLES):
        random.seed(seed)
        sample = dataset[0]
        transforms.add(check_pair(to_bgr_uint8(sample['gt']), to_bgr_uint8(sample['lq']), scale, images))
    assert len(transforms) >= 4, f'flips and rotations were not applied: {transforms}'


@pytest.mark.parametrize('storage', ['png', 'raw'])
def test_multiscale_dataset_keeps_every_scale_aligned(databases, images, storage):
    """Each scale's patch is cut from the decoded HR image, and the scales' crops overlap: a flip done
    in place inside that image (the bug this guards against) shows in the patches of later scales."""
    from lesrcnn_plugin.basicsr.multiscale_paired_dataset import MultiScalePairedImageDataset
    from lesrcnn_plugin.basicsr.raw_lmdb_datasets import RawLMDBMultiScalePairedImageDataset
    cls, suffix = {'png': (MultiScalePairedImageDataset, ''),
                   'raw': (RawLMDBMultiScalePairedImageDataset, '_raw')}[storage]
    dataset = cls(basicsr_options(
        databases, suffix, scales=list(SCALES), lq_size=LQ_SIZE,
        dataroot_lq=str(databases / 'datasets' / 'DIV2K' / f'DIV2K_train_LR_bicubic_X{{scale}}_sub{suffix}.lmdb')))
    transforms = set()
    for seed in range(SAMPLES):
        random.seed(seed)
        sample = dataset[0]
        for k in SCALES:
            transforms.add(check_pair(to_bgr_uint8(sample[f'gt_x{k}']), to_bgr_uint8(sample[f'lq_x{k}']), k, images))
    assert len(transforms) >= 4, f'flips and rotations were not applied: {transforms}'


@pytest.mark.parametrize('storage', ['png', 'raw'])
def test_mmagic_div2k_pipeline_keeps_alignment(databases, images, storage, monkeypatch):
    """The training datasets of ``configs/_base_/datasets/div2k_lmdb.py``, as the experiment configs use
    them (paths relative to the working directory), at every scale."""
    pytest.importorskip('mmagic')
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import lesrcnn_plugin.mmagic  # noqa: F401  (registers the plugin's transforms)
    from mmagic.registry import DATASETS

    init_default_scope('mmagic')
    monkeypatch.chdir(databases)
    config = Config.fromfile(str(Path(__file__).resolve().parents[1] / 'configs/_base_/datasets/div2k_lmdb.py'))
    datasets = {'png': config.div2k_train_datasets, 'raw': config.div2k_raw_train_datasets}[storage]
    transforms = set()
    for k in SCALES:
        dataset_cfg = datasets[f'x{k}'].to_dict()
        crop = next(step for step in dataset_cfg['pipeline'] if step['type'] == 'PairedRandomCrop')
        crop['gt_patch_size'] = LQ_SIZE * k
        dataset = DATASETS.build(dataset_cfg)
        for seed in range(SAMPLES):
            np.random.seed(seed)
            sample = dataset[0]
            lr = sample['inputs'].numpy().transpose(1, 2, 0)[..., ::-1]  # RGB (channel_order='rgb') to BGR
            hr = sample['data_samples'].gt_img.numpy().transpose(1, 2, 0)[..., ::-1]
            assert sample['data_samples'].metainfo['scale'] == k
            transforms.add(check_pair(np.ascontiguousarray(hr).astype(np.uint8),
                                      np.ascontiguousarray(lr).astype(np.uint8), k, images))
    assert len(transforms) >= 4, f'flips and transposes were not applied: {transforms}'
