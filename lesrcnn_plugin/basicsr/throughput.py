"""BasicSR's side of ``lesrcnn-measure-training``: a BasicSR options file as a ``BasicSRSource``.

The interface is described in ``lesrcnn_plugin.training_throughput.sources``; the real loop is
``basicsr.train.train_pipeline``'s, without validation, checkpoints or logging.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import math
import sys
import tempfile
from collections.abc import Iterator

import torch
import yaml

from ..errors import ConfigError
from ..training_throughput.measure import LoopRow, Recipe, StepSetting
from ..training_throughput.sources import capped_workers, databases_exist, loop_row, storage_path

_PRECISION = {None: 'fp32', False: 'fp32', 'false': 'fp32', 'bf16': 'bf16', 'fp16': 'fp16'}
#: The raw-storage twin of each PNG dataset type.
_BASICSR_TYPES = {'PairedImageDataset': 'RawLMDBPairedImageDataset',
                  'MultiScalePairedImageDataset': 'RawLMDBMultiScalePairedImageDataset'}


class BasicSRSource:
    """A BasicSR options file (``train: ...``, ``datasets: train: ...``)."""

    framework = 'basicsr'
    collate_fn = None

    def __init__(self, path: str) -> None:
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
            opt.update(type=types[opt['type']], dataroot_gt=storage_path(opt['dataroot_gt'], storage),
                       dataroot_lq=storage_path(opt['dataroot_lq'], storage))
        if opt['io_backend']['type'] == 'lmdb' and not databases_exist(
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
        return loop_row(storage, iters, iter_times, data_times,
                         f'dataset_enlarge_ratio {enlarge}, {workers} workers'
                         + (', prefetch_mode cuda' if cuda_prefetch else ''))


@contextlib.contextmanager
def _argv(argv: list[str]) -> Iterator[None]:
    """BasicSR's option parser reads ``sys.argv``: hand it ours for the duration."""
    saved, sys.argv = sys.argv, argv
    try:
        yield
    finally:
        sys.argv = saved


__all__ = ['BasicSRSource']
