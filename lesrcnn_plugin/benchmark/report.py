"""What a runtime measurement tells, and how it is written: comparisons, environment, tables.

* Comparisons (``comparisons``) are taken between rows of the same run (same size, same thread
  count): the speed-up of the fast path is the reference's median divided by the fast path's
  median (with the range of the p10/p90 ratios, which a rerun on a loaded machine stays within),
  for the fast path in NCHW and in channels_last against the reference in NCHW, and for
  channels_last against the reference in channels_last. Only eager fp32 rows are compared.
* A fast-path setting's roofline fraction is its rate of executed MACs (the fast path runs one
  upsampler pass fewer) divided by the rate of the fastest roofline probe with its dtype, memory
  format and thread count.
* ``environment`` records what a reader needs to compare timings (software, hardware, load), and
  ``RuntimeReport`` renders the whole measurement as JSON, CSV (one line per row) and markdown.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import platform
import time
from collections.abc import Mapping, Sequence

import torch

from ..archs.fast import fused_kernels_available
from .load import SPREAD_LIMIT, cpu_count, format_spread, load_average
from .timing import ROOFLINE_MACS, Row


@dataclasses.dataclass
class Comparison:
    """A figure of the fast path against the reference, from rows of one run."""
    name: str
    size: str
    threads: int | None
    value: float
    max_abs_diff: float | None
    low: float | None = None
    high: float | None = None

    def to_dict(self) -> dict:
        return {'comparison': self.name, 'size': self.size, 'threads': self.threads, 'value': self.value,
                'max_abs_diff': self.max_abs_diff, 'low': self.low, 'high': self.high}


def _same_run(row: Row, other: Row) -> bool:
    return row.size == other.size and row.setting.threads == other.setting.threads


def roofline_rate(rows: Sequence[Row], row: Row) -> float | None:
    """The fastest roofline probe's GMAC/s for ``row``'s dtype, memory format and threads (None if not timed)."""
    rates = [r.gmacs_per_s for r in rows if r.kind == 'roofline' and r.size == row.size
             and (r.setting.dtype, r.setting.memory_format, r.setting.threads)
             == (row.setting.dtype, row.setting.memory_format, row.setting.threads)]
    return max(rates) if rates else None


def comparisons(rows: Sequence[Row]) -> list[Comparison]:
    """Reference-vs-fast speed-ups and roofline fractions, for every eager fp32 reference in ``rows``."""
    result = []
    nets = [r for r in rows if r.kind == 'net' and r.setting.dtype == 'fp32' and not r.setting.compile]
    for ref in (r for r in nets if r.setting.is_reference):
        def find(path: str, fmt: str) -> Row | None:
            return next((r for r in nets if _same_run(r, ref) and r.setting.path == path
                         and r.setting.memory_format == fmt), None)
        pairs = [('fast nchw vs reference nchw', find('fast', 'nchw'), ref),
                 ('fast channels_last vs reference nchw', find('fast', 'channels_last'), ref),
                 ('fast channels_last vs reference channels_last', find('fast', 'channels_last'),
                  find('reference', 'channels_last'))]
        for name, fast, base in pairs:
            if fast is not None and base is not None:
                # The range a rerun can give: the ratio of the rounds' 10th and 90th percentiles.
                result.append(Comparison(name, ref.size, ref.setting.threads, base.timing.median / fast.timing.median,
                                         fast.max_abs_diff, low=base.timing.p10 / fast.timing.p90,
                                         high=base.timing.p90 / fast.timing.p10))
        for fast in (find('fast', 'nchw'), find('fast', 'channels_last')):
            rate = roofline_rate(rows, fast) if fast else None
            if rate:
                result.append(Comparison(f'roofline fraction, fast {fast.setting.memory_format}', ref.size,
                                         ref.setting.threads, fast.gmacs_per_s / rate, fast.max_abs_diff))
    return result


def environment(device: str) -> dict:
    """What a reader needs to compare timings: software, hardware, load."""
    info = {'torch': torch.__version__, 'python': platform.python_version(), 'device': device,
            'cpu': _cpu_model(), 'cpu_count': cpu_count(), 'torch_threads': torch.get_num_threads(),
            'onednn_fused_kernels': fused_kernels_available(), 'load_average': load_average(),
            'date': time.strftime('%Y-%m-%d %H:%M:%S %Z')}
    if device.startswith('cuda') and torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name(torch.device(device))
        info['cuda'] = torch.version.cuda
    return info


def _cpu_model() -> str:
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as handle:
            for line in handle:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclasses.dataclass
class RuntimeReport:
    """One run of the tool: the network timed, where, the rows measured and the comparisons drawn from them.

    Attributes:
        title: Heading of the table and the plot.
        network: Name of the network (class name, or the registered name it was built by).
        arch_kwargs: Arguments it was built with (``{'weights': path}`` for a loaded checkpoint).
        scale: Scale it ran at.
        environment: From ``environment``.
        command: The command line that produced the report.
        rows: From ``timing.measure_runtime``.
        comparisons: From ``comparisons(rows)``.
    """
    title: str
    network: str
    arch_kwargs: dict
    scale: int
    environment: dict
    command: str
    rows: list[Row]
    comparisons: list[Comparison]

    def to_dict(self) -> dict:
        return {'title': self.title, 'network': self.network, 'arch_kwargs': self.arch_kwargs, 'scale': self.scale,
                'environment': self.environment, 'command': self.command,
                'rows': [row.to_dict() for row in self.rows],
                'comparisons': [item.to_dict() for item in self.comparisons]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + '\n'

    def to_csv(self) -> str:
        """Every row (networks and roofline probes), one line each, with the JSON rows' keys as header."""
        records = [row.to_dict() for row in self.rows]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
        return buffer.getvalue()

    def to_markdown(self) -> str:
        return format_markdown(self.rows, self.comparisons, self.environment, self.title)


