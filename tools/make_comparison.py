#!/usr/bin/env python
"""Generate docs/comparison.md: LESRCNN beside the lightweight SR networks installable here.

    python tools/make_comparison.py                 # this machine's CPU: counts, cross-check, CPU runtime
    python tools/make_comparison.py --device cuda   # on a GPU machine: adds the GPU runtime section

The CPU run builds each network of ``comparison_networks.ENTRIES`` from its own framework (rows whose
extra is missing are listed as skipped), counts it with ``lesrcnn_plugin.complexity`` at the NTIRE
input (256x256 LR) and at a 720p output, counts it again with ``mmengine.analysis`` at a 32x32 LR
input, and times all of them. A ``--device cuda`` run keeps those counts (they do not depend on the
device) and times every network it can build there. Each run keeps the other device's timings from
``docs/comparison_data.json``, then rewrites that file, ``docs/comparison.md`` and the two plots
beside it (``comparison_psnr_macs.png``, ``comparison_psnr_runtime.png``).

Runtime: on a CPU, every network in one interleaved run (``benchmark.time_networks``: median of
``--repeats`` rounds after ``--warmup`` calls) at a 256x256 output; on CUDA, the NTIRE ESR convention
(``benchmark.ntire_runtime``: per-image CUDA events, mean of ``--repeats`` images) at the 256x256 LR
input, and LESRCNN x2 also at the paper's Table 8 sizes (256, 512 and 1024 outputs).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
import warnings

import torch

from comparison_networks import ENTRIES, Entry
from comparison_page import render_page, write_plots
from lesrcnn_plugin.benchmark import environment, ntire_runtime, resolve_device, time_networks
from lesrcnn_plugin.complexity import count_complexity, input_size
from lesrcnn_plugin.complexity_crosscheck import cross_check
from lesrcnn_plugin.fileio import write_text_atomic
from lesrcnn_plugin.networks import ResolvedNetwork, resolve_network

COMMAND = 'python tools/make_comparison.py'
CROSS_CHECK_LR = 32
#: Output sizes of the LESRCNN paper's runtime table (its Table 8, x2).
PAPER_SIZES = ('256', '512', '1024')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cpu', help='cpu or cuda[:N]: where the runtime is measured')
    parser.add_argument('--output-dir', default='docs', help='folder of comparison.md, its plots and its data')
    parser.add_argument('--warmup', type=int, help='untimed calls per network (default: 1 on a CPU, 10 on CUDA)')
    parser.add_argument('--repeats', type=int, help='CPU: interleaved rounds (default 3); CUDA: timed images '
                                                    '(default 100)')
    return parser.parse_args(argv)


def build(entry: Entry) -> ResolvedNetwork:
    torch.manual_seed(0)  # the same weights on every run; no count or timing depends on them
    return resolve_network(entry.spec, entry.kwargs, scale=entry.scale)


def count(entry: Entry, network: ResolvedNetwork) -> dict:
    """Counts at the NTIRE input and at 720p, the cross-check with mmengine, and the row's notes."""
    ntire = count_complexity(network.module, input_size(network.scale, preset='ntire'))
    hd = count_complexity(network.module, input_size(network.scale, preset='720p'))
    check = cross_check(network.module, input_size(network.scale, lr=(CROSS_CHECK_LR, CROSS_CHECK_LR)))
    return {
        'label': entry.label, 'spec': entry.spec, 'kwargs': entry.kwargs, 'framework': entry.framework,
        'name': network.name, 'scale': network.scale, 'params': ntire.total.params,
        'trainable_params': ntire.total.trainable_params, 'macs_ntire': ntire.total.macs, 'macs_720p': hd.total.macs,
        'size_720p': f'{hd.size.lr[0]}x{hd.size.lr[1]} -> {hd.size.hr[0]}x{hd.size.hr[1]}',
        'activations_ntire': ntire.total.activations, 'conv_calls': ntire.total.conv_calls,
        'quote': entry.quote and vars(entry.quote), 'psnr_of': entry.psnr_of, 'measured_set5': entry.measured_set5,
        'note': entry.note,
        'cross_check': {'params': check.params, 'mmengine_params': check.mmengine_params, 'macs': check.total_macs,
                        'mmengine_macs': sum(check.mmengine_macs.values()), 'mmengine_total': check.mmengine_total,
                        'only_mmengine': check.only_mmengine, 'differences': check.differences,
                        'agrees': check.agrees, 'note': check.note},
    }


