"""MMagic's side of ``lesrcnn-measure-training``: an MMagic config as an ``MMagicSource``.

The interface is described in ``lesrcnn_plugin.training_throughput.sources``; the real loop is
mmengine's ``Runner.train``, without validation or checkpoints.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import tempfile
import time

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from ..errors import ConfigError
from ..training_throughput.measure import LoopRow, Recipe, StepSetting
from ..training_throughput.sources import capped_workers, databases_exist, loop_row, storage_path

#: MMagic's loading steps of each storage.
_MMAGIC_PNG_LOADERS = ('LoadImageFromFile', 'LoadImageFromSharedFile')
_MMAGIC_RAW_LOADER = 'LoadImageFromRawLMDB'


class MMagicSource:
    """An MMagic config (``model``, ``train_dataloader``, ``optim_wrapper``, ``train_cfg``)."""

    framework = 'mmagic'

    def __init__(self, path: str) -> None:
        init_default_scope('mmagic')
        self.path = path
        self.cfg = Config.fromfile(path)
        self.collate_fn = pseudo_collate
        cfg = self.cfg
        try:
            datasets = _leaf_datasets(cfg.train_dataloader.dataset)
            steps = [step for dataset in datasets for step in dataset['pipeline']]
            scales = [step['dictionary']['scale'] for step in steps if step['type'] == 'SetValues']
            gt_patches = [step['gt_patch_size'] for step in steps if step['type'] == 'PairedRandomCrop']
            wrapper, generator = cfg.optim_wrapper, dict(cfg.model.generator)
            amp = 'fp32' if wrapper.get('type', 'OptimWrapper') != 'AmpOptimWrapper' else (
                'bf16' if str(wrapper.get('dtype')) in ('bfloat16', 'torch.bfloat16') else 'fp16')
            hooks = [hook.get('type') for hook in cfg.get('custom_hooks') or []]
            self.recipe = Recipe(
                'mmagic', path, generator.pop('type'), generator, tuple(scales), int(cfg.train_dataloader.batch_size),
                int(gt_patches[0] // scales[0]), int(cfg.train_cfg.max_iters), int(cfg.train_dataloader.num_workers),
                float(wrapper.optimizer.lr), tuple(wrapper.optimizer.get('betas', (0.9, 0.999))),
                float(wrapper.optimizer.get('eps', 1e-8)), float((wrapper.get('clip_grad') or {}).get('max_norm', 0)),
                StepSetting(amp, 'ChannelsLastHook' in hooks, bool(cfg.get('compile'))),
                'raw' if any(step['type'] == _MMAGIC_RAW_LOADER for step in steps) else 'png')
        except (AttributeError, KeyError, IndexError, TypeError) as exc:
            raise ConfigError(f'{path}: not an MMagic super-resolution training config ({exc!r})') from exc
        self.storages = {storage: variant for storage in ('png', 'raw')
                         if (variant := _mmagic_variant(cfg.train_dataloader.dataset, storage, self.recipe.storage))
                         is not None}

    def set_batch(self, batch: int) -> None:
        """Train with ``batch`` samples per iteration instead of the config's."""
        self.cfg.train_dataloader.batch_size = batch
        self.recipe = dataclasses.replace(self.recipe, batch=batch, recipe_batch=self.recipe.batch_of_recipe)

    def make_dataset(self, storage: str):
        from mmagic.registry import DATASETS
        return DATASETS.build(copy.deepcopy(self.storages[storage]))

    def run_loop(self, storage: str, iters: int, device: torch.device) -> LoopRow:
        """mmengine's ``Runner.train`` for ``iters`` iterations, without validation or checkpoints."""
        from mmengine.runner import Runner

        if (device.type == 'cuda') != torch.cuda.is_available():
            raise ConfigError(f"MMagic's runner trains on CUDA exactly when it is available; it cannot run on "
                              f'{device.type} here')
        cfg = copy.deepcopy(self.cfg)
        cfg.train_dataloader.dataset = copy.deepcopy(self.storages[storage])
        workers = capped_workers(cfg.train_dataloader.num_workers)
        cfg.train_dataloader.num_workers = workers
        cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1)
        for key in ('val_dataloader', 'val_evaluator', 'val_cfg', 'test_dataloader', 'test_evaluator', 'test_cfg'):
            cfg[key] = None
        cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=iters + 1, save_last=False)
        cfg.default_hooks.logger = dict(type='LoggerHook', interval=iters + 1)
        cfg.update(load_from=None, resume=False, launcher='none', log_level='WARNING',
                   experiment_name=f'measure_training_{storage}_{time.time_ns()}')
        with tempfile.TemporaryDirectory() as work_dir:
            cfg.work_dir = work_dir
            runner = Runner.from_cfg(cfg)
            runner.train()
            hub = runner.message_hub
            iter_times = list(hub.get_scalar('train/time').data[0])
            data_times = list(hub.get_scalar('train/data_time').data[0])
            del runner
        return loop_row(storage, iters, iter_times, data_times, f'IterTimerHook, {workers} workers')


def _leaf_datasets(dataset) -> list:
    if 'datasets' not in dataset:
        return [dataset]
    return [leaf for child in dataset['datasets'] for leaf in _leaf_datasets(child)]


def _mmagic_variant(dataset, storage: str, current: str):
    """``dataset`` (a config dict) reading ``storage``, if every database it names exists; else None."""
    if 'datasets' in dataset:
        children = [_mmagic_variant(child, storage, current) for child in dataset['datasets']]
        return None if None in children else dict(copy.deepcopy(dataset), datasets=children)
    variant = copy.deepcopy(dataset)
    loaders = [step for step in variant['pipeline'] if step['type'] in (*_MMAGIC_PNG_LOADERS, _MMAGIC_RAW_LOADER)]
    if not loaders or any((step.get('backend_args') or {}).get('backend') != 'lmdb' for step in loaders):
        return None
    if storage != current:
        for step in loaders:
            # The shared loader: LMDB opens a database once per process, and datasets may share one.
            step['type'] = _MMAGIC_RAW_LOADER if storage == 'raw' else 'LoadImageFromSharedFile'
            step['backend_args']['db_path'] = storage_path(step['backend_args']['db_path'], storage)
        variant['data_prefix'] = {key: storage_path(value, storage) for key, value in variant['data_prefix'].items()}
        folder, meta = os.path.split(variant['ann_file'])
        variant['ann_file'] = os.path.join(storage_path(folder, storage), meta)
    return variant if databases_exist(step['backend_args']['db_path'] for step in loaders) else None


__all__ = ['MMagicSource']
