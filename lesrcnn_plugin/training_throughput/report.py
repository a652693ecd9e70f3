"""The report of ``lesrcnn-measure-training``: one run's measurements as JSON and as markdown.

JSON keys: ``recipe``, ``environment``, ``loader`` (list of ``{storage, workers, samples_per_s,
...}``), ``loader_speedup`` (raw over PNG samples/s per worker count, when both were measured),
``loader_warmup`` (storages whose 0-worker figure is flagged as warm-up, ``warmup_suspects``),
``step`` (list of ``{device, setting, scale, ms_per_iter, ..., losses, loss_ok}``), ``skipped``,
``loop``, ``projection`` (``{total_iter, hours, bottleneck, ...}`` for the recipe's own storage),
``projections`` (every storage measured) and ``notes``.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

from .measure import LoaderRow, LoopRow, Projection, Recipe, Skipped, StepRow


def loader_speedups(rows: Sequence[LoaderRow]) -> list[dict]:
    """Raw storage's samples/s over the PNG storage's, at every worker count both were measured at."""
    rates = {(row.storage, row.workers): row.samples_per_s for row in rows}
    return [{'workers': workers, 'raw_vs_png': rates['raw', workers] / rates['png', workers]}
            for workers in sorted({row.workers for row in rows})
            if ('raw', workers) in rates and ('png', workers) in rates]


#: A 0-worker rate this many times below the 1-worker rate measures start-up, not the pipeline: one
#: process cannot be slower than itself run in a worker by more than the cost of its first batches.
WARMUP_RATIO = 10


def warmup_suspects(rows: Sequence[LoaderRow]) -> list[str]:
    """Storages whose 0-worker samples/s is more than ``WARMUP_RATIO`` times below their 1-worker figure."""
    rates = {(row.storage, row.workers): row.samples_per_s for row in rows}
    return sorted(storage for storage, workers in rates if workers == 0 and (storage, 1) in rates
                  and rates[storage, 0] * WARMUP_RATIO < rates[storage, 1])


@dataclasses.dataclass
class TrainingReport:
    """Everything one run measured, and what it was run on."""
    command: str
    recipe: Recipe
    environment: dict
    loader: list[LoaderRow]
    step: list[StepRow]
    skipped: list[Skipped]
    loop: list[LoopRow]
    projections: list[Projection]
    notes: list[str]

    def to_dict(self) -> dict:
        recipe = dataclasses.asdict(self.recipe)
        recipe['setting'] = self.recipe.setting.label
        return {
            'tool': 'lesrcnn-measure-training', 'command': self.command, 'recipe': recipe,
            'environment': self.environment,
            'loader': [dataclasses.asdict(row) for row in self.loader],
            'loader_speedup': loader_speedups(self.loader), 'loader_warmup': warmup_suspects(self.loader),
            'step': [dict(dataclasses.asdict(row), loss_ok=row.loss_ok) for row in self.step],
            'skipped': [dataclasses.asdict(row) for row in self.skipped],
            'loop': [dataclasses.asdict(row) for row in self.loop],
            'projection': dataclasses.asdict(self.projections[0]) if self.projections else None,
            'projections': [dataclasses.asdict(row) for row in self.projections],
            'notes': self.notes,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + '\n'

    def to_markdown(self) -> str:
        r, env = self.recipe, self.environment
        device = env.get('gpu') or f'{env["cpu"]} ({env["cpu_count"]} cores)'
        scales = '/'.join(f'x{k}' for k in r.scales)
        lines = [f'### Training throughput: {r.network} {scales}, {r.framework} `{r.source}`, {device}', '',
                 f'torch {env["torch"]}; load average before the run '
                 f'{" / ".join(f"{v:.2f}" for v in env["load_average"] or ())}; {env["date"]}.  ',
                 f'Recipe: batch {r.batch}, LR patch {r.lq_patch} '
                 f'(HR {" / ".join(str(r.lq_patch * k) for k in r.scales)}), '
                 f'{r.workers} loader workers, {r.total_iter:,} iterations, step {r.setting.label}, '
                 f'{r.storage} storage.', '']
        lines += self._loader_table() + self._step_table() + self._loop_table() + self._projection_table()
        if self.notes:
            lines += ['Notes:', ''] + [f'* {note}' for note in self.notes] + ['']
        return '\n'.join(lines)

    def _loader_table(self) -> list[str]:
        if not self.loader:
            return []
        storages = sorted({row.storage for row in self.loader})
        rates = {(row.storage, row.workers): row.samples_per_s for row in self.loader}
        speedups = {s['workers']: s['raw_vs_png'] for s in loader_speedups(self.loader)}
        header = ['workers'] + [f'{s} samples/s' for s in storages] + (['raw / png'] if speedups else [])
        lines = ['**Data pipeline alone** (the recipe\'s dataset and batch, random samples):', '',
                 '| ' + ' | '.join(header) + ' |', '|' + ' ---: |' * len(header)]
        warmup = warmup_suspects(self.loader)
        for workers in sorted({row.workers for row in self.loader}):
            cells = [str(workers)] + [
                f'{rates[s, workers]:.1f}' + (' (warm-up)' if workers == 0 and s in warmup else '')
                if (s, workers) in rates else '' for s in storages]
            if speedups:
                cells.append(f'{speedups[workers]:.1f}' if workers in speedups else '')
            lines.append('| ' + ' | '.join(cells) + ' |')
        if warmup:
            lines += ['', f'(warm-up): the 0-worker figure of {", ".join(warmup)} is more than {WARMUP_RATIO}x below '
                          'the 1-worker one, which runs the same code in one process: it measures the first '
                          'batches\' start-up costs (file opens, caches), not the pipeline; read the 1-worker row.']
        return lines + ['']

    def _step_table(self) -> list[str]:
        lines = []
        if self.step:
            rounds = len(self.step[0].losses)
            lines += [f'**Training step alone** (synthetic batches of the recipe\'s shapes; median of the timed '
                      f'rounds, interleaved; loss check over all {rounds} steps of a setting: finite and lower at '
                      'the end):', '',
                      '| device | setting | scale | ms/iter | p10 ms | p90 ms | loss first -> last | loss check |',
                      '| --- | --- | ---: | ---: | ---: | ---: | --- | --- |']
            lines += [f'| {row.device} | {row.setting} | x{row.scale} | {row.ms_per_iter:.1f} | {row.p10_ms:.1f} | '
                      f'{row.p90_ms:.1f} | {row.losses[0]:.5f} -> {row.losses[-1]:.5f} | '
                      f'{"ok" if row.loss_ok else "FAILED"} |' for row in self.step]
            lines.append('')
        if self.skipped:
            lines += ['Not timed:', '']
            lines += [f'* {row.device}, {row.setting}: {row.reason}' for row in self.skipped] + ['']
        return lines

    def _loop_table(self) -> list[str]:
        if not self.loop:
            return []
        lines = [f'**Real training loop** ({self.recipe.framework}\'s own loop and timers, no validation or '
                 'checkpoints; averages after the warm-up iterations):', '',
                 '| storage | iterations | warm-up | ms/iter | data ms/iter | data share | note |',
                 '| --- | ---: | ---: | ---: | ---: | ---: | --- |']
        lines += [f'| {row.storage} | {row.iters} | {row.warmup} | {row.ms_per_iter:.1f} | '
                  f'{row.data_ms_per_iter:.1f} | {row.data_ms_per_iter / row.ms_per_iter:.0%} | {row.note} |'
                  for row in self.loop]
        return lines + ['']

    def _projection_table(self) -> list[str]:
        if not self.projections:
            return []
        lines = [f'**Projection** of the recipe\'s {self.recipe.total_iter:,} iterations on this machine:', '',
                 '| storage | ms/iter | hours | bottleneck | step ms (setting) | data ms/batch (workers) | basis |',
                 '| --- | ---: | ---: | --- | --- | --- | --- |']
        lines += [f'| {p.storage} | {p.ms_per_iter:.1f} | {p.hours:,.1f} | {p.bottleneck} | {p.step_ms:.1f} '
                  f'({p.step_setting}) | {p.loader_ms_per_batch:.1f} ({p.loader_workers}) | {p.basis} |'
                  for p in self.projections]
        return lines + ['']


__all__ = ['TrainingReport', 'loader_speedups']
