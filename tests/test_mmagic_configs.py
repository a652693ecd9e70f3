"""MMagic integration, in process: registration, the plugin's transforms, sampler and model, and every
config under configs/ loaded with ``Config.fromfile`` and built against generated fixtures."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('mmagic')

from _training_runs import make_datasets  # noqa: E402  (imported from here by other test files)

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / 'configs' / 'lesrcnn').glob('*.py'))


@pytest.fixture
def mm_scope():
    import lesrcnn_plugin.mmagic  # noqa: F401  (registers the plugin's classes)
    from mmengine.registry import init_default_scope
    init_default_scope('mmagic')


def test_every_arch_registered_idempotently(mm_scope):
    from mmagic.registry import MODELS

    import lesrcnn_plugin.mmagic as plugin
    from lesrcnn_plugin.archs import ARCHS
    plugin.register_archs()  # a second registration is a no-op
    for name, cls in ARCHS.items():
        assert MODELS.get(name) is cls
    generator = MODELS.build(dict(type='LESRCNN', upscale=3))
    assert generator.upscale == 3


def test_registration_refuses_a_different_class_under_a_taken_name(mm_scope):
    from mmengine.registry import Registry

    from lesrcnn_plugin.archs import LESRCNN
    from lesrcnn_plugin.mmagic._registry import register_once
    registry = Registry('scratch')
    register_once(registry, LESRCNN)
    register_once(registry, LESRCNN)
    impostor = type('LESRCNN', (), {})
    with pytest.raises(KeyError, match='already registered'):
        register_once(registry, impostor)


def test_crop_gt_to_input():
    from lesrcnn_plugin.mmagic import CropGTToInput
    lq, gt = np.zeros((5, 7, 3), np.uint8), np.arange(17 * 23 * 3, dtype=np.int64).reshape(17, 23, 3)
    out = CropGTToInput()(dict(img=lq, gt=gt, scale=3))
    np.testing.assert_array_equal(out['gt'], gt[:15, :21])
    with pytest.raises(ValueError, match='smaller'):
        CropGTToInput(scale=4)(dict(img=lq, gt=gt))
    with pytest.raises(KeyError, match='scale'):
        CropGTToInput()(dict(img=lq, gt=gt))


def test_group_by_dataset_batch_sampler_never_mixes_datasets():
    from torch.utils.data import ConcatDataset, RandomSampler

    from lesrcnn_plugin.mmagic import GroupByDatasetBatchSampler
    dataset = ConcatDataset([list(range(10)), list(range(7)), list(range(13))])
    sampler = GroupByDatasetBatchSampler(RandomSampler(dataset), batch_size=4)
    batches = list(sampler)
    seen = sorted(i for batch in batches for i in batch)
    assert seen == list(range(30))
    for batch in batches:
        assert len({sampler.dataset_index(i) for i in batch}) == 1
    assert sum(len(b) == 4 for b in batches) == 10 // 4 + 7 // 4 + 13 // 4
    with pytest.raises(TypeError, match='ConcatDataset'):
        GroupByDatasetBatchSampler(RandomSampler(list(range(5))), batch_size=2)


def test_multiscale_edit_model_uses_the_batch_scale(mm_scope):
    import torch
    from mmagic.registry import MODELS
    from mmagic.structures import DataSample
    model = MODELS.build(dict(
        type='MultiScaleEditModel', generator=dict(type='MultiScaleLESRCNN', scales=[2, 3], num_feat=8),
        pixel_loss=dict(type='MSELoss'),
        data_preprocessor=dict(type='DataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.])))
    inputs = torch.rand(2, 3, 6, 5)

    def samples(*scales):
        return DataSample.stack([DataSample(metainfo=dict(scale=s)) for s in scales])

    assert model(inputs, samples(3, 3), mode='tensor').shape == (2, 3, 18, 15)
    assert model(inputs, None, mode='tensor').shape == (2, 3, 12, 10)  # default_scale
    with pytest.raises(ValueError, match='mixes scales'):
        model(inputs, samples(2, 3), mode='tensor')


@pytest.mark.parametrize('config', CONFIGS, ids=lambda p: p.stem)
def test_config_builds_model_and_datasets(config, tmp_path, monkeypatch, mm_scope):
    import torch
    from mmagic.registry import DATASETS, MODELS
    from mmengine.config import Config
    make_datasets(tmp_path)
    monkeypatch.chdir(tmp_path)
    cfg = Config.fromfile(str(config))
    assert cfg.custom_imports.imports == ['lesrcnn_plugin.mmagic']
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=10)
    assert cfg.train_cfg.max_iters == 600000 and cfg.param_scheduler.milestones == [400000]
    model = MODELS.build(cfg.model)
    generator_scales = model.generator.scales

    train_set = DATASETS.build(cfg.train_dataloader.dataset)
    starts = [0] + list(getattr(train_set, 'cumulative_sizes', [len(train_set)]))[:-1]
    for start in starts:
        sample = train_set[start]
        scale = sample['data_samples'].metainfo['scale']
        assert scale in generator_scales
        assert tuple(sample['inputs'].shape) == (3, 64, 64)
        assert tuple(sample['data_samples'].gt_img.shape) == (3, 64 * scale, 64 * scale)

    prefixes = [m.prefix for evaluator in cfg.test_evaluator for m in evaluator.metrics]
    assert len(set(prefixes)) == len(prefixes) // 2 == len(cfg.test_dataloader)
    for loader, evaluator in zip(cfg.test_dataloader, cfg.test_evaluator):
        test_set = DATASETS.build(loader.dataset)
        sample = test_set[0]
        scale = sample['data_samples'].metainfo['scale']
        assert all(m.convert_to == 'Y' and m.crop_border == scale for m in evaluator.metrics)
        lq, gt = sample['inputs'], sample['data_samples'].gt_img
        assert tuple(gt.shape[1:]) == (lq.shape[1] * scale, lq.shape[2] * scale)  # GT cropped to LR*k
        with torch.no_grad():
            packed = model.data_preprocessor(dict(inputs=[lq], data_samples=[sample['data_samples']]))
            output = model(**packed, mode='tensor')
        assert output.shape[-2:] == gt.shape[1:]
