"""Time LESRCNN-family networks: the authors' computation against the fast path, in one run.

Examples::

    lesrcnn-measure-runtime --scale 2 --preset ntire                     # the issue's CPU comparison
    lesrcnn-measure-runtime --scale 4 --preset 256 512 1024 --device cuda --dtypes fp32 fp16 bf16
    lesrcnn-measure-runtime --scale 2 --preset ntire --compile --threads 1 2
    lesrcnn-measure-runtime --lr-size 32x32 --repeats 2 --results-file results.csv

Every setting is warmed up and timed with torch.utils.benchmark (accelerator synchronised), the
settings interleaved round by round; each reports its median and p10/p90, images/s, megapixels/s,
peak memory and, except the fp32 NCHW reference itself, its largest difference from the reference's
output. A 64->64 3x3 convolution on a 256x256 map is timed alongside as the roofline. Writes
<prefix>.json, .csv, .md and a .png plot into --output-dir; with --results-file (CSV columns or JSON
keys name, params, macs, psnr; optional dataset, scale) also <prefix>_quality.png, PSNR against
parameters and against MACs.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys

import torch

from ..archs import ARCHS, VARIANTS
from ..benchmark import (DTYPES, MEMORY_FORMATS, PATHS, TARGETS, comparisons, environment, format_markdown,
                         measure_runtime, plot_quality, plot_runtime, read_results, settings_grid)
from ..checkpoint import CheckpointError, load_model
from ..complexity import PRESETS, build_network, default_scale, input_size, parse_size
from .count_flops import network_from_args, write_atomically


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    network = parser.add_argument_group('network')
    source = network.add_mutually_exclusive_group()
    source.add_argument('--arch', choices=sorted(ARCHS), help='network by registered name (default LESRCNN)')
    source.add_argument('-opt', '--opt', metavar='YAML', help='BasicSR options file: its network_g')
    source.add_argument('--config', metavar='PY', help='MMagic config: its model.generator (needs mmengine)')
    network.add_argument('--scale', type=int, choices=(2, 3, 4, 8), help='upscaling factor (default: the network\'s)')
    network.add_argument('--scales', type=int, nargs='+', help='MultiScaleLESRCNN: scales to build')
    network.add_argument('--variant', choices=sorted(VARIANTS), help='LESRCNN ablation variant')
    network.add_argument('--num-feat', type=int, help='feature channels (default 64)')
    network.add_argument('--weights', help='checkpoint to time (any format lesrcnn-convert reads); default: '
                                           'the network\'s initial weights, seeded (timing does not depend on them)')
    sizes = parser.add_argument_group('input sizes (default: --preset ntire)')
    sizes.add_argument('--lr-size', action='append', default=[], metavar='HxW', help='LR input size (repeatable)')
    sizes.add_argument('--hr-size', action='append', default=[], metavar='HxW', help='HR output size (repeatable)')
    sizes.add_argument('--preset', nargs='+', default=[], choices=sorted(PRESETS),
                       help='ntire: 256x256 LR; 720p: 1280x720 output; 256/512/1024: square HR outputs')
    sizes.add_argument('--batch', type=int, default=1, help='images per call')
    run = parser.add_argument_group('settings')
    run.add_argument('--device', default='cpu', help='cpu or cuda[:N]')
    run.add_argument('--paths', nargs='+', choices=PATHS, default=list(PATHS), help='reference and/or fast path')
    run.add_argument('--dtypes', nargs='+', choices=sorted(DTYPES), default=['fp32'], help='weight/input dtypes')
    run.add_argument('--memory-formats', nargs='+', choices=sorted(MEMORY_FORMATS), default=list(MEMORY_FORMATS),
                     help='memory formats')
    run.add_argument('--compile', action='store_true', help='also time every setting through torch.compile')
    run.add_argument('--threads', type=int, nargs='+', help='CPU thread counts (default: PyTorch\'s)')
    run.add_argument('--warmup', type=int, default=3, help='untimed calls per setting before timing')
    run.add_argument('--repeats', type=int, default=10, help='timed rounds per setting')
    run.add_argument('--no-roofline', action='store_true', help='skip the roofline convolution')
    out = parser.add_argument_group('output')
    out.add_argument('--output-dir', default='results/runtime', help='folder for <prefix>.json/.csv/.md/.png')
    out.add_argument('--prefix', default='runtime', help='file name prefix')
    out.add_argument('--title', help='title of the table and plot (default: network, scale, device)')
    out.add_argument('--results-file', help='PSNR results (CSV or JSON: name, params, macs, psnr) to plot')
    out.add_argument('--quiet', action='store_true', help='no progress bar, no table on standard output')
    args = parser.parse_args(argv)
    for name in ('batch', 'repeats'):
        if getattr(args, name) < 1:
            parser.error(f'--{name} must be at least 1')
    if args.threads and min(args.threads) < 1:
        parser.error('--threads must be at least 1')
    return args


def load_network(args: argparse.Namespace):
    name, kwargs = network_from_args(args)
    if args.weights:
        model = load_model(args.weights, arch=args.arch)
        return type(model).__name__, {'weights': args.weights}, model
    torch.manual_seed(0)
    return name, kwargs, build_network(name, **kwargs)


def run(args: argparse.Namespace, argv: list[str]) -> dict:
    """Measure, write the files, and return what was written (paths and the JSON document)."""
    name, kwargs, model = load_network(args)
    scale = args.scale or default_scale(model)
    sizes = ([input_size(scale, lr=parse_size(text)) for text in args.lr_size]
             + [input_size(scale, hr=parse_size(text)) for text in args.hr_size]
             + [input_size(scale, preset=preset) for preset in args.preset]) or [input_size(scale, preset='ntire')]
    results = read_results(args.results_file) if args.results_file else None
    settings = settings_grid(args.paths, args.dtypes, args.memory_formats,
                             (False, True) if args.compile else (False,), args.threads or (None,))
    env = environment(args.device)
    rows = measure_runtime(model, sizes, settings, device=args.device, scale=scale, batch=args.batch,
                           warmup=args.warmup, repeats=args.repeats, roofline=not args.no_roofline,
                           progress=not args.quiet)
    compared = comparisons(rows, scale, torch.device(args.device).type)
    title = args.title or f'{name} x{scale}, {env.get("gpu") or env["device"]}'
    document = {'title': title, 'network': name, 'arch_kwargs': kwargs, 'scale': scale, 'environment': env,
                'command': ' '.join(['lesrcnn-measure-runtime', *argv]),
                'targets': TARGETS, 'rows': [row.to_dict() for row in rows], 'comparisons': compared}
    markdown = format_markdown(rows, compared, env, title)
    stem = os.path.join(args.output_dir, args.prefix)
    write_atomically(json.dumps(document, indent=2) + '\n', stem + '.json')
    write_atomically(_csv(document['rows']), stem + '.csv')
    write_atomically(markdown, stem + '.md')
    plot_runtime(rows, stem + '.png', title)
    written = [stem + ext for ext in ('.json', '.csv', '.md', '.png')]
    if results:
        plot_quality(results, stem + '_quality.png')
        written.append(stem + '_quality.png')
    return {'files': written, 'markdown': markdown, 'document': document}


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    try:
        outcome = run(args, argv)
    except (ValueError, OSError, CheckpointError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    if not args.quiet:
        sys.stdout.write(outcome['markdown'])
    print('wrote ' + ', '.join(outcome['files']), file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
