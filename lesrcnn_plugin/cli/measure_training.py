"""Measure where a training iteration's time goes, for a BasicSR options file or an MMagic config.

Examples::

    lesrcnn-measure-training -opt options/train_lesrcnn_x2.yml                       # CUDA if available
    lesrcnn-measure-training --config configs/lesrcnn/lesrcnn_x2_div2k.py --format json --output x2.json
    lesrcnn-measure-training -opt options/train_lesrcnn_x2.yml --device cpu --iters 10 --workers 2

In one run, for the training set the file names and its twin in the other storage kind when its
databases exist (PNG ``*_sub.lmdb`` / raw ``*_sub_raw.lmdb``, see ``lesrcnn-prepare-div2k --storage``):

1. the data pipeline alone: samples/s with 0, 1, ... ``--workers`` loader workers, per storage;
2. the training step alone on synthetic batches of the recipe's shapes: ms/iteration in fp32, bf16
   and fp16 autocast, NCHW and channels_last, and compiled (CUDA; ``--compile`` on CPU), each
   checked for finite losses that decrease;
3. the framework's own training loop for ``--iters`` iterations per storage: ms/iteration and the
   time it spent waiting for data, as the framework measures it;

then which side is the bottleneck and the wall time of the recipe's iterations on this machine.
Paths in the file are used as they are: run from the directory holding ``datasets/``. Exits with
status 1 when a setting's losses are not finite or do not decrease (the report is written first).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

import torch

from ..benchmark.load import cpu_count
from ..benchmark.report import environment
from ..errors import ConfigError
from ..fileio import write_text_atomic
from ..options_check import BASICSR_OPTIONS, check_option_values
from ..training_throughput.measure import PRECISIONS, Skipped, measure_loader, measure_steps, project, step_settings
from ..training_throughput.report import TrainingReport
from ._common import check_constructor_options, int_at_least, positive_int, require, run


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('-opt', '--opt', metavar='YAML', help='BasicSR training options file')
    source.add_argument('--config', metavar='PY', help='MMagic training config')
    parser.add_argument('--device', help='cpu or cuda (default: cuda when available)')
    parser.add_argument('--iters', type=int_at_least(0),
                        help='real-loop iterations per storage, the first ones not timed (default 300 on CUDA, '
                             '10 on CPU; 0 skips the loop)')
    parser.add_argument('--workers', type=int_at_least(0), default=cpu_count(),
                        help='measure the data pipeline with 0 .. N loader workers (default: the CPU count)')
    parser.add_argument('--loader-batches', type=positive_int, default=8,
                        help='fewest batches timed per worker count (default 8)')
    parser.add_argument('--step-rounds', type=positive_int,
                        help='timed steps per step setting (default 20 on CUDA, 3 on CPU)')
    parser.add_argument('--precisions', nargs='+', choices=PRECISIONS, default=list(PRECISIONS),
                        help='step settings to time (default: all)')
    parser.add_argument('--compile', action=argparse.BooleanOptionalAction,
                        help='also time compiled step settings (default: on CUDA only; compiling takes minutes '
                             'on a CPU)')
    parser.add_argument('--storages', nargs='+', choices=('png', 'raw'),
                        help='storage kinds to measure (default: every kind whose databases exist)')
    parser.add_argument('--batch', type=positive_int,
                        help="use this batch instead of the recipe's (a quick try; the report says so)")
    parser.add_argument('--format', choices=('markdown', 'json'), default='markdown',
                        help='report format of --output, or of standard output without it (default markdown)')
    parser.add_argument('--output', metavar='PATH',
                        help='write the report here (markdown also goes to standard output)')
    parser.add_argument('--quiet', action='store_true', help='no progress lines, nothing on standard output')
    return parser.parse_args(argv)


def check_source(args: argparse.Namespace) -> None:
    """Check the options file or config as the training commands do, before anything is measured.

    A file that is not valid YAML or Python, a number of the wrong type or range, or a network or model
    that is not registered is one line naming the file and the option (the measurement would otherwise
    end in a traceback, or report every step setting as failed and exit 0). The training data is
    checked later: the measurement also runs the databases of the other storage kind.
    """
    if args.opt:
        require('basicsr', needed_by='lesrcnn-measure-training -opt')
        from ..basicsr import launch

        options = argparse.Namespace(opt=args.opt, force_yml=None)
        launch.check_args(options)
        opt = launch.options_with_overrides(options)
        check_option_values(opt, BASICSR_OPTIONS, args.opt)
        from basicsr.utils.registry import ARCH_REGISTRY

        architectures = dict(iter(ARCH_REGISTRY))
        check_constructor_options(opt.get('network_g'), 'network_g', args.opt, architectures.get, architectures)
    else:
        require('mmagic', needed_by='lesrcnn-measure-training --config')
        from ..mmagic._cli import load_config

        load_config(argparse.Namespace(config=args.config, cfg_options=None, work_dir=None, launcher='none',
                                       local_rank=0), dataloaders=())


def open_source(path: str, framework: str):
    """The options file (``framework='basicsr'``) or config (``'mmagic'``) at ``path``, read by the framework's
    integration (``lesrcnn_plugin.training_throughput.sources`` describes what it offers)."""
    if not Path(path).is_file():
        raise ConfigError(f'{path}: not found')
    if framework == 'basicsr':
        from ..basicsr.throughput import BasicSRSource

        return BasicSRSource(path)
    from ..mmagic.throughput import MMagicSource

    return MMagicSource(path)


def measure(args: argparse.Namespace, argv: list[str]) -> TrainingReport:
    """Run the three measurements and the projection; returns the report."""
    device = torch.device(args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    if device.type not in ('cpu', 'cuda') or (device.type == 'cuda' and not torch.cuda.is_available()):
        raise ConfigError(f'--device {args.device}: use cpu, or cuda on a machine with a GPU')
    check_source(args)
    source = open_source(args.opt or args.config, 'basicsr' if args.opt else 'mmagic')
    notes = []
    if args.batch:
        source.set_batch(args.batch)
        notes.append(f'batch {args.batch} instead of the recipe\'s (--batch): figures are not the recipe\'s')
    recipe = source.recipe
    storages = args.storages or sorted(source.storages, key=lambda s: (s != recipe.storage, s))
    missing = [s for s in storages if s not in source.storages]
    if not source.storages or missing:
        raise ConfigError(f'{recipe.source}: no {" or ".join(missing or ["training"])} databases found for its '
                          f'training set (paths relative to {os.getcwd()}; lesrcnn-prepare-div2k writes them)')

    env = environment(str(device))  # the load average before the run

    def progress(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    loader = measure_loader(source.make_dataset, storages, recipe.batch, range(args.workers + 1),
                            args.loader_batches, source.collate_fn, progress)
    with_compile = args.compile if args.compile is not None else device.type == 'cuda'
    settings = [s for s in step_settings(with_compile) if s.precision in args.precisions]
    rounds = args.step_rounds or (20 if device.type == 'cuda' else 3)
    steps, skipped = measure_steps(recipe, settings, device, rounds=rounds, progress=progress)
    if not with_compile:
        skipped.append(Skipped(device.type, 'compiled settings',
                               'left out: compiling a training step takes minutes on a CPU (--compile to include)'
                               if device.type == 'cpu' else 'left out (--no-compile)'))
    iters = args.iters if args.iters is not None else (300 if device.type == 'cuda' else 10)
    loops = []
    for storage in storages if iters >= 2 else ():
        progress(f'real training loop: {storage}, {iters} iterations')
        loops.append(source.run_loop(storage, iters, device))
    projections, projection_notes = project(recipe, loader, steps, loops)
    return TrainingReport(' '.join(['lesrcnn-measure-training', *argv]), recipe, env, loader, steps, skipped,
                          loops, projections, notes + projection_notes)


def measure_and_write(args: argparse.Namespace, argv: list[str]) -> int:
    # The frameworks log to standard output (mmengine's logger, BasicSR's option parser): it is the
    # report's, so while they run it goes to standard error.
    with contextlib.redirect_stdout(sys.stderr):
        report = measure(args, argv)
    text = report.to_json() if args.format == 'json' else report.to_markdown()
    if args.output:
        write_text_atomic(args.output, text)
        if not args.quiet:
            sys.stdout.write(report.to_markdown())
            print(f'wrote {args.output}', file=sys.stderr)
    elif not args.quiet:
        sys.stdout.write(text)
    failed = [f'{row.setting} x{row.scale}' for row in report.step if not row.loss_ok]
    if failed:
        print(f'error: losses not finite or not decreasing: {", ".join(failed)}', file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    return run(lambda: measure_and_write(args, argv))


__all__ = ['main', 'measure', 'parse_args']

if __name__ == '__main__':
    sys.exit(main())
