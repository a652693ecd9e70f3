"""The two frameworks as ``lesrcnn-measure-training`` sees them: recipe, datasets per storage, real loop.

``open_source(path, framework)`` gives a ``BasicSRSource`` (options file) or an ``MMagicSource``
(config) with the same interface:

* ``recipe``: a ``training.Recipe`` read from the file;
* ``storages``: the storage kinds whose databases exist, ``'png'`` and/or ``'raw'``: the file's own
  training set, and the same set switched to the other kind (``*_sub.lmdb`` <-> ``*_sub_raw.lmdb``,
  PNG datasets/loaders <-> their raw twins) when that kind's databases are on disk;
* ``make_dataset(storage)``: the framework's training dataset, built by the framework's registry;
  ``collate_fn``: the framework's collate function;
* ``run_loop(storage, iters, device)``: the framework's training loop for ``iters`` iterations,
  timed as the framework times it (BasicSR's ``AvgTimer`` around ``prefetcher.next()`` and the whole
  iteration, MMagic's ``IterTimerHook`` ``data_time`` and ``time``), with no validation and no
  checkpoints, in a temporary folder. Dataset paths are used as the file gives them, relative to the
  working directory.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
import yaml

from ..data.raw_store import png_db_path, raw_db_path
from ..errors import ConfigError
from .load import cpu_count
from .training import LoopRow, Recipe, StepSetting

_PRECISION = {None: 'fp32', False: 'fp32', 'false': 'fp32', 'bf16': 'bf16', 'fp16': 'fp16'}
# BasicSR dataset types by storage, and MMagic loading steps.
_BASICSR_TYPES = {'PairedImageDataset': 'RawLMDBPairedImageDataset',
                  'MultiScalePairedImageDataset': 'RawLMDBMultiScalePairedImageDataset'}
_MMAGIC_PNG_LOADERS = ('LoadImageFromFile', 'LoadImageFromSharedFile')
_MMAGIC_RAW_LOADER = 'LoadImageFromRawLMDB'


def capped_workers(workers: int) -> int:
    """The recipe's loader workers, at most the CPUs this process may use: more only queue behind each other
    (and a 2-core machine given 8 workers spends the measured loop starting them)."""
    return min(int(workers), cpu_count())


def warmup_iterations(iters: int) -> int:
    """Iterations of the real loop left out of its averages: worker start-up, first allocations, compiling."""
    return max(1, min(20, iters // 5))


def _convert(path: str, storage: str) -> str:
    return raw_db_path(path) if storage == 'raw' else png_db_path(path)


def _all_exist(paths) -> bool:
    return all(os.path.isfile(os.path.join(path, 'data.mdb')) for path in paths)


class BasicSRSource:
    """A BasicSR options file (``train: ...``, ``datasets: train: ...``)."""

    framework = 'basicsr'
    collate_fn = None

    def __init__(self, path: str) -> None:
        import lesrcnn_plugin.basicsr  # noqa: F401  (registers the family, its model and datasets)

        self.path = path
        with open(path, encoding='utf-8') as handle:
            self.opt = yaml.safe_load(handle)
        try:
            self.train_set = self.opt['datasets']['train']
            train = self.opt['train']
            optim = train['optim_g']
            self.scales = tuple(self.train_set['scales']) if 'scales' in self.train_set else (int(self.opt['scale']),)
            if 'scales' in self.train_set:
                lq_patch = self.train_set['lq_size']
            else:
                lq_patch = self.train_set['gt_size'] // self.scales[0]
            self.recipe = Recipe(
                'basicsr', path, self.opt['network_g']['type'],
                {k: v for k, v in self.opt['network_g'].items() if k != 'type'}, self.scales,
                int(self.train_set['batch_size_per_gpu']), int(lq_patch), int(train['total_iter']),
                int(self.train_set['num_worker_per_gpu']), float(optim['lr']), tuple(optim.get('betas', (0.9, 0.999))),
                float(optim.get('eps', 1e-8)), float(train.get('grad_clip_norm') or 0),
                StepSetting(_PRECISION[train.get('amp')], bool(train.get('channels_last')), bool(train.get('compile'))),
                'raw' if self.train_set['type'] in _BASICSR_TYPES.values() else 'png')
        except (KeyError, TypeError) as exc:
            raise ConfigError(f'{path}: not a BasicSR training options file of this plugin ({exc!r} missing)') from exc
        self.storages = {storage: variant for storage in ('png', 'raw')
                         if (variant := self._variant(storage)) is not None}

    def set_batch(self, batch: int) -> None:
        """Train with ``batch`` samples per iteration instead of the file's."""
        for opt in (self.train_set, *self.storages.values()):
            opt['batch_size_per_gpu'] = batch
        self.recipe = dataclasses.replace(self.recipe, batch=batch, recipe_batch=self.recipe.batch_of_recipe)

    def _variant(self, storage: str) -> dict | None:
        """The training set's options for ``storage``, if its databases exist."""
        opt = dict(self.train_set)
        if storage != self.recipe.storage:
            types = _BASICSR_TYPES if storage == 'raw' else {v: k for k, v in _BASICSR_TYPES.items()}
            if opt['type'] not in types or opt['io_backend']['type'] != 'lmdb':
                return None
            opt.update(type=types[opt['type']], dataroot_gt=_convert(opt['dataroot_gt'], storage),
                       dataroot_lq=_convert(opt['dataroot_lq'], storage))
        if opt['io_backend']['type'] == 'lmdb' and not _all_exist(
                [opt['dataroot_gt']] + [opt['dataroot_lq'].format(scale=k) for k in self.scales]):
            return None
        return opt

    def _dataset_opt(self, storage: str) -> dict:
        # Datasets write into their options (io_backend): every build gets its own copy.
        opt = copy.deepcopy(self.storages[storage])
        opt['phase'] = 'train'
        if 'scale' in self.opt:
            opt['scale'] = self.opt['scale']
        return opt

    def make_dataset(self, storage: str):
        from basicsr.data import build_dataset
        return build_dataset(self._dataset_opt(storage))

    def run_loop(self, storage: str, iters: int, device: torch.device) -> LoopRow:
        """``basicsr.train.train_pipeline``'s loop, without validation, checkpoints or logging."""
        # The model logs the network at INFO and the frozen mean-shift parameters at WARNING.
        logger = logging.getLogger('basicsr')
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            return self._run_loop(storage, iters, device)
        finally:
            logger.setLevel(level)

    def _run_loop(self, storage: str, iters: int, device: torch.device) -> LoopRow:
        from basicsr.data import build_dataloader, build_dataset
        from basicsr.data.data_sampler import EnlargedSampler
        from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher
        from basicsr.models import build_model
        from basicsr.utils import AvgTimer
        from basicsr.utils.options import parse_options

        with tempfile.TemporaryDirectory() as root, _argv(['lesrcnn-measure-training', '-opt', self.path]):
            opt, _ = parse_options(root, is_train=True)
        opt['num_gpu'] = 1 if device.type == 'cuda' else 0
        dataset_opt = self._dataset_opt(storage)
        workers = capped_workers(dataset_opt['num_worker_per_gpu'])
        dataset_opt['num_worker_per_gpu'] = workers
        train_set = build_dataset(dataset_opt)
        # One epoch covers the run, as DIV2K's 509 iterations per epoch cover a few hundred: no restart.
        enlarge = max(int(dataset_opt.get('dataset_enlarge_ratio', 1)),
                      math.ceil((iters + 1) * dataset_opt['batch_size_per_gpu'] / len(train_set)))
        sampler = EnlargedSampler(train_set, 1, 0, enlarge)
        loader = build_dataloader(train_set, dataset_opt, num_gpu=opt['num_gpu'], dist=False, sampler=sampler,
                                  seed=opt['manual_seed'])
        cuda_prefetch = dataset_opt.get('prefetch_mode') == 'cuda'
        prefetcher = CUDAPrefetcher(loader, opt) if cuda_prefetch else CPUPrefetcher(loader)
        opt['datasets']['train'] = dataset_opt
        model = build_model(opt)
        data_timer, iter_timer = AvgTimer(), AvgTimer()
        data_times, iter_times = [], []
        prefetcher.reset()
        train_data = prefetcher.next()
        for current_iter in range(1, iters + 1):
            data_timer.record()
            model.update_learning_rate(current_iter, warmup_iter=opt['train'].get('warmup_iter', -1))
            model.feed_data(train_data)
            model.optimize_parameters(current_iter)
            iter_timer.record()
            data_times.append(data_timer.get_current_time())
            iter_times.append(iter_timer.get_current_time())
            data_timer.start()
            iter_timer.start()
            train_data = prefetcher.next()
        del prefetcher, loader  # stops the workers
        return _loop_row(storage, iters, iter_times, data_times,
                         f'dataset_enlarge_ratio {enlarge}, {workers} workers'
                         + (', prefetch_mode cuda' if cuda_prefetch else ''))


