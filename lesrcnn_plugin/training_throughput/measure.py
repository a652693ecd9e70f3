"""Where a training iteration's time goes: the data pipeline alone, the step alone, and the projection.

The engine of ``lesrcnn-measure-training`` (``lesrcnn_plugin.cli.measure_training``); the frameworks'
datasets and real training loops are in their integrations (``sources`` says where), the report in
``report``.

* **Data pipeline** (``measure_loader``): the recipe's training dataset in a ``DataLoader`` with the
  recipe's batch size and 0, 1, 2, ... workers, drawing random samples with replacement (so a small
  dataset serves any number of batches and no epoch restarts the workers). The first round of
  batches (one per worker: their start-up) is not timed; then whole rounds of batches are, and the
  rate is samples per second. Storage kinds are measured one after the other at each worker count.
* **Training step** (``measure_steps``): the recipe's network, Adam, MSE loss and gradient clipping
  on synthetic batches of the recipe's shapes (smooth random LR patches, their bicubic upscaling as
  HR), under each ``StepSetting`` (fp32, bf16 or fp16 autocast with a gradient scaler,
  channels_last, ``torch.compile``). Every setting gets its own network (same seeded weights),
  optimiser and batch, is warmed up, then timed one step per round, the settings interleaved round
  by round so that a background load hits them all alike. The clock is ``torch.utils.benchmark``'s,
  which synchronises the accelerator. Each setting's losses over all its steps (on its one batch)
  must be finite and end lower than they started. A setting that fails to run is reported as not
  supported; on CPU one whose step on a small patch takes more than ``slow_factor`` times fp32's is
  reported as too slow before it runs at full size (fp16 convolutions have no fast CPU kernels),
  and ``torch.compile`` is left out unless asked for (compiling a training step takes minutes there).
* **Projection** (``project``): the recipe's ``total_iter`` times the time per iteration: the real
  loop's when it ran, else the slower of the step and the data pipeline at the recipe's worker
  count (their sum without workers). The bottleneck is the data pipeline when it delivers a batch
  more slowly than the step consumes one, at the recipe's worker count (capped at the counts
  measured), else the step.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence

import torch
from torch.nn import functional as F
from torch.utils.benchmark.utils.timer import timer as synchronized_clock
from torch.utils.data import DataLoader, Dataset, RandomSampler

from ..archs import build_arch
from ..benchmark.timing import Timing

PRECISIONS = ('fp32', 'bf16', 'fp16')
AUTOCAST_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


@dataclasses.dataclass(frozen=True)
class StepSetting:
    """How a training step runs: autocast precision, memory format, ``torch.compile``."""
    precision: str = 'fp32'
    channels_last: bool = False
    compile: bool = False

    @property
    def label(self) -> str:
        parts = [self.precision if self.precision == 'fp32' else f'{self.precision} autocast']
        return ' '.join(parts + ['channels_last'] * self.channels_last + ['compiled'] * self.compile)


def step_settings(compile_settings: bool) -> list[StepSetting]:
    """Every precision in NCHW and channels_last; with ``compile_settings``, fp32 and bf16 channels_last compiled."""
    settings = [StepSetting(p, cl) for p in PRECISIONS for cl in (False, True)]
    if compile_settings:
        settings += [StepSetting('fp32', False, True), StepSetting('bf16', True, True)]
    return settings


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What a training recipe (BasicSR options or MMagic config) asks for, as far as speed goes.

    Attributes:
        framework: ``'basicsr'`` or ``'mmagic'``.
        source: the options file or config.
        network: registered network name; ``network_kwargs`` its arguments.
        scales: the scales trained (one, or LESRCNN-S's).
        batch: samples per iteration (per GPU).
        lq_patch: LR patch side (HR patch = ``lq_patch * scale``).
        total_iter: iterations of the recipe.
        workers: data loader workers (per GPU).
        lr, betas, eps: Adam's settings; grad_clip: global norm clipping (0: none).
        setting: the recipe's own ``StepSetting`` (its amp, channels_last and compile options).
        storage: ``'png'`` or ``'raw'``, what the recipe's training set reads.
        recipe_batch: the recipe's own batch when ``batch`` is another (``--batch``), else ``None``.
    """
    framework: str
    source: str
    network: str
    network_kwargs: dict
    scales: tuple[int, ...]
    batch: int
    lq_patch: int
    total_iter: int
    workers: int
    lr: float
    betas: tuple[float, float]
    eps: float
    grad_clip: float
    setting: StepSetting
    storage: str
    recipe_batch: int | None = None

    @property
    def batch_of_recipe(self) -> int:
        """The batch the recipe itself trains with (``batch`` unless ``--batch`` replaced it)."""
        return self.recipe_batch or self.batch


