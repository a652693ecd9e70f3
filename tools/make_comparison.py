#!/usr/bin/env python
"""Generate docs/comparison.md: LESRCNN beside the lightweight SR networks installable here.

    python tools/make_comparison.py                 # this machine's CPU: counts, cross-check, CPU runtime
    python tools/make_comparison.py --device cuda   # on a GPU machine: adds the GPU runtime section
    python tools/make_comparison.py --text-only     # the rows' published figures and notes only

The CPU run builds each network of ``comparison_networks.ENTRIES`` from its own framework in the
configuration of the published table it stands for (rows whose extra is missing are listed as
skipped), folds the re-parameterised ones (``comparison_deploy``), counts the parameters as trained and
as deployed, counts the deployed network with ``lesrcnn_plugin.complexity`` at the NTIRE input
(256x256 LR) and at a 720p output, counts it again with ``mmengine.analysis`` at a 32x32 LR input, and
times all of them. A ``--device cuda`` run keeps those counts (they do not depend on the device) and
times every network it can build there. Each run keeps the other device's timings from
``docs/comparison_data.json`` (dropping those of rows whose network has changed since), then rewrites
that file, ``docs/comparison.md`` and the three plots beside it.

Runtime, CPU: every deployed network in one interleaved run (``benchmark.time_networks``: median and
p10/p90 of ``--repeats`` rounds after ``--warmup`` calls) at a 256x256 output, once with one thread
pinned and once with all the cores; the load average is recorded before and after, and
``--require-idle`` waits for it to drop below the core count first. CUDA: the NTIRE ESR convention
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
from torch import nn

from comparison_deploy import LumaInput, deploy
from comparison_networks import ENTRIES, LESRCNN_SET5, Entry, params_match
from comparison_page import render_page, write_plots
from lesrcnn_plugin.benchmark import environment, ntire_runtime, resolve_device, time_networks
from lesrcnn_plugin.benchmark.load import MachineBusyError, cpu_count, load_average, wait_until_idle
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
    parser.add_argument('--repeats', type=int, help='CPU: interleaved rounds (default 5); CUDA: timed images '
                                                    '(default 100)')
    parser.add_argument('--require-idle', action='store_true',
                        help='CPU: wait (at most 10 minutes) until the load average is below the core count')
    parser.add_argument('--text-only', action='store_true',
                        help='rewrite the page and plots from the stored counts and timings, with each row\'s '
                             'published figures, sources and notes taken again from comparison_networks.py '
                             '(nothing is built, counted or timed)')
    return parser.parse_args(argv)


def _text_fields(entry: Entry, params: int) -> dict:
    """The fields of a row that come from ``comparison_networks.ENTRIES`` as written, not from counting."""
    return {'variant': entry.variant,
            'params_figure': {'printed': entry.params.printed, 'source': entry.params.source,
                              'differs': entry.params.differs, 'matches': params_match(entry.params.printed, params)},
            'quote': entry.quote and vars(entry.quote), 'psnr_of': entry.psnr_of,
            'measured': [vars(item) for item in entry.measured], 'unverified': entry.unverified, 'note': entry.note}


def refresh_text(data: dict) -> dict:
    """``data`` with every stored row's text fields taken again from ``ENTRIES`` (matched by label); a row
    whose network has changed since it was counted (another spec or arguments) needs a full run."""
    entries = {entry.label: entry for entry in ENTRIES}
    rows = []
    for row in data['networks']:
        entry = entries.get(row['label'])
        if entry is None or (entry.spec, json.loads(json.dumps(entry.kwargs))) != (row['spec'], row['kwargs']):
            raise SystemExit(f'{row["label"]}: its network changed since docs/comparison_data.json was written; '
                             f'run {COMMAND} without --text-only')
        rows.append({**row, **_text_fields(entry, row['params'])})
    return {**data, 'networks': rows}


def build(entry: Entry) -> tuple[ResolvedNetwork, nn.Module]:
    """(the network as trained, the network as deployed: folded where the paper counts it folded)."""
    torch.manual_seed(0)  # the same weights on every run; no count or timing depends on them
    if entry.spec.partition(':')[0] in ('basicsr', 'mmagic'):  # the integration offers its framework's registry
        importlib.import_module(f'lesrcnn_plugin.{entry.spec.partition(":")[0]}')
    network = resolve_network(entry.spec, entry.kwargs, scale=entry.scale)
    if entry.luma:
        network.module.network = LumaInput(network.module.network)
    if not entry.deployed:
        return network, network.module
    deployed, folded = deploy(network.module)
    if not folded:
        raise SystemExit(f'{entry.label}: no re-parameterisable block found to fold')
    return network, deployed


def count(entry: Entry, network: ResolvedNetwork, deployed: nn.Module) -> dict:
    """Parameters as trained and as deployed; the deployed network's counts at the NTIRE input and at 720p;
    the cross-check with mmengine; the row's published figures and notes."""
    ntire = count_complexity(deployed, input_size(network.scale, preset='ntire'))
    hd = count_complexity(deployed, input_size(network.scale, preset='720p'))
    check = cross_check(deployed, input_size(network.scale, lr=(CROSS_CHECK_LR, CROSS_CHECK_LR)))
    deployed_params = ntire.total.params
    return {
        'label': entry.label, 'spec': entry.spec, 'kwargs': entry.kwargs,
        'framework': entry.framework, 'name': network.name, 'scale': network.scale, 'luma': entry.luma,
        'deployed': entry.deployed, 'params_trained': sum(p.numel() for p in network.module.parameters()),
        'params': deployed_params,
        'macs_ntire': ntire.total.macs, 'macs_720p': hd.total.macs,
        'size_720p': f'{hd.size.lr[0]}x{hd.size.lr[1]} -> {hd.size.hr[0]}x{hd.size.hr[1]}',
        'activations_ntire': ntire.total.activations, 'conv_calls': ntire.total.conv_calls,
        **_text_fields(entry, deployed_params),
        'cross_check': {'params': check.params, 'mmengine_params': check.mmengine_params, 'macs': check.total_macs,
                        'mmengine_macs': sum(check.mmengine_macs.values()), 'mmengine_total': check.mmengine_total,
                        'only_mmengine': check.only_mmengine, 'differences': check.differences,
                        'agrees': check.agrees, 'note': check.note},
    }