def measure_runtime(networks: list[tuple[str, ResolvedNetwork]], device: torch.device, warmup: int,
                    repeats: int) -> dict:
    """The runtime section of one device: every row, and on CUDA LESRCNN x2 at the paper's Table 8 sizes
    (on this CPU those take minutes; docs/benchmarks.md has them)."""
    if device.type == 'cpu':
        sizes = [input_size(network.scale, preset='256') for _, network in networks]
        timings = time_networks([(network.module, size) for (_, network), size in zip(networks, sizes)],
                                device=device, warmup=warmup, repeats=repeats)
        milliseconds = [timing.median * 1e3 for timing in timings]
        method = (f'one interleaved run of every network (median of {repeats} rounds after {warmup} warm-up '
                  'call(s), torch.utils.benchmark clock), fp32, batch of one, at a 256x256 output')
        paper = {}
    else:
        sizes = [input_size(network.scale, preset='ntire') for _, network in networks]
        milliseconds = [ntire_runtime(network.module, size, device=device, images=repeats, warmup=warmup).mean_ms
                        for (_, network), size in zip(networks, sizes)]
        method = (f'NTIRE ESR convention: per-image CUDA events, mean of {repeats} images after {warmup} warm-up '
                  'passes, fp32, batch of one, cudnn.benchmark off, at the 256x256 LR input')
        family_x2 = next(network for label, network in networks if label == 'LESRCNN x2')
        paper = {preset: ntire_runtime(family_x2.module, input_size(2, preset=preset), device=device, images=repeats,
                                       warmup=warmup).mean_ms for preset in PAPER_SIZES}
    rows = {label: {'ms': ms, 'lr': list(size.lr), 'hr': list(size.hr)}
            for (label, _), size, ms in zip(networks, sizes, milliseconds)}
    return {'method': method, 'environment': environment(str(device)), 'rows': rows, 'lesrcnn_x2_paper_sizes': paper}


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    device = resolve_device(args.device)
    warmup = args.warmup if args.warmup is not None else (1 if device.type == 'cpu' else 10)
    repeats = args.repeats or (3 if device.type == 'cpu' else 100)
    warnings.filterwarnings('ignore')  # the frameworks' import-time deprecation warnings are not ours to fix
    data_path = os.path.join(args.output_dir, 'comparison_data.json')
    previous = {}
    if os.path.exists(data_path):
        with open(data_path, encoding='utf-8') as handle:
            previous = json.load(handle)
    if device.type != 'cpu' and not previous:
        raise SystemExit(f'{data_path} is missing: run {COMMAND} (on a CPU) first; --device cuda adds the GPU '
                         'runtime to its counts')

    kept = [entry for entry in ENTRIES if entry.needs is None or importlib.util.find_spec(entry.needs)]
    missing = [{'label': entry.label, 'reason': f'{entry.needs} is not installed'}
               for entry in ENTRIES if entry not in kept]
    networks = [(entry.label, build(entry)) for entry in kept]
    if device.type == 'cpu':  # counts do not depend on the device: the CPU run makes them, a GPU run keeps them
        rows = []
        for entry, (_, network) in zip(kept, networks):
            print(f'counting {entry.label}', file=sys.stderr)
            rows.append(count(entry, network))
        family_x2 = next(network for label, network in networks if label == 'LESRCNN x2')
        counted = {'networks': rows, 'skipped': missing, 'lesrcnn_x2_paper_macs': {
            preset: count_complexity(family_x2.module, input_size(2, preset=preset)).total.macs
            for preset in PAPER_SIZES}}
    else:
        counted = {key: previous[key] for key in ('networks', 'skipped', 'lesrcnn_x2_paper_macs')}
    print(f'timing {len(networks)} networks on {device}', file=sys.stderr)
    runtime = measure_runtime(networks, device, warmup, repeats)
    runtime['not_timed'] = missing

    data = {'command': COMMAND, **counted, 'runtime': {**previous.get('runtime', {}), device.type: runtime},
            'generation_seconds': {**previous.get('generation_seconds', {}),
                                   device.type: round(time.perf_counter() - started)}}
    write_text_atomic(data_path, json.dumps(data, indent=2) + '\n')
    write_plots(data, args.output_dir)
    write_text_atomic(os.path.join(args.output_dir, 'comparison.md'), render_page(data))
    print(f'wrote {args.output_dir}/comparison.md, its plots and comparison_data.json in '
          f'{time.perf_counter() - started:.0f} s', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