@dataclasses.dataclass
class LoaderRow:
    """Data pipeline throughput for one storage kind and worker count."""
    storage: str
    workers: int
    samples_per_s: float
    batches: int
    seconds: float


@dataclasses.dataclass
class StepRow:
    """One training step setting at one scale: time per iteration and the losses of its steps."""
    device: str
    setting: str
    scale: int
    ms_per_iter: float
    p10_ms: float
    p90_ms: float
    losses: list[float]

    @property
    def loss_ok(self) -> bool:
        """Finite losses that end lower than they start."""
        return all(math.isfinite(v) for v in self.losses) and self.losses[-1] < self.losses[0]


@dataclasses.dataclass
class Skipped:
    """A step setting that was not timed, and why."""
    device: str
    setting: str
    reason: str


@dataclasses.dataclass
class LoopRow:
    """The framework's own training loop: wall time and data-waiting time per iteration, after warm-up."""
    storage: str
    iters: int
    warmup: int
    ms_per_iter: float
    data_ms_per_iter: float
    note: str = ''


@dataclasses.dataclass
class Projection:
    """The recipe's ``total_iter`` on this machine, for one storage kind."""
    storage: str
    total_iter: int
    hours: float
    bottleneck: str
    ms_per_iter: float
    basis: str
    step_setting: str
    step_ms: float
    loader_ms_per_batch: float
    loader_workers: int


def measure_loader(make_dataset: Callable[[str], Dataset], storages: Sequence[str], batch: int,
                   worker_counts: Sequence[int], batches: int = 8, collate_fn: Callable | None = None,
                   progress: Callable[[str], None] | None = None) -> list[LoaderRow]:
    """Samples per second of each storage's dataset at each worker count (see the module docstring).

    Args:
        make_dataset: ``storage -> dataset``; called afresh for every measurement, since LMDB handles
            are opened in the process that reads them.
        storages: storage kinds to measure.
        batch: samples per batch.
        worker_counts: ``DataLoader`` worker counts.
        batches: the fewest batches timed (rounded up to whole rounds of the workers, at least two).
        collate_fn: the framework's collate function (``None``: PyTorch's default).
        progress: called with a line before each measurement.
    """
    rows = []
    for workers in worker_counts:
        first_round = max(workers, 1)
        timed = -(-max(batches, 2 * workers) // first_round) * first_round
        for storage in storages:
            if progress:
                progress(f'data pipeline: {storage}, {workers} workers, {timed} batches of {batch}')
            dataset = make_dataset(storage)
            sampler = RandomSampler(dataset, replacement=True, num_samples=(first_round + timed) * batch,
                                    generator=torch.Generator().manual_seed(0))
            loader = DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=workers, collate_fn=collate_fn,
                                drop_last=True)
            iterator = iter(loader)
            for _ in range(first_round):
                next(iterator)
            start = time.perf_counter()
            for _ in range(timed):
                next(iterator)
            seconds = time.perf_counter() - start
            del iterator  # stops the workers before the next measurement starts its own
            rows.append(LoaderRow(storage, workers, timed * batch / seconds, timed, seconds))
    return rows


