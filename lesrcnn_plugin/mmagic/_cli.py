"""What ``lesrcnn-mmagic-train`` and ``lesrcnn-mmagic-test`` share: arguments and config loading.

``load_config`` checks the config before mmengine builds anything (``check_config``): the model and
its generator against MMagic's ``MODELS`` registry and their constructors, and every LMDB a dataset's
pipeline reads against the keys of the dataset's annotation file. Each problem is one line naming
the config and the key (``model.generator.upscal``), or the database and the key it lacks.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
from mmengine.config import Config, DictAction

from ..data.lmdb_io import check_lmdb_keys
from ..errors import ConfigError, DataError
from ..options_check import MMAGIC_OPTIONS, check_constructor_options, check_option_values
from ..recipes import resolve_recipe


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """``--work-dir``, ``--cfg-options`` and ``--launcher`` (plus torch.distributed's ``--local-rank``)."""
    parser.add_argument('--work-dir', help='folder for logs, checkpoints and the dumped config '
                        '(default: the config\'s work_dir, else ./work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config entries, e.g. train_cfg.max_iters=1000 '
                        'train_dataloader.batch_size=16 "model.generator.num_feat=32"; '
                        'lists as key="[a,b]"; no spaces')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher for multi-process runs (torchrun ... --launcher pytorch)')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK instead.
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0, help=argparse.SUPPRESS)


def load_config(args: argparse.Namespace, dataloaders: tuple[str, ...]) -> Config:
    """Read ``args.config``, apply ``--cfg-options``, ``--work-dir`` and ``--launcher``, and check it.

    ``dataloaders`` are the config's dataloaders the run builds (training: ``train_dataloader`` and
    ``val_dataloader``; testing: ``test_dataloader``): only their data is checked, since a test run
    need not have the training set.
    """
    path = Path(resolve_recipe(args.config, kind='configs'))  # a file, or a name: lesrcnn:lesrcnn_x2_div2k
    if not path.is_file():
        raise ConfigError(f'{path}: no such config file')
    try:
        cfg = Config.fromfile(str(path))
    except Exception as exc:  # mmengine raises many types for a broken config
        raise ConfigError(f'{path}: cannot load config ({type(exc).__name__}: {exc})') from exc
    if args.cfg_options:
        try:
            cfg.merge_from_dict(args.cfg_options)
        except (KeyError, TypeError, IndexError) as exc:
            raise ConfigError(f'--cfg-options {args.cfg_options} do not fit {path} ({type(exc).__name__}: {exc})') from exc
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif not cfg.get('work_dir'):
        cfg.work_dir = str(Path('work_dirs') / path.stem)
    cfg.launcher = args.launcher
    if args.launcher != 'none':
        os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
        _use_gloo_without_cuda(cfg)
    check_config(cfg, path, dataloaders)
    return cfg


def check_config(cfg: Config, source: str | os.PathLike,
                 dataloaders: tuple[str, ...] = ('train_dataloader', 'val_dataloader', 'test_dataloader')) -> None:
    """Check what mmengine would otherwise find only once it builds the run (or mid-run).

    * the numbers (``train_cfg.max_iters``, ``train_dataloader.batch_size``, ...) against their types
      and ranges (``options_check.MMAGIC_OPTIONS``), ``--cfg-options`` included;
    * ``model`` and ``model.generator``: registered in MMagic's ``MODELS``, every entry an argument
      of the class (the valid names listed, closest first);
    * every dataset of ``dataloaders`` that reads LMDBs (a ``backend_args=dict(backend='lmdb')`` pipeline
      step, such as ``LoadImageFromSharedFile``'s) with an annotation file: each database holds the
      key of every image the file lists (a missing one would end training with a ``TypeError``).

    Raises:
        ConfigError, DataError: one line naming the config and the key, or the database and its
            missing key.
    """
    from mmagic.registry import MODELS

    check_option_values(cfg.to_dict(), MMAGIC_OPTIONS, str(source))
    names = set()
    registry = MODELS
    while registry is not None:  # mmengine looks a name up in the registry, then in its parents
        registry.import_from_location()
        names |= set(registry.module_dict)
        registry = registry.parent
    model = cfg.get('model')
    check_constructor_options(model, 'model', source, MODELS.get, names, kind='model')
    if 'generator' in model:
        check_constructor_options(model['generator'], 'model.generator', source, MODELS.get, names, kind='network')
    for loader in dataloaders:
        loaders = cfg.get(loader) or []
        for index, dataloader in enumerate(loaders if isinstance(loaders, list) else [loaders]):
            key = f'{loader}.{index}' if isinstance(loaders, list) else loader
            for dataset in _leaf_datasets(dataloader.get('dataset'), f'{key}.dataset'):
                _check_lmdb_keys_of(*dataset, source)


