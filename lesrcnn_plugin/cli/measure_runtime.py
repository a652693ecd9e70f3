"""Time any SR network; the LESRCNN family also through its fast path, in one run.

Examples::

    lesrcnn-measure-runtime --scale 2 --preset ntire                     # CPU, x2, 256x256 LR input
    lesrcnn-measure-runtime --scale 4 --preset 256 512 1024 --device cuda --dtypes fp32 fp16 bf16
    lesrcnn-measure-runtime --scale 2 --preset ntire --compile --threads 1 2
    lesrcnn-measure-runtime --lr-size 32x32 --repeats 2 --results-file results.csv
    lesrcnn-measure-runtime --arch basicsr:EDSR --arch-args '{"num_block": 16, "upscale": 4}' --preset 720p
    lesrcnn-measure-runtime -opt options/train_edsr.yml --ntire --device cuda --repeats 100
    lesrcnn-measure-runtime --weights 4x_SPAN.pth --ntire                # spandrel detects the architecture
    lesrcnn-measure-runtime --preset paper-table8 --require-idle         # the paper's Table 8, x2 family

The network flags are those of lesrcnn-count-flops (--arch SPEC, -opt, --config, --weights,
--arch-args; see lesrcnn_plugin.networks). Networks outside the LESRCNN family have only the
reference path.

CPU protocol: every setting runs with its thread count pinned (default: 1 thread, and all the cores
this process may use as a second column); the load average is recorded before and after the run;
--require-idle waits (at most --idle-wait seconds) while the 1-minute load average is above the core
count, then refuses; a row whose spread (p90 - p10) / median is above 20% is flagged UNSTABLE. On a
shared machine read the 1-thread rows: extra threads compete with the other processes.

--preset paper-table8 times the family's x2 networks at the LESRCNN paper's Table 8 output sizes
(256, 512 and 1024) in one interleaved run, beside the paper's seconds, and writes
<prefix>_paper_table8.json and .md (see lesrcnn_plugin.benchmark.paper for what differs).

Every setting is warmed up and timed with torch.utils.benchmark's clock (accelerator synchronised),
the settings interleaved round by round; each reports its median and p10/p90, images/s,
megapixels/s, peak memory and, except the fp32 NCHW reference itself, its largest difference from
the reference's output. A 64->64 3x3 convolution on a 256x256 map is timed alongside as the
roofline. Writes <prefix>.json, .csv, .md and a .png plot into --output-dir; with --results-file
(CSV columns or JSON keys name, params, macs, psnr; optional dataset, scale) also
<prefix>_quality.png, PSNR against parameters and against MACs.

--ntire times as the NTIRE efficient-SR challenge's test_demo.py does: each of --repeats images on
its own with CUDA events (a labelled wall clock on a CPU), after --warmup untimed passes, batch of one,
fp32, cudnn.benchmark off; it reports the mean milliseconds per image and writes <prefix>_ntire.json
and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from ..benchmark import (DTYPES, MEMORY_FORMATS, PATHS, RuntimeReport, comparisons, environment,
                         format_ntire_markdown, measure_runtime, ntire_runtime, plot_quality, plot_runtime,
                         read_results, settings_grid)
from ..benchmark.load import cpu_count, load_average, wait_until_idle
from ..benchmark.paper import format_paper_markdown, time_paper_table8
from ..complexity import PRESETS
from ..errors import ConfigError
from ..fileio import write_text_atomic
from ..networks import ResolvedNetwork
from ._common import add_size_arguments, positive_int, require, run, sizes_from_args
from ._networks import add_network_arguments, network_from_arguments

PAPER_TABLE8 = 'paper-table8'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_network_arguments(parser)
    add_size_arguments(parser)
    preset = next(action for action in parser._actions if action.dest == 'preset')
    preset.choices = sorted(PRESETS) + [PAPER_TABLE8]  # a protocol preset of this tool only
    settings = parser.add_argument_group('settings')
    settings.add_argument('--batch', type=positive_int, default=1, help='images per call')
    settings.add_argument('--device', default='cpu', help='cpu or cuda[:N]')
    settings.add_argument('--paths', nargs='+', choices=PATHS,
                          help='reference and/or fast path (default: both for the LESRCNN family, else reference)')
    settings.add_argument('--dtypes', nargs='+', choices=sorted(DTYPES), default=['fp32'],
                          help='weight/input dtypes')
    settings.add_argument('--memory-formats', nargs='+', choices=sorted(MEMORY_FORMATS),
                          default=list(MEMORY_FORMATS), help='memory formats')
    settings.add_argument('--compile', action='store_true', help='also time every setting through torch.compile')
    settings.add_argument('--threads', type=positive_int, nargs='+',
                          help='CPU thread counts, each pinned for its rows (default: 1 and all cores)')
    settings.add_argument('--require-idle', action='store_true',
                          help='wait while the load average is above the core count, then refuse (CPU)')
    settings.add_argument('--idle-wait', type=positive_int, default=300,
                          help='longest wait of --require-idle, in seconds (default 300)')
    settings.add_argument('--warmup', type=int, default=3, help='untimed calls per setting before timing')
    settings.add_argument('--repeats', type=positive_int, default=10,
                          help='timed rounds per setting; with --ntire, timed images')
    settings.add_argument('--ntire', action='store_true',
                          help='time as the NTIRE ESR test script does: per-image CUDA events (wall clock on a '
                               'CPU), mean ms per image, fp32, batch of one (the other settings do not apply)')
    settings.add_argument('--no-roofline', action='store_true', help='skip the roofline convolution')
    out = parser.add_argument_group('output')
    out.add_argument('--output-dir', default='results/runtime', help='folder for <prefix>.json/.csv/.md/.png')
    out.add_argument('--prefix', default='runtime', help='file name prefix')
    out.add_argument('--title', help='title of the table and plot (default: network, scale, device)')
    out.add_argument('--results-file', help='PSNR results (CSV or JSON: name, params, macs, psnr) to plot')
    out.add_argument('--quiet', action='store_true', help='no progress bar, no table on standard output')
    return parser.parse_args(argv)


def default_threads(device: str) -> list[int | None]:
    """One thread, and all the cores as a second column (CPU); PyTorch's own setting on an accelerator."""
    if device != 'cpu':
        return [None]
    return sorted({1, cpu_count()})