def synthetic_batch(batch: int, lq_patch: int, scale: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth random LR patches in [0, 1] and their bicubic upscaling as HR: something a network can learn."""
    coarse = torch.rand(batch, 3, max(lq_patch // 4, 1), max(lq_patch // 4, 1),
                        generator=torch.Generator().manual_seed(seed))
    lq = F.interpolate(coarse, size=(lq_patch, lq_patch), mode='bilinear', align_corners=False)
    gt = F.interpolate(lq, scale_factor=scale, mode='bicubic', align_corners=False).clamp(0, 1)
    return lq, gt


class StepRunner:
    """One setting's training step: its own network (seeded weights), Adam, batch and gradient scaler."""

    def __init__(self, recipe: Recipe, setting: StepSetting, device: torch.device, scale: int) -> None:
        self.setting, self.scale, self.device = setting, scale, device
        torch.manual_seed(0)
        network = build_arch(recipe.network, **recipe.network_kwargs).to(device).train()
        memory_format = torch.channels_last if setting.channels_last else torch.contiguous_format
        network = network.to(memory_format=memory_format)
        self.parameters = list(network.parameters())
        self.forward = torch.compile(network) if setting.compile else network
        self.optimizer = torch.optim.Adam(self.parameters, lr=recipe.lr, betas=recipe.betas, eps=recipe.eps)
        self.grad_clip = recipe.grad_clip
        self.scaler = torch.amp.GradScaler(device.type) if setting.precision == 'fp16' else None
        self.multiscale = len(recipe.scales) > 1
        self.lq, self.gt = (t.to(device).contiguous(memory_format=memory_format)
                            for t in synthetic_batch(recipe.batch, recipe.lq_patch, scale))
        self.losses: list[float] = []
        self.seconds: list[float] = []

    def step(self) -> float:
        """One optimisation step, as ``LESRCNNModel.optimize_parameters`` takes it; returns its seconds."""
        start = synchronized_clock()
        self.optimizer.zero_grad(set_to_none=True)
        dtype = AUTOCAST_DTYPES.get(self.setting.precision)
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            output = self.forward(self.lq, scale=self.scale) if self.multiscale else self.forward(self.lq)
            loss = F.mse_loss(output, self.gt)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.parameters, self.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.losses.append(float(loss.detach()))  # reads the loss back, as the frameworks' logging does
        seconds = synchronized_clock() - start
        self.seconds.append(seconds)
        return seconds


def _probe_ratio(recipe: Recipe, setting: StepSetting, device: torch.device, scale: int) -> float:
    """How many times fp32's time a step of ``setting`` takes on one 16x16 LR patch.

    Tells a setting that would take minutes at full size (fp16 on CPU: about 100 times fp32) in a few
    seconds; smaller patches would time the overheads of autocast rather than the convolutions. The
    two settings alternate and the fastest of their steps are compared, so that a background load
    does not make a slow setting look fast.
    """
    small = dataclasses.replace(recipe, batch=1, lq_patch=16)
    candidate, reference = StepRunner(small, setting, device, scale), StepRunner(small, StepSetting(), device, scale)
    for _ in range(3):
        candidate.step()
        reference.step()
    return min(candidate.seconds[1:]) / min(reference.seconds[1:])


def measure_steps(recipe: Recipe, settings: Sequence[StepSetting], device: str | torch.device, rounds: int = 3,
                  warmup: int = 2, slow_factor: float = 5.0,
                  progress: Callable[[str], None] | None = None) -> tuple[list[StepRow], list[Skipped]]:
    """Time the training step under every setting at every scale of the recipe (module docstring).

    On CPU each setting first runs on one small patch beside fp32 (``_probe_ratio``); one taking more
    than ``slow_factor`` times fp32's is skipped before it runs at full size.

    Returns:
        The rows of the settings timed, and the settings skipped with the reason.
    """
    device = torch.device(device)
    runners: dict[tuple[StepSetting, int], StepRunner] = {}
    skipped: list[Skipped] = []
    for scale in recipe.scales:
        for setting in settings:
            if progress:
                progress(f'training step: {setting.label}, x{scale}: warm-up')
            try:
                if device.type == 'cpu' and setting != StepSetting():
                    ratio = _probe_ratio(recipe, setting, device, scale)
                    if ratio > slow_factor:
                        skipped.append(Skipped(device.type, setting.label, f'too slow on this CPU: a step takes '
                                               f'{ratio:.0f} times as long as in fp32'))
                        continue
                runner = StepRunner(recipe, setting, device, scale)
                for _ in range(max(warmup, 1)):
                    runner.step()
            except Exception as exc:  # whatever the backend raises: the setting is reported, the run goes on
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else ''
                skipped.append(Skipped(device.type, setting.label, f'not supported here: {type(exc).__name__}'
                                       + (f': {message}' if message else '')))
                continue
            runners[setting, scale] = runner
    for round_index in range(rounds):
        if progress:
            progress(f'training step: round {round_index + 1} of {rounds}')
        order = list(runners.values())
        for runner in order if round_index % 2 == 0 else reversed(order):
            runner.step()
    rows = []
    for (setting, scale), runner in runners.items():
        timing = Timing.from_samples(runner.seconds[-rounds:], 1)
        rows.append(StepRow(device.type, setting.label, scale, timing.median * 1e3, timing.p10 * 1e3,
                            timing.p90 * 1e3, runner.losses))
    return rows, skipped


def _loader_ms(recipe: Recipe, rows: Sequence[LoaderRow], storage: str) -> tuple[float, int]:
    """Milliseconds per batch of ``storage`` at the recipe's worker count (capped at the counts measured)."""
    measured = [row for row in rows if row.storage == storage]
    workers = min(recipe.workers, max(row.workers for row in measured))
    row = min(measured, key=lambda r: abs(r.workers - workers))
    return recipe.batch / row.samples_per_s * 1e3, row.workers


def project(recipe: Recipe, loader: Sequence[LoaderRow], steps: Sequence[StepRow],
            loops: Sequence[LoopRow]) -> tuple[list[Projection], list[str]]:
    """The recipe's wall time for each storage measured (the recipe's own first), with notes on the basis."""
    notes = []
    if not steps:
        return [], ['no training step was timed: nothing to project']
    # The recipe's own setting; else the same without compiling; else fp32; else what was timed.
    wanted = recipe.setting.label
    for label in (wanted, StepSetting(recipe.setting.precision, recipe.setting.channels_last).label, 'fp32',
                  steps[0].setting):
        measured = [row for row in steps if row.setting == label]
        if measured:
            break
    if measured[0].setting != wanted:
        notes.append(f'the recipe\'s step setting ({wanted}) was not timed; the projection uses {measured[0].setting}')
    step_ms = sum(row.ms_per_iter for row in measured) / len(measured)  # LESRCNN-S: scales drawn uniformly
    storages = sorted({row.storage for row in loader}, key=lambda s: (s != recipe.storage, s))
    if recipe.workers > max((row.workers for row in loader), default=0):
        notes.append(f'the recipe asks for {recipe.workers} loader workers; up to '
                     f'{max((row.workers for row in loader), default=0)} were measured, and the projection uses that')
    # Measured at another batch than the recipe's (--batch): every per-iteration time is scaled by the ratio
    # of the batches, which assumes time grows with the samples; the basis and a note say so.
    factor = recipe.batch_of_recipe / recipe.batch
    if factor != 1:
        notes.append(f'measured at batch {recipe.batch}; the projection is scaled to the recipe\'s batch '
                     f'{recipe.batch_of_recipe} (x{factor:g}, time taken as proportional to the samples: an estimate, '
                     'not a measurement)')
    projections = []
    for storage in storages:
        loader_ms, workers = _loader_ms(recipe, loader, storage)
        loop = next((row for row in loops if row.storage == storage), None)
        if loop is not None:
            timed = loop.iters - loop.warmup
            ms, basis = loop.ms_per_iter, f'the real training loop ({timed} iteration{"s" * (timed != 1)} timed)'
        else:
            ms = step_ms + loader_ms if workers == 0 else max(step_ms, loader_ms)
            basis = 'the step and data pipeline measured alone'
        if factor != 1:
            basis += f', scaled from batch {recipe.batch} to {recipe.batch_of_recipe}'
        projections.append(Projection(storage, recipe.total_iter, recipe.total_iter * ms * factor / 3.6e6,
                                      'data' if loader_ms > step_ms else 'step', ms * factor, basis,
                                      measured[0].setting, step_ms * factor, loader_ms * factor, workers))
    return projections, notes


__all__ = ['AUTOCAST_DTYPES', 'PRECISIONS', 'LoaderRow', 'LoopRow', 'Projection', 'Recipe', 'Skipped', 'StepRow',
           'StepRunner', 'StepSetting', 'measure_loader', 'measure_steps', 'project', 'step_settings',
           'synthetic_batch']
