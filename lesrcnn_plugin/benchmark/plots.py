"""Figures of a runtime measurement and of published quality figures; PNG, written atomically.

* ``plot_runtime``: median time per batch against output megapixels, the p10-p90 spread as error
  bars, one line per setting (solid for the reference, dashed for the fast path, one colour per way
  of running the arithmetic); log-log when several sizes were timed.
* ``plot_quality``: PSNR against parameters and against MACs, from a results file read by
  ``read_results`` (CSV or JSON), one labelled point per result, one colour per dataset and scale.

matplotlib is imported inside the functions, so that timing needs no plotting library.
"""
from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import DataError
from ..fileio import atomic_path
from .timing import Row

#: Columns of a results file for the quality plots (CSV header, or keys of JSON objects).
RESULT_COLUMNS = ('name', 'params', 'macs', 'psnr')


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')  # files only: no display is needed, nor wanted on a server
    from matplotlib import pyplot
    return pyplot


def plot_runtime(rows: Sequence[Row], path: str, title: str) -> None:
    """Median runtime (p10-p90 bars) against output megapixels, one line per setting; PNG."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(9, 4.8))
    settings = list(dict.fromkeys(r.setting for r in rows if r.kind == 'net'))
    # One colour per way of running the arithmetic; solid lines for the reference, dashed for the fast path.
    variants = list(dict.fromkeys(dataclasses.replace(s, path='') for s in settings))
    colours = plt.get_cmap('tab20' if len(variants) > 10 else 'tab10')
    for setting in settings:
        series = sorted((r for r in rows if r.kind == 'net' and r.setting == setting), key=lambda r: r.hr[0] * r.hr[1])
        megapixels = [r.hr[0] * r.hr[1] / 1e6 for r in series]
        medians = np.array([r.timing.median for r in series]) * 1e3
        errors = [medians - np.array([r.timing.p10 for r in series]) * 1e3,
                  np.array([r.timing.p90 for r in series]) * 1e3 - medians]
        colour = colours(variants.index(dataclasses.replace(setting, path='')) % colours.N)
        axis.errorbar(megapixels, medians, yerr=errors, marker='o' if setting.path == 'reference' else 's',
                      linestyle='-' if setting.path == 'reference' else '--', color=colour, capsize=3,
                      label=setting.label)
    axis.set_xlabel('output size (megapixels)')
    axis.set_ylabel('median time per batch (ms)')
    if len({r.hr for r in rows if r.kind == 'net'}) > 1:
        axis.set_xscale('log')
        axis.set_yscale('log')
    axis.set_title(title, fontsize=9)
    axis.grid(True, which='both', alpha=0.3)
    axis.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    _save_figure(plt, figure, path)


def read_results(path: str) -> list[dict]:
    """Read a results file: CSV with columns ``name,params,macs,psnr`` (optional ``dataset``, ``scale``),
    or JSON, a list of objects with the same keys. ``params`` is a count, ``macs`` a count of
    multiply-accumulates (not FLOPs), ``psnr`` in dB. A file that cannot be opened raises ``OSError``;
    one that does not hold such results, ``DataError``."""
    with open(path, encoding='utf-8') as handle:
        if path.lower().endswith('.json'):
            try:
                records = json.load(handle)
            except json.JSONDecodeError as exc:
                raise DataError(f'{path}: not valid JSON ({exc})') from None
        else:
            records = list(csv.DictReader(handle))
    if not isinstance(records, list) or not records:
        raise DataError(f'{path}: expected a non-empty list of results')
    parsed = []
    for index, record in enumerate(records):
        missing = [key for key in RESULT_COLUMNS if key not in record]
        if missing:
            raise DataError(f'{path}: result {index + 1} lacks {", ".join(missing)} '
                            f'(needs {", ".join(RESULT_COLUMNS)})')
        try:
            parsed.append({'name': str(record['name']), 'params': float(record['params']),
                           'macs': float(record['macs']), 'psnr': float(record['psnr']),
                           'group': ' '.join(filter(None, (str(record.get('dataset') or ''),
                                                           f'x{record["scale"]}' if record.get('scale') else '')))})
        except (TypeError, ValueError):
            raise DataError(f'{path}: result {index + 1} has a non-numeric params, macs or psnr') from None
    return parsed


def plot_quality(results: Sequence[Mapping], path: str) -> None:
    """PSNR against parameters and against MACs, one point per result, labelled; PNG."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for axis, key, scale, unit in ((axes[0], 'params', 1e3, 'parameters (K)'), (axes[1], 'macs', 1e9, 'MACs (G)')):
        for group in dict.fromkeys(r['group'] for r in results):
            members = [r for r in results if r['group'] == group]
            axis.scatter([r[key] / scale for r in members], [r['psnr'] for r in members], label=group or None)
            for r in members:
                axis.annotate(r['name'], (r[key] / scale, r['psnr']), fontsize=7, xytext=(3, 3),
                              textcoords='offset points')
        axis.set_xlabel(unit)
        axis.set_ylabel('PSNR (dB)')
        axis.grid(True, alpha=0.3)
        if any(r['group'] for r in results):
            axis.legend(fontsize=7)
    figure.tight_layout()
    _save_figure(plt, figure, path)


def _save_figure(plt, figure, path: str) -> None:
    try:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, dpi=120, format='png')
    finally:
        plt.close(figure)
