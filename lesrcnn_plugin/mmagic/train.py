"""Train a LESRCNN-family network with MMagic (mmengine's Runner).

Examples::

    lesrcnn-mmagic-train configs/lesrcnn/lesrcnn_x2_div2k.py
    lesrcnn-mmagic-train configs/lesrcnn/lesrcnn_x2_div2k.py --resume            # latest in work_dir
    lesrcnn-mmagic-train configs/lesrcnn/lesrcnn_x2_div2k.py --resume work_dirs/lesrcnn_x2_div2k/iter_5000.pth
    torchrun --nproc_per_node=4 tools/train.py configs/lesrcnn/multiscale_lesrcnn_div2k.py --launcher pytorch

``python tools/train.py`` is the same program; so is ``mim train mmagic CONFIG`` (MMagic's own tool),
except for --resume CHECKPOINT and the gloo fallback on CPU-only machines.
"""
from __future__ import annotations

import argparse
import sys

from ..checkpoint import CheckpointError
from ._cli import (UserError, add_common_arguments, checkpoints_read_as_data, end_distributed_run,
                   init_cpu_process_group, load_config)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='MMagic config, e.g. configs/lesrcnn/lesrcnn_x2_div2k.py')
    parser.add_argument('--resume', nargs='?', const='auto', metavar='CHECKPOINT',
                        help='resume training (model, optimizer, scheduler, iteration): from CHECKPOINT, '
                        'or without a value from the latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (AmpOptimWrapper with dynamic loss scaling)')
    add_common_arguments(parser)
    return parser.parse_args(argv)


def enable_amp(cfg) -> None:
    """Switch the config's ``OptimWrapper`` to ``AmpOptimWrapper`` with dynamic loss scaling."""
    wrapper = cfg.optim_wrapper
    if wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
        return
    if wrapper.get('type', 'OptimWrapper') != 'OptimWrapper':
        raise UserError(f'--amp needs optim_wrapper.type OptimWrapper, the config has {wrapper["type"]}')
    wrapper['type'] = 'AmpOptimWrapper'
    wrapper['loss_scale'] = 'dynamic'


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(args)
        if args.amp:
            enable_amp(cfg)
        if args.resume is not None:
            cfg.resume = True
            if args.resume != 'auto':
                # With resume=True, mmengine reads load_from and restores the whole training state.
                cfg.load_from = args.resume
    except UserError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2

    from mmengine.runner import Runner

    init_cpu_process_group(cfg)
    runner = Runner.from_cfg(cfg)
    try:
        # load_from and --resume files are read as data: a crafted checkpoint is refused, not run.
        with checkpoints_read_as_data():
            runner.train()
    except CheckpointError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    end_distributed_run()
    return 0


if __name__ == '__main__':
    sys.exit(main())