def format_markdown(rows: Sequence[Row], compared: Sequence[Comparison], env: Mapping, title: str) -> str:
    """Tables of the rows, the roofline probes and the reference-vs-fast comparison."""
    where = env.get('gpu') or env.get('cpu')
    lines = [f'### {title}', '',
             f'{where} ({env["cpu_count"]} CPUs); torch {env["torch"]}; threads pinned per row (the setting\'s '
             f'"Nt"; PyTorch\'s default here is {env["torch_threads"]}); load average before the run {_load(env)}, '
             f'after {_load(env, "load_average_after")}; {env["date"]}. Spread = (p90 - p10) / median; above '
             f'{SPREAD_LIMIT:.0%} the row is flagged UNSTABLE (read it as a range, not a figure).', '',
             '| setting | size | LR -> HR | median ms | p10 ms | p90 ms | spread | img/s | MP/s | GMAC/s | peak MiB '
             '| max abs diff |',
             '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |']
    for row in (r for r in rows if r.kind == 'net'):
        diff = 'reference' if row.max_abs_diff is None else f'{row.max_abs_diff:.2e}'
        memory = '-' if row.peak_memory_mb is None else f'{row.peak_memory_mb:.0f}'
        lines.append(f'| {row.setting.label} | {row.size} | {_hw(row.lr)} -> {_hw(row.hr)} | '
                     f'{row.timing.median * 1e3:.1f} | {row.timing.p10 * 1e3:.1f} | {row.timing.p90 * 1e3:.1f} | '
                     f'{format_spread(row.timing.spread)} | {row.images_per_s:.2f} | {row.megapixels_per_s:.2f} | '
                     f'{row.gmacs_per_s:.1f} | {memory} | {diff} |')
    probes = [r for r in rows if r.kind == 'roofline']
    if probes:
        lines += ['', 'Roofline probe: one 64->64 3x3 convolution on 1x64x256x256 '
                  f'({ROOFLINE_MACS / 1e9:.3f} GMAC), timed in the same rounds:', '',
                  '| dtype, memory format, threads | convolution | size round | median ms | GMAC/s |',
                  '| --- | --- | --- | ---: | ---: |']
        for row in probes:
            lines.append(f'| {row.setting.dtype} {row.setting.memory_format}'
                         f'{f" {row.setting.threads}t" if row.setting.threads else ""} | {row.probe} | {row.size} | '
                         f'{row.timing.median * 1e3:.2f} | {row.gmacs_per_s:.1f} |')
    if compared:
        lines += ['', 'Reference vs fast path (same run; speed-up = reference median / fast median; roofline '
                  'fraction = fast path GMAC/s executed / fastest probe GMAC/s):', '',
                  '| comparison | size | threads | value | p10-p90 range | max abs diff |',
                  '| --- | --- | ---: | ---: | --- | ---: |']
        for item in compared:
            diff = '-' if item.max_abs_diff is None else f'{item.max_abs_diff:.1e}'
            spread = '-' if item.low is None else f'{item.low:.2f}-{item.high:.2f}'
            lines.append(f'| {item.name} | {item.size} | {item.threads or "default"} | {item.value:.2f} | {spread} '
                         f'| {diff} |')
    return '\n'.join(lines) + '\n'


def _hw(size: Sequence[int]) -> str:
    return f'{size[0]}x{size[1]}'


def _load(env: Mapping, key: str = 'load_average') -> str:
    load = env.get(key)
    return '-' if not load else ' / '.join(f'{value:.2f}' for value in load)