def load_network(args: argparse.Namespace) -> ResolvedNetwork:
    """The network to time: loaded weights (--weights), or a freshly built network seeded for repeatability
    (timing does not depend on the weights)."""
    torch.manual_seed(0)
    return network_from_arguments(args)


def measure(args: argparse.Namespace, argv: list[str]) -> tuple[RuntimeReport, list[str]]:
    """Measure, write the files, and return the report and the paths written."""
    network = load_network(args)
    scale, name = network.scale, network.name
    sizes = sizes_from_args(args, scale)
    results = read_results(args.results_file) if args.results_file else None  # a bad file fails before timing
    paths = args.paths or (list(PATHS) if network.is_family else ['reference'])  # build_runner refuses 'fast' there
    settings = settings_grid(paths, args.dtypes, args.memory_formats,
                             (False, True) if args.compile else (False,), args.threads or default_threads(args.device))
    env = environment(args.device)
    rows = measure_runtime(network.module, sizes, settings, device=args.device, scale=scale, batch=args.batch,
                           warmup=args.warmup, repeats=args.repeats, roofline=not args.no_roofline,
                           progress=not args.quiet)
    env['load_average_after'] = load_average()
    report = RuntimeReport(title=args.title or f'{name} x{scale}, {env.get("gpu") or env["device"]}',
                           network=name, arch_kwargs=network.kwargs, scale=scale, environment=env,
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


def measure_ntire(args: argparse.Namespace, argv: list[str]) -> tuple[str, list[str]]:
    """--ntire: time each size as the NTIRE ESR script does; write <prefix>_ntire.json/.md."""
    network = load_network(args)
    timings = [(network.name, ntire_runtime(network.module, size, scale=network.scale, device=args.device,
                                            images=args.repeats, warmup=args.warmup))
               for size in sizes_from_args(args, network.scale)]
    title = args.title or f'{network.name} x{network.scale}, NTIRE ESR convention'
    command = ' '.join(['lesrcnn-measure-runtime', *argv])
    markdown = f'## {title}\n\n`{command}`\n\n' + format_ntire_markdown(timings)
    document = {'title': title, 'command': command, 'network': network.name, 'arch_kwargs': network.kwargs,
                'scale': network.scale, 'environment': environment(args.device),
                'timings': [timing.to_dict() for _, timing in timings]}
    stem = os.path.join(args.output_dir, args.prefix + '_ntire')
    write_text_atomic(stem + '.json', json.dumps(document, indent=2) + '\n')
    write_text_atomic(stem + '.md', markdown)
    return markdown, [stem + '.json', stem + '.md']


def measure_paper_table8(args: argparse.Namespace, argv: list[str]) -> tuple[str, list[str]]:
    """--preset paper-table8: the family's x2 networks at Table 8's sizes, one run per thread count."""
    env = environment(args.device)
    where = env.get('gpu') or f'{env["cpu"]} ({env["cpu_count"]} CPUs)'
    sections, document = [], {'command': ' '.join(['lesrcnn-measure-runtime', *argv]), 'environment': env, 'runs': []}
    for threads in args.threads or default_threads(args.device):
        timings = time_paper_table8(args.device, threads=threads, warmup=args.warmup, repeats=args.repeats)
        label = f'{threads} thread(s)' if threads else 'default threads'
        sections.append(f'#### {label}\n\n' + format_paper_markdown(timings, f'{where}, {label}'))
        document['runs'].append({'threads': threads, 'timings': [timing.to_dict() for timing in timings]})
    env['load_average_after'] = load_average()
    markdown = (f'## LESRCNN paper, Table 8\n\n`{document["command"]}`; load average before '
                f'{_format_load(env["load_average"])}, after {_format_load(env["load_average_after"])}.\n\n'
                + '\n'.join(sections))
    stem = os.path.join(args.output_dir, args.prefix + '_paper_table8')
    write_text_atomic(stem + '.json', json.dumps(document, indent=2) + '\n')
    write_text_atomic(stem + '.md', markdown)
    return markdown, [stem + '.json', stem + '.md']


def _format_load(load) -> str:
    return ' / '.join(f'{value:.2f}' for value in load) if load else 'unknown'


def measure_and_print(args: argparse.Namespace, argv: list[str]) -> None:
    if args.require_idle and args.device == 'cpu':
        wait_until_idle(args.idle_wait)
    if PAPER_TABLE8 in args.preset:
        if len(args.preset) > 1 or args.lr_size or args.hr_size or args.ntire:
            raise ConfigError('--preset paper-table8 sets the sizes and the protocol: give it alone (no other '
                              'preset, --lr-size, --hr-size or --ntire)')
        markdown, written = measure_paper_table8(args, argv)
    elif args.ntire:
        markdown, written = measure_ntire(args, argv)
    else:
        require('plots', needed_by='lesrcnn-measure-runtime')  # the runtime plot is always written
        report, written = measure(args, argv)
        markdown = report.to_markdown()
    if not args.quiet:
        sys.stdout.write(markdown)
    print('wrote ' + ', '.join(written), file=sys.stderr)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    return run(lambda: measure_and_print(args, argv))


if __name__ == '__main__':
    sys.exit(main())