def _timed_rows(labels, sizes, timings) -> dict:
    return {label: {'ms': timing.median * 1e3, 'p10_ms': timing.p10 * 1e3, 'p90_ms': timing.p90 * 1e3,
                    'spread': timing.spread, 'lr': list(size.lr), 'hr': list(size.hr)}
            for label, size, timing in zip(labels, sizes, timings)}


def measure_runtime(networks: list[tuple[str, int, nn.Module]], device: torch.device, warmup: int,
                    repeats: int) -> dict:
    """The runtime section of one device: every row (CPU: at one thread and at all cores), and on CUDA
    LESRCNN x2 at the paper's Table 8 sizes (``lesrcnn-measure-runtime --preset paper-table8`` on a CPU)."""
    labels = [label for label, _, _ in networks]
    load_before = load_average()
    if device.type == 'cpu':
        sizes = [input_size(scale, preset='256') for _, scale, _ in networks]
        runs = {}
        for threads in sorted({1, cpu_count()}):
            print(f'timing {len(networks)} networks on the CPU, {threads} thread(s)', file=sys.stderr)
            timings = time_networks([(module, size) for (_, _, module), size in zip(networks, sizes)],
                                    device=device, warmup=warmup, repeats=repeats, threads=threads)
            runs[str(threads)] = _timed_rows(labels, sizes, timings)
        method = (f'one interleaved run of every deployed network per thread count (threads pinned: 1, then all '
                  f'{cpu_count()} cores), median and p10/p90 of {repeats} rounds after {warmup} warm-up call(s), '
                  'torch.utils.benchmark clock, fp32, batch of one, at a 256x256 output')
        paper = {}
    else:
        sizes = [input_size(scale, preset='ntire') for _, scale, _ in networks]
        milliseconds = [ntire_runtime(module, size, device=device, images=repeats, warmup=warmup).mean_ms
                        for (_, _, module), size in zip(networks, sizes)]
        runs = {'default': {label: {'ms': ms, 'lr': list(size.lr), 'hr': list(size.hr)}
                            for label, size, ms in zip(labels, sizes, milliseconds)}}
        method = (f'NTIRE ESR convention: per-image CUDA events, mean of {repeats} images after {warmup} warm-up '
                  'passes, fp32, batch of one, cudnn.benchmark off, at the 256x256 LR input')
        family_x2 = next(module for label, _, module in networks if label == 'LESRCNN x2')
        paper = {preset: ntire_runtime(family_x2, input_size(2, preset=preset), device=device, images=repeats,
                                       warmup=warmup).mean_ms for preset in PAPER_SIZES}
    env = {**environment(str(device)), 'load_average': load_before, 'load_average_after': load_average()}
    return {'method': method, 'environment': env, 'runs': runs, 'lesrcnn_x2_paper_sizes': paper}


