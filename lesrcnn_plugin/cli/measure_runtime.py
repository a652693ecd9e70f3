"""Time LESRCNN-family networks: the authors' computation against the fast path, in one run.

Examples::

    lesrcnn-measure-runtime --scale 2 --preset ntire                     # CPU, x2, 256x256 LR input
    lesrcnn-measure-runtime --scale 4 --preset 256 512 1024 --device cuda --dtypes fp32 fp16 bf16
    lesrcnn-measure-runtime --scale 2 --preset ntire --compile --threads 1 2
    lesrcnn-measure-runtime --lr-size 32x32 --repeats 2 --results-file results.csv

Every setting is warmed up and timed with torch.utils.benchmark's clock (accelerator synchronised),
the settings interleaved round by round; each reports its median and p10/p90, images/s,
megapixels/s, peak memory and, except the fp32 NCHW reference itself, its largest difference from
the reference's output. A 64->64 3x3 convolution on a 256x256 map is timed alongside as the
roofline. Writes <prefix>.json, .csv, .md and a .png plot into --output-dir; with --results-file
(CSV columns or JSON keys name, params, macs, psnr; optional dataset, scale) also
<prefix>_quality.png, PSNR against parameters and against MACs.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

from ..archs import build_arch
from ..benchmark import (DTYPES, MEMORY_FORMATS, PATHS, RuntimeReport, comparisons, environment, measure_runtime,
                         plot_quality, plot_runtime, read_results, settings_grid)
from ..checkpoint import load_model
from ..fileio import write_text_atomic
from ._common import (add_network_arguments, add_size_arguments, network_from_args, positive_int, run,
                      sizes_from_args)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_network_arguments(parser)
    parser.add_argument('--weights', help='checkpoint to time (any format lesrcnn-convert reads, or a weights '
                                          'name); default: the network\'s initial weights, seeded (timing does '
                                          'not depend on them)')
    add_size_arguments(parser)
    settings = parser.add_argument_group('settings')
    settings.add_argument('--batch', type=positive_int, default=1, help='images per call')
    settings.add_argument('--device', default='cpu', help='cpu or cuda[:N]')
    settings.add_argument('--paths', nargs='+', choices=PATHS, default=list(PATHS),
                          help='reference and/or fast path')
    settings.add_argument('--dtypes', nargs='+', choices=sorted(DTYPES), default=['fp32'],
                          help='weight/input dtypes')
    settings.add_argument('--memory-formats', nargs='+', choices=sorted(MEMORY_FORMATS),
                          default=list(MEMORY_FORMATS), help='memory formats')
    settings.add_argument('--compile', action='store_true', help='also time every setting through torch.compile')
    settings.add_argument('--threads', type=positive_int, nargs='+', help='CPU thread counts (default: PyTorch\'s)')
    settings.add_argument('--warmup', type=int, default=3, help='untimed calls per setting before timing')
    settings.add_argument('--repeats', type=positive_int, default=10, help='timed rounds per setting')
    settings.add_argument('--no-roofline', action='store_true', help='skip the roofline convolution')
    out = parser.add_argument_group('output')
    out.add_argument('--output-dir', default='results/runtime', help='folder for <prefix>.json/.csv/.md/.png')
    out.add_argument('--prefix', default='runtime', help='file name prefix')
    out.add_argument('--title', help='title of the table and plot (default: network, scale, device)')
    out.add_argument('--results-file', help='PSNR results (CSV or JSON: name, params, macs, psnr) to plot')
    out.add_argument('--quiet', action='store_true', help='no progress bar, no table on standard output')
    return parser.parse_args(argv)


def load_network(args: argparse.Namespace) -> tuple[str, dict, torch.nn.Module]:
    """(name, kwargs, network): the checkpoint given by --weights, or a freshly built, seeded network."""
    if args.weights:
        model = load_model(args.weights, arch=args.arch, scale=args.scale)
        return type(model).__name__, {'weights': args.weights}, model
    name, kwargs = network_from_args(args)
    torch.manual_seed(0)  # the same initial weights on every run
    return name, kwargs, build_arch(name, **kwargs)


def measure(args: argparse.Namespace, argv: list[str]) -> tuple[RuntimeReport, list[str]]:
    """Measure, write the files, and return the report and the paths written."""
    name, kwargs, model = load_network(args)
    scale = args.scale or model.default_scale
    sizes = sizes_from_args(args, scale)
    results = read_results(args.results_file) if args.results_file else None  # a bad file fails before timing
    settings = settings_grid(args.paths, args.dtypes, args.memory_formats,
                             (False, True) if args.compile else (False,), args.threads or (None,))
    env = environment(args.device)
    rows = measure_runtime(model, sizes, settings, device=args.device, scale=scale, batch=args.batch,
                           warmup=args.warmup, repeats=args.repeats, roofline=not args.no_roofline,
                           progress=not args.quiet)
    report = RuntimeReport(title=args.title or f'{name} x{scale}, {env.get("gpu") or env["device"]}',
                           network=name, arch_kwargs=kwargs, scale=scale, environment=env,
                           command=' '.join(['lesrcnn-measure-runtime', *argv]), rows=rows,
                           comparisons=comparisons(rows))
    stem = os.path.join(args.output_dir, args.prefix)
    write_text_atomic(stem + '.json', report.to_json())
    write_text_atomic(stem + '.csv', report.to_csv())
    write_text_atomic(stem + '.md', report.to_markdown())
    plot_runtime(rows, stem + '.png', report.title)
    written = [stem + ext for ext in ('.json', '.csv', '.md', '.png')]
    if results:
        plot_quality(results, stem + '_quality.png')
        written.append(stem + '_quality.png')
    return report, written


def measure_and_print(args: argparse.Namespace, argv: list[str]) -> None:
    report, written = measure(args, argv)
    if not args.quiet:
        sys.stdout.write(report.to_markdown())
    print('wrote ' + ', '.join(written), file=sys.stderr)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    return run(lambda: measure_and_print(args, argv))


if __name__ == '__main__':
    sys.exit(main())
