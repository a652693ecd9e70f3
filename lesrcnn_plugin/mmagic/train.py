"""Train a LESRCNN-family network with MMagic (mmengine's Runner).

Examples::

    lesrcnn-mmagic-train configs/lesrcnn/lesrcnn_x2_div2k.py
    lesrcnn-mmagic-train configs/lesrcnn/lesrcnn_x2_div2k.py --resume            # latest in work_dir
    lesrcnn-mmagic-train configs/lesrcnn/lesrcnn_x2_div2k.py --resume work_dirs/lesrcnn_x2_div2k/iter_5000.pth
    torchrun --nproc_per_node=4 tools/train.py configs/lesrcnn/multiscale_lesrcnn_div2k.py --launcher pytorch

``python tools/train.py`` is the same program; so is ``mim train mmagic CONFIG`` (MMagic's own tool),
except for --resume CHECKPOINT and the gloo fallback on CPU-only machines.

Resuming from another run's checkpoint (``--resume other_run/iter_5000.pth --work-dir new_run``)
continues that run in ``new_run`` and leaves ``other_run`` untouched: mmengine alone would delete
``other_run``'s best checkpoint once the new run validates better (``KeepOtherRunsCheckpoints``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmengine.hooks import CheckpointHook, Hook

from ..commands import require, run
from ..errors import ConfigError
from ._cli import add_common_arguments, end_distributed_run, init_cpu_process_group, load_config


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='MMagic config, e.g. configs/lesrcnn/lesrcnn_x2_div2k.py')
    parser.add_argument('--resume', nargs='?', const='auto', metavar='CHECKPOINT',
                        help='resume training (model, optimizer, scheduler, iteration): from CHECKPOINT, '
                        'or without a value from the latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (AmpOptimWrapper with dynamic loss scaling)')
    parser.add_argument('--tensorboard', action='store_true',
                        help='also log the scalars (losses, learning rate, metrics) as TensorBoard event files, '
                        'beside scalars.json in <work_dir>/<timestamp>/vis_data')
    add_common_arguments(parser)
    return parser.parse_args(argv)


class KeepOtherRunsCheckpoints(Hook):
    """Keep mmengine from deleting checkpoints of another run after resuming from one of its files.

    A training checkpoint carries its run's bookkeeping in the message hub: ``best_ckpt`` (or
    ``best_ckpt_<metric>``), the path of its best checkpoint, and ``keep_ckpt_ids``, the iterations
    of the checkpoints it keeps. mmengine's ``CheckpointHook`` acts on them in the resumed run: it
    deletes the previous best checkpoint as soon as it saves a better one, and with
    ``max_keep_ckpts`` it deletes ``iter_<id>.pth`` in its own folder for the old ids. Resumed into
    another work dir, the first deletes the other run's best checkpoint. Before ``CheckpointHook``
    reads them, this hook clears the entries of a run whose checkpoints lie outside this run's work
    dir, so a run only ever deletes its own files. The best score is kept: a new best checkpoint is
    saved, in this run's folder, when this run improves on the other run's best.
    """

    priority = 'VERY_HIGH'  # before CheckpointHook (VERY_LOW) reads the message hub in before_train

    def before_train(self, runner) -> None:
        hub = runner.message_hub
        checkpoints = {key: value for key, value in hub.runtime_info.items()
                       if (key == 'last_ckpt' or key.startswith('best_ckpt')) and isinstance(value, str)}
        own_folders = [Path(folder).resolve() for folder in self._checkpoint_folders(runner)]
        if all(any(Path(path).resolve().is_relative_to(folder) for folder in own_folders)
               for path in checkpoints.values()):
            return
        for key, path in checkpoints.items():
            if key.startswith('best_ckpt'):
                runner.logger.info(f'Resumed from another run: its best checkpoint {path} is left alone; this '
                                   f'run saves its own in {runner.work_dir}')
                hub.update_info(key, None)
        if 'keep_ckpt_ids' in hub.runtime_info:
            hub.update_info('keep_ckpt_ids', [])

    @staticmethod
    def _checkpoint_folders(runner) -> list[str]:
        """Where this run saves checkpoints: its work dir, and ``<out_dir>/<work dir name>`` for a
        ``CheckpointHook`` given an ``out_dir`` (mmengine's rule)."""
        folders = [runner.work_dir]
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook) and hook.out_dir is not None:
                folders.append(str(Path(hook.out_dir, Path(runner.work_dir).name)))
        return folders


def enable_amp(cfg) -> None:
    """Switch the config's ``OptimWrapper`` to ``AmpOptimWrapper`` with dynamic loss scaling."""
    wrapper = cfg.optim_wrapper
    if wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
        return
    if wrapper.get('type', 'OptimWrapper') != 'OptimWrapper':
        raise ConfigError(f'--amp needs optim_wrapper.type OptimWrapper, the config has {wrapper["type"]}')
    wrapper['type'] = 'AmpOptimWrapper'
    wrapper['loss_scale'] = 'dynamic'


def enable_tensorboard(cfg) -> None:
    """Add ``TensorboardVisBackend`` to the config's visualizer, beside its other backends."""
    require('mmagic', 'tensorboard', needed_by='--tensorboard')
    backends = cfg.visualizer.vis_backends
    if not any(backend.get('type') == 'TensorboardVisBackend' for backend in backends):
        backends.append(dict(type='TensorboardVisBackend'))


def train(args: argparse.Namespace) -> None:
    cfg = load_config(args, ('train_dataloader', 'val_dataloader'))
    if args.amp:
        enable_amp(cfg)
    if args.tensorboard:
        enable_tensorboard(cfg)
    if args.resume is not None:
        cfg.resume = True
        if args.resume != 'auto':
            # With resume=True, mmengine reads load_from and restores the whole training state.
            cfg.load_from = args.resume

    from mmengine.runner import Runner

    init_cpu_process_group(cfg)
    # Importing the config's custom modules (lesrcnn_plugin.mmagic) made mmengine read checkpoint
    # files as inert data: a crafted --resume file is refused, not run.
    runner = Runner.from_cfg(cfg)
    runner.register_hook(KeepOtherRunsCheckpoints())
    runner.train()
    end_distributed_run()


def main(argv=None) -> int:
    args = parse_args(argv)
    return run(lambda: train(args))


if __name__ == '__main__':
    sys.exit(main())
