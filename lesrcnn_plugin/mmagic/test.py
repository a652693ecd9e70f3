"""Test a LESRCNN-family network with MMagic (mmengine's Runner) on a config's test sets.

Examples::

    lesrcnn-convert ../shared/weights/lesrcnn_official/lesrcnn_x2.pth lesrcnn_x2_mmagic.pth --to mmagic
    lesrcnn-mmagic-test configs/lesrcnn/lesrcnn_x2_div2k.py lesrcnn_x2_mmagic.pth
    lesrcnn-mmagic-test configs/lesrcnn/multiscale_lesrcnn_div2k_test_x3.py work_dirs/multiscale_lesrcnn_div2k/iter_600000.pth
    torchrun --nproc_per_node=2 tools/test.py CONFIG CHECKPOINT --launcher pytorch

CHECKPOINT may be in any format ``lesrcnn_plugin.checkpoint`` reads (MMagic/mmengine, BasicSR, the
authors' or a plain state dict); it is read as inert data (nothing in the file runs) and loaded
strictly into the config's generator, so a checkpoint that does not fit the network is an error,
never a warning.
Metrics (e.g. ``Set5x2/PSNR``) are logged and printed, and written as JSON with ``--out``.
"""
from __future__ import annotations

import argparse
import json
import sys

from ..checkpoint import load_weights, resolve_source
from ..commands import run
from ..fileio import atomic_path
from ._cli import add_common_arguments, end_distributed_run, init_cpu_process_group, load_config


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='MMagic config, e.g. configs/lesrcnn/lesrcnn_x2_div2k.py')
    parser.add_argument('checkpoint', help='weights to test: a file (MMagic, BasicSR, official or plain format) '
                                           'or a registered name such as lesrcnn_x2')
    parser.add_argument('--out', help='also write the metrics to this JSON file')
    add_common_arguments(parser)
    return parser.parse_args(argv)


def load_generator_weights(model, source: str) -> None:
    """Load ``source`` strictly into ``model.generator`` (``model`` possibly wrapped, e.g. in DDP)."""
    from mmengine.model import is_model_wrapper

    load_weights((model.module if is_model_wrapper(model) else model).generator, source)


def collect_test_metrics(runner) -> dict:
    """Run ``runner.test()`` and return its metrics.

    MMagic's ``MultiTestLoop.run`` returns nothing; the metrics reach the ``after_test_epoch`` hooks,
    so a hook picks them up.
    """
    from mmengine.hooks import Hook

    collected: dict = {}

    class _Collect(Hook):
        def after_test_epoch(self, runner, metrics=None) -> None:
            collected.update(metrics or {})

    runner.register_hook(_Collect(), priority='LOWEST')
    runner.test()
    return {key: float(value) for key, value in collected.items()}


def write_json(metrics: dict, path: str) -> None:
    """Write ``metrics`` to ``path`` atomically (temporary file, then rename)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, sort_keys=True), encoding='utf-8')


def test(args: argparse.Namespace) -> None:
    weights = resolve_source(args.checkpoint)  # a missing file or unknown name fails before any work
    cfg = load_config(args, ('test_dataloader',))
    # The weights are loaded below, strictly and read as inert data, not by the Runner.
    cfg.load_from = None
    cfg.resume = False

    from mmengine.dist import is_main_process
    from mmengine.runner import Runner

    init_cpu_process_group(cfg)
    runner = Runner.from_cfg(cfg)
    load_generator_weights(runner.model, weights)
    metrics = collect_test_metrics(runner)
    if is_main_process():
        for key, value in metrics.items():
            print(f'{key}: {value:.4f}')
        if args.out:
            write_json(metrics, args.out)
    end_distributed_run()


def main(argv=None) -> int:
    args = parse_args(argv)
    return run(lambda: test(args))


if __name__ == '__main__':
    sys.exit(main())