def _leaf_datasets(dataset, key: str) -> Iterator[tuple[dict, str]]:
    """``(dataset, key)`` of each dataset that reads files, through ConcatDataset and RepeatDataset."""
    if not isinstance(dataset, dict):
        return
    if 'datasets' in dataset:
        for index, child in enumerate(dataset['datasets']):
            yield from _leaf_datasets(child, f'{key}.datasets.{index}')
    elif 'dataset' in dataset:
        yield from _leaf_datasets(dataset['dataset'], f'{key}.dataset')
    else:
        yield dataset, key


def _check_lmdb_keys_of(dataset: dict, key: str, source: str | os.PathLike) -> None:
    """Each LMDB the dataset's pipeline reads holds the key of every image its annotation file lists.

    ``BasicImageDataset`` takes the first word of each annotation line (``0001_s001.png``) and
    ``LoadImageFromFile`` looks up the base name of ``filename_tmpl`` applied to its stem.
    """
    steps = [step for step in dataset.get('pipeline') or ()
             if isinstance(step, dict) and (step.get('backend_args') or {}).get('backend') == 'lmdb']
    if not steps or not dataset.get('ann_file'):
        return
    ann_file = Path(dataset.get('data_root') or '', dataset['ann_file'])
    try:
        lines = ann_file.read_text(encoding='utf-8').splitlines()
    except OSError as exc:
        raise DataError(f'{ann_file}: cannot read the annotation file ({exc.strerror or exc}; {key}.ann_file in '
                        f'{source})') from None
    stems = [os.path.splitext(line.split(' ')[0])[0] for line in lines if line.strip()]
    templates = dataset.get('filename_tmpl') or {}
    for step in steps:
        template = templates.get(step.get('key', 'img'), '{}')
        keys = (os.path.basename(template.format(stem)) for stem in stems)
        db_path = step['backend_args'].get('db_path')
        try:
            check_lmdb_keys(db_path, keys, listed_in=ann_file)
        except DataError as exc:
            raise DataError(f'{exc} ({key}.pipeline in {source})') from None


def _use_gloo_without_cuda(cfg: Config) -> None:
    # NCCL needs GPUs; on a CPU-only machine a multi-process run can still use gloo, and DDP must
    # not be given device ids (mmengine passes LOCAL_RANK as one unless the config says otherwise).
    if torch.cuda.is_available():
        return
    if cfg.get('env_cfg', {}).get('dist_cfg', {}).get('backend', 'nccl') == 'nccl':
        cfg.merge_from_dict({'env_cfg.dist_cfg.backend': 'gloo'})
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel', broadcast_buffers=False)
    cfg.model_wrapper_cfg = dict(wrapper, device_ids=None)


def init_cpu_process_group(cfg: Config) -> None:
    """Start the process group for ``--launcher pytorch`` on a machine without CUDA.

    mmengine's pytorch launcher calls ``torch.cuda.set_device`` unconditionally, which fails without
    a GPU; it skips its own initialisation when a process group exists, so one is started here from
    torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) with the config's backend.
    """
    import torch.distributed as dist

    if cfg.launcher != 'pytorch' or torch.cuda.is_available() or dist.is_initialized():
        return
    dist_cfg = dict(cfg.get('env_cfg', {}).get('dist_cfg', {}))
    dist.init_process_group(backend=dist_cfg.pop('backend', 'gloo'), **dist_cfg)


def end_distributed_run() -> None:
    """Wait for every rank and tear the process group down; on a CPU-only machine, end the process.

    mmengine leaves the group open. On CPU (gloo), a rank whose work is done can still crash while
    the interpreter unloads native extensions at exit (SIGABRT "terminate called without an active
    exception", or SIGSEGV; seen in about 1 of 8 two-process runs on a loaded 2-core machine), and
    torchrun then reports the whole job as failed. So once every rank has passed the barrier, a CPU
    multi-process run flushes its logs and output and leaves with ``os._exit(0)``, skipping that
    teardown. Call it last: nothing after it runs on that path.
    """
    import torch.distributed as dist

    if not dist.is_initialized():
        return
    dist.barrier()
    dist.destroy_process_group()
    if not torch.cuda.is_available():
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