class MMagicSource:
    """An MMagic config (``model``, ``train_dataloader``, ``optim_wrapper``, ``train_cfg``)."""

    framework = 'mmagic'

    def __init__(self, path: str) -> None:
        import lesrcnn_plugin.mmagic  # noqa: F401  (registers the family, transforms and hooks)
        from mmengine.config import Config
        from mmengine.dataset import pseudo_collate
        from mmengine.registry import init_default_scope

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
        return _loop_row(storage, iters, iter_times, data_times, f'IterTimerHook, {workers} workers')


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
            step['backend_args']['db_path'] = _convert(step['backend_args']['db_path'], storage)
        variant['data_prefix'] = {key: _convert(value, storage) for key, value in variant['data_prefix'].items()}
        folder, meta = os.path.split(variant['ann_file'])
        variant['ann_file'] = os.path.join(_convert(folder, storage), meta)
    return variant if _all_exist(step['backend_args']['db_path'] for step in loaders) else None


def _loop_row(storage: str, iters: int, iter_times: list[float], data_times: list[float], note: str) -> LoopRow:
    warmup = warmup_iterations(iters)
    timed_iters, timed_data = iter_times[warmup:], data_times[warmup:]
    return LoopRow(storage, iters, warmup, 1e3 * sum(timed_iters) / len(timed_iters),
                   1e3 * sum(timed_data) / len(timed_data), note)


@contextlib.contextmanager
def _argv(argv: list[str]) -> Iterator[None]:
    """BasicSR's option parser reads ``sys.argv``: hand it ours for the duration."""
    saved, sys.argv = sys.argv, argv
    try:
        yield
    finally:
        sys.argv = saved


def open_source(path: str, framework: str) -> BasicSRSource | MMagicSource:
    """The options file (``framework='basicsr'``) or config (``'mmagic'``) at ``path``."""
    if not Path(path).is_file():
        raise ConfigError(f'{path}: not found')
    return BasicSRSource(path) if framework == 'basicsr' else MMagicSource(path)


__all__ = ['BasicSRSource', 'MMagicSource', 'open_source', 'warmup_iterations']