def kept_runtime(previous: dict, rows: list[dict]) -> dict:
    """The previous runs' timings of rows whose network is unchanged (same label, spec and arguments, folded
    and on Y alike)."""
    def key(row: dict) -> tuple:
        return row['spec'], row['kwargs'], row.get('deployed', False), row.get('luma', False)
    before = {row['label']: key(row) for row in previous.get('networks', [])}
    now = {row['label']: key(row) for row in rows}
    unchanged = {label for label, key in now.items() if before.get(label) == key}
    kept = {}
    for device, runtime in previous.get('runtime', {}).items():
        runs = runtime.get('runs')
        if runs is None and device != 'cpu':  # written before the CPU protocol changed; the GPU one did not
            runs = {'default': runtime['rows']}
        elif runs is None:  # CPU timings taken at PyTorch's default threads: not comparable with these
            continue
        runs = {threads: {label: row for label, row in timed.items() if label in unchanged}
                for threads, timed in runs.items()}
        kept[device] = {**runtime, 'runs': runs}
    return kept


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    device = resolve_device(args.device)
    warmup = args.warmup if args.warmup is not None else (1 if device.type == 'cpu' else 10)
    repeats = args.repeats or (5 if device.type == 'cpu' else 100)
    warnings.filterwarnings('ignore')  # the frameworks' import-time deprecation warnings are not ours to fix
    data_path = os.path.join(args.output_dir, 'comparison_data.json')
    previous = {}
    if os.path.exists(data_path):
        with open(data_path, encoding='utf-8') as handle:
            previous = json.load(handle)
    if (device.type != 'cpu' or args.text_only) and not previous:
        raise SystemExit(f'{data_path} is missing: run {COMMAND} (on a CPU) first; --device cuda and --text-only '
                         'start from its counts')
    if args.text_only:
        data = refresh_text(previous)
        write_text_atomic(data_path, json.dumps(data, indent=2) + '\n')
        write_plots(data, args.output_dir)
        write_text_atomic(os.path.join(args.output_dir, 'comparison.md'), render_page(data))
        print(f'rewrote {args.output_dir}/comparison.md and its plots from the stored counts', file=sys.stderr)
        return 0

    kept = [entry for entry in ENTRIES if entry.needs is None or importlib.util.find_spec(entry.needs)]
    missing = [{'label': entry.label, 'reason': f'{entry.needs} is not installed'}
               for entry in ENTRIES if entry not in kept]
    built = [(entry, *build(entry)) for entry in kept]
    if device.type == 'cpu':  # counts do not depend on the device: the CPU run makes them, a GPU run keeps them
        rows = []
        for entry, network, deployed in built:
            print(f'counting {entry.label}', file=sys.stderr)
            rows.append(count(entry, network, deployed))
        family_x2 = next(deployed for entry, _, deployed in built if entry.label == 'LESRCNN x2')
        counted = {'networks': rows, 'skipped': missing, 'lesrcnn_set5': [vars(item) for item in LESRCNN_SET5],
                   'lesrcnn_x2_paper_macs': {preset: count_complexity(family_x2, input_size(2, preset=preset)).total.macs
                                             for preset in PAPER_SIZES}}
    else:
        counted = {key: previous[key] for key in ('networks', 'skipped', 'lesrcnn_set5', 'lesrcnn_x2_paper_macs')}
    if args.require_idle and device.type == 'cpu':
        try:
            wait_until_idle(600)
        except MachineBusyError as exc:
            raise SystemExit(f'error: {exc}') from None
    runtime = measure_runtime([(entry.label, network.scale, deployed) for entry, network, deployed in built],
                              device, warmup, repeats)
    runtime['not_timed'] = missing

    data = {'command': COMMAND, **counted,
            'runtime': {**kept_runtime(previous, counted['networks']), device.type: runtime},
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
