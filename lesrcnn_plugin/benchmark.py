"""Runtime of LESRCNN-family networks that cannot be fooled: synchronised, warmed up, interleaved.

How a measurement is taken (``measure_runtime``):

* Every setting (reference or fast path, dtype, memory format, ``torch.compile``, thread count) gets
  its own copy of the network and its own input, is warmed up (``warmup`` calls, which also runs the
  compilation), and is then timed with ``torch.utils.benchmark.Timer``, which synchronises the
  accelerator around every timed block. A block holds as many calls as make it last
  ``min_block_seconds`` (one call for a CPU forward pass).
* Settings are **interleaved**: each of the ``repeats`` rounds times one block of every setting, in
  alternating order, so that a background load or clock drift affects all settings alike. The
  speed-ups are therefore taken "in the same run".
* Reported: median time per image batch with the 10th and 90th percentiles over the rounds, images/s,
  output megapixels/s, peak memory of one forward pass (CUDA: ``max_memory_allocated`` above the
  memory held before the call; CPU: the peak of PyTorch's tensor allocations recorded by the
  profiler, the weights and the input excluded, not available for compiled code), and for every
  setting but the fp32 NCHW reference the maximum absolute difference of its output from that
  reference's output.
* Roofline: one 64->64 3x3 convolution on a 1x64x256x256 map, timed in the same rounds, for each
  dtype, memory format and thread count in use, both through PyTorch's convolution and (CPU, fp32)
  through oneDNN's convolution as the fast path calls it; the faster of the two is this machine's
  roofline. A network setting's roofline fraction is its rate of executed MACs (the fast path runs
  one upsampler pass fewer) divided by the roofline convolution's rate.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import platform
import sys
import time
import timeit
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.benchmark.utils.timer import timer as synchronized_clock

from .archs import LESRCNNBody
from .archs.fast import FastLESRCNN, fused_kernels_available
from .complexity import InputSize, count_complexity, default_scale
from .fileio import atomic_path

#: ``fp32`` is strict float32 (TF32 disabled); ``tf32`` stores float32 but lets CUDA convolutions and
#: matrix products use TF32 tensor cores (PyTorch's default for cuDNN convolutions; no effect on CPU).
DTYPES = {'fp32': torch.float32, 'tf32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}
MEMORY_FORMATS = {'nchw': torch.contiguous_format, 'channels_last': torch.channels_last}
PATHS = ('reference', 'fast')

#: The roofline probe: one 64->64 3x3 convolution on a 256x256 map, batch of one.
ROOFLINE_SHAPE = (1, 64, 256, 256)
ROOFLINE_MACS = 64 * 64 * 3 * 3 * 256 * 256

#: Targets of the issue for the fast path, CPU, fp32, x2, 256x256 LR input.
TARGETS = {'fast nchw vs reference nchw': 1.25, 'fast channels_last vs reference nchw': 1.8,
           'roofline fraction': 0.75}


@dataclasses.dataclass(frozen=True)
class Setting:
    """One way of running the network.

    Attributes:
        path: ``'reference'`` (the network as the authors compute it) or ``'fast'`` (``FastLESRCNN``).
        dtype: ``'fp32'``, ``'tf32'``, ``'fp16'`` or ``'bf16'`` (weights and input; see ``DTYPES``).
        memory_format: ``'nchw'`` or ``'channels_last'`` (weights and input).
        compile: Run through ``torch.compile``.
        threads: CPU threads (``None``: PyTorch's default; ignored on CUDA).
    """
    path: str
    dtype: str = 'fp32'
    memory_format: str = 'nchw'
    compile: bool = False
    threads: int | None = None

    @property
    def is_reference(self) -> bool:
        """The fp32 NCHW eager reference, against which outputs are compared."""
        return self.path == 'reference' and self.dtype == 'fp32' and self.memory_format == 'nchw' and not self.compile

    @property
    def label(self) -> str:
        parts = [self.path, self.dtype, self.memory_format] + (['compiled'] if self.compile else [])
        return ' '.join(parts) + (f' {self.threads}t' if self.threads else '')


@dataclasses.dataclass
class Timing:
    """Seconds per call: median and 10th/90th percentiles over ``rounds`` blocks of ``calls_per_block``."""
    median: float
    p10: float
    p90: float
    rounds: int
    calls_per_block: int

    @classmethod
    def from_samples(cls, samples: Sequence[float], calls_per_block: int) -> Timing:
        p10, median, p90 = np.percentile(np.asarray(samples), [10, 50, 90])
        return cls(float(median), float(p10), float(p90), len(samples), calls_per_block)


@dataclasses.dataclass
class Row:
    """One measured setting at one size (or one roofline probe: ``kind == 'roofline'``)."""
    kind: str
    setting: Setting
    size: str
    lr: tuple[int, int]
    hr: tuple[int, int]
    batch: int
    timing: Timing
    macs: int
    peak_memory_mb: float | None = None
    max_abs_diff: float | None = None
    probe: str | None = None

    @property
    def images_per_s(self) -> float:
        return self.batch / self.timing.median

    @property
    def megapixels_per_s(self) -> float:
        return self.batch * self.hr[0] * self.hr[1] / 1e6 / self.timing.median

    @property
    def gmacs_per_s(self) -> float:
        return self.macs / self.timing.median / 1e9

    def to_dict(self) -> dict:
        return {
            'kind': self.kind, **dataclasses.asdict(self.setting), 'label': self.setting.label, 'probe': self.probe,
            'size': self.size, 'lr_h': self.lr[0], 'lr_w': self.lr[1], 'hr_h': self.hr[0], 'hr_w': self.hr[1],
            'batch': self.batch, 'median_ms': self.timing.median * 1e3, 'p10_ms': self.timing.p10 * 1e3,
            'p90_ms': self.timing.p90 * 1e3, 'rounds': self.timing.rounds,
            'calls_per_block': self.timing.calls_per_block, 'images_per_s': self.images_per_s,
            'megapixels_per_s': self.megapixels_per_s, 'macs': self.macs, 'gmacs_per_s': self.gmacs_per_s,
            'peak_memory_mb': self.peak_memory_mb, 'max_abs_diff': self.max_abs_diff}


def settings_grid(paths: Iterable[str] = PATHS, dtypes: Iterable[str] = ('fp32',),
                  memory_formats: Iterable[str] = ('nchw', 'channels_last'), compile_modes: Iterable[bool] = (False,),
                  threads: Iterable[int | None] = (None,)) -> list[Setting]:
    """Every combination, plus the fp32 NCHW eager reference for each thread count (always measured)."""
    settings = [Setting(path, dtype, fmt, compiled, n) for n in threads for path in paths for dtype in dtypes
                for fmt in memory_formats for compiled in compile_modes]
    for n in threads:
        if Setting('reference', threads=n) not in settings:
            settings.insert(0, Setting('reference', threads=n))
    for setting in settings:
        if setting.path not in PATHS or setting.dtype not in DTYPES or setting.memory_format not in MEMORY_FORMATS:
            raise ValueError(f'unknown path, dtype or memory format in {setting.label!r}; paths {PATHS}, '
                             f'dtypes {tuple(DTYPES)}, memory formats {tuple(MEMORY_FORMATS)}')
    return list(dict.fromkeys(settings))


def _with_threads(threads: int | None, fn: Callable[[], object]) -> object:
    if threads is None:
        return fn()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn()
    finally:
        torch.set_num_threads(previous)


def _synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def build_runner(model: LESRCNNBody, setting: Setting, device: torch.device, scale: int) -> Callable:
    """The callable ``x -> output`` for one setting (its own copy of the weights)."""
    module = FastLESRCNN(model) if setting.path == 'fast' else copy.deepcopy(model)
    module = module.to(device=device, dtype=DTYPES[setting.dtype]).eval()
    module = module.to(memory_format=MEMORY_FORMATS[setting.memory_format])
    target = module.forward_scale if setting.path == 'reference' else module.forward

    def run(x: torch.Tensor) -> torch.Tensor:
        return target(x, scale)
    runner = torch.compile(run) if setting.compile else run

    def call(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), tf32_mode(setting.dtype == 'tf32'):
            return runner(x)
    return call


@contextlib.contextmanager
def tf32_mode(allowed: bool):
    """Allow or forbid TF32 in CUDA convolutions and matrix products for the duration of a call."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def make_input(size: InputSize, batch: int, setting: Setting, device: torch.device, seed: int = 0) -> torch.Tensor:
    """The same image for every setting (seeded), in the setting's dtype and memory format."""
    image = torch.rand(batch, 3, *size.lr, generator=torch.Generator().manual_seed(seed))
    return image.to(device=device, dtype=DTYPES[setting.dtype]).contiguous(
        memory_format=MEMORY_FORMATS[setting.memory_format])


def peak_memory_mb(fn: Callable[[], object], device: torch.device) -> float | None:
    """Peak memory PyTorch allocates while ``fn`` runs, above what was allocated before (MiB).

    On CPU the profiler's allocation records are used; they miss the buffers of ``torch.compile``d
    code, so compiled CPU settings are reported without a peak.
    """
    if device.type == 'cuda':
        _synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        _synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    if device.type != 'cpu':
        return None
    from torch.profiler import ProfilerActivity, profile
    with _native_stderr_silenced(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        fn()
    changes = sorted((event.time_range.start, event.self_cpu_memory_usage)
                     for event in profiler.events() if event.self_cpu_memory_usage)
    peak = held = 0
    for _, change in changes:
        held += change
        peak = max(peak, held)
    return peak / 2**20


@contextlib.contextmanager
def _native_stderr_silenced():
    """Send file descriptor 2 to /dev/null: the profiler's C++ side logs every start and stop there."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, 'w') as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@dataclasses.dataclass
class _Job:
    """A callable timed in the interleaved rounds, and what its row needs."""
    key: tuple
    fn: Callable[[], object]
    threads: int | None
    timer: timeit.Timer | None = None
    calls_per_block: int = 1
    samples: list[float] = dataclasses.field(default_factory=list)


def _prepare(job: _Job, device: torch.device, warmup: int, min_block_seconds: float) -> None:
    def warm() -> float:
        for _ in range(max(warmup, 1)):
            job.fn()
        _synchronize(device)
        start = time.perf_counter()
        job.fn()
        _synchronize(device)
        return time.perf_counter() - start
    one_call = _with_threads(job.threads, warm)
    job.calls_per_block = max(1, int(min_block_seconds / max(one_call, 1e-9)))
    # torch.utils.benchmark's clock synchronises the accelerator when it reads the time. Its Timer is
    # not used directly because Timer.timeit runs two untimed calls before every timed block, which
    # would triple the cost of each interleaved round.
    job.timer = timeit.Timer(stmt=job.fn, timer=synchronized_clock)


def _run_rounds(jobs: Sequence[_Job], repeats: int, progress: Callable | None) -> None:
    for round_index in range(repeats):
        order = jobs if round_index % 2 == 0 else list(reversed(jobs))
        for job in order:
            seconds = _with_threads(job.threads, lambda: job.timer.timeit(job.calls_per_block))
            job.samples.append(seconds / job.calls_per_block)
        if progress:
            progress()


def _roofline_fn(setting: Setting, device: torch.device, probe: str) -> Callable[[], torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    fmt, dtype = MEMORY_FORMATS[setting.memory_format], DTYPES[setting.dtype]
    x = torch.rand(ROOFLINE_SHAPE, generator=generator).to(device, dtype).contiguous(memory_format=fmt)
    weight = (torch.randn(64, 64, 3, 3, generator=generator) * 0.05).to(device, dtype).contiguous(memory_format=fmt)
    if probe == 'onednn':
        def conv() -> torch.Tensor:
            return torch.ops.mkldnn._convolution_pointwise(x, weight, None, [1, 1], [1, 1], [1, 1], 1, 'none', [], '')
    else:
        def conv() -> torch.Tensor:
            return F.conv2d(x, weight, padding=1)

    def call() -> torch.Tensor:
        with torch.inference_mode(), tf32_mode(setting.dtype == 'tf32'):
            return conv()
    return call


def executed_macs(model: LESRCNNBody, size: InputSize, scale: int, batch: int) -> dict[str, int]:
    """MACs each path executes: the fast path runs the RB upsampler once instead of twice."""
    report = count_complexity(model, size, scale=scale)
    reference = report.total.macs
    rb = next(block for block in report.blocks if block.name == 'RB').macs
    fast = reference - rb // 2 if model.reconstruction.fuse_shallow else reference
    return {'reference': reference * batch, 'fast': fast * batch}


def measure_runtime(model: LESRCNNBody, sizes: Sequence[InputSize], settings: Sequence[Setting],
                    device: str | torch.device = 'cpu', scale: int | None = None, batch: int = 1, warmup: int = 3,
                    repeats: int = 10, min_block_seconds: float = 0.02, roofline: bool = True,
                    progress: bool = True) -> list[Row]:
    """Time every setting at every size, interleaved; see the module docstring for the method.

    Args:
        model: The reference network (weights as they should be timed; it is copied, not modified).
        sizes: Input sizes (``complexity.input_size``).
        settings: From ``settings_grid``; must include the fp32 NCHW eager reference.
        device: ``'cpu'`` or ``'cuda'``.
        scale: Scale to run (multi-scale networks); the model's own by default.
        batch: Images per call.
        warmup: Untimed calls before timing (the first also compiles).
        repeats: Timed rounds per setting.
        min_block_seconds: Shortest timed block; fast calls are repeated within a block to reach it.
        roofline: Also time the roofline convolution.
        progress: Show a progress bar.
    """
    device = torch.device(device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError('CUDA was asked for but torch.cuda.is_available() is False')
    if not any(s.is_reference for s in settings):
        raise ValueError('the settings must include the fp32 NCHW eager reference')
    if device.type == 'cuda':
        settings = list(dict.fromkeys(dataclasses.replace(s, threads=None) for s in settings))
    scale = default_scale(model) if scale is None else scale
    model = copy.deepcopy(model).eval()
    rows: list[Row] = []
    bar = _progress_bar(len(sizes) * repeats, progress)
    runners = {setting: build_runner(model, setting, device, scale) for setting in settings}
    for size in sizes:
        macs = executed_macs(model, size, scale, batch)
        inputs = {s: make_input(size, batch, s, device) for s in settings}
        jobs = [_Job(('net', s), lambda s=s: runners[s](inputs[s]), s.threads) for s in settings]
        if roofline:
            for combo in dict.fromkeys(dataclasses.replace(s, path='conv', compile=False) for s in settings):
                probes = ['torch'] + (['onednn'] if device.type == 'cpu' and combo.dtype == 'fp32'
                                      and fused_kernels_available() else [])
                jobs += [_Job(('roofline', combo, probe), _roofline_fn(combo, device, probe), combo.threads)
                         for probe in probes]
        for job in jobs:
            _prepare(job, device, warmup, min_block_seconds)
        _run_rounds(jobs, repeats, bar.update if bar else None)
        net_jobs = [job for job in jobs if job.key[0] == 'net']
        outputs = {job.key[1]: _with_threads(job.threads, job.fn).float().contiguous().cpu() for job in net_jobs}
        for job in net_jobs:
            setting = job.key[1]
            # Each thread count has its own reference; CUDA runs have a single one.
            reference = outputs.get(Setting('reference', threads=setting.threads),
                                    outputs[next(s for s in settings if s.is_reference)])
            rows.append(Row('net', setting, size.label, size.lr, size.hr, batch,
                            Timing.from_samples(job.samples, job.calls_per_block), macs[setting.path],
                            peak_memory_mb=None if setting.compile and device.type == 'cpu'  # see peak_memory_mb
                            else _with_threads(setting.threads, lambda: peak_memory_mb(job.fn, device)),
                            max_abs_diff=None if setting.is_reference
                            else float((outputs[setting] - reference).abs().max())))
        for job in jobs:
            if job.key[0] == 'roofline':
                _, combo, probe = job.key
                rows.append(Row('roofline', combo, size.label, ROOFLINE_SHAPE[2:], ROOFLINE_SHAPE[2:], 1,
                                Timing.from_samples(job.samples, job.calls_per_block), ROOFLINE_MACS, probe=probe))
    if bar:
        bar.close()
    return rows


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc='timing rounds', unit='round')


def _same_run(row: Row, other: Row) -> bool:
    return row.size == other.size and row.setting.threads == other.setting.threads


def roofline_rate(rows: Sequence[Row], row: Row) -> float | None:
    """The fastest roofline probe's MAC/s for ``row``'s dtype, memory format and threads (None if not timed)."""
    rates = [r.gmacs_per_s for r in rows if r.kind == 'roofline' and r.size == row.size
             and (r.setting.dtype, r.setting.memory_format, r.setting.threads)
             == (row.setting.dtype, row.setting.memory_format, row.setting.threads)]
    return max(rates) if rates else None


def comparisons(rows: Sequence[Row], scale: int, device: str) -> list[dict]:
    """Reference-vs-fast speed-ups and roofline fractions, with the issue's targets where they apply.

    The targets apply to CPU, fp32, x2, a 256x256 LR input; elsewhere the figures are shown without a verdict.
    """
    result = []
    nets = [r for r in rows if r.kind == 'net' and r.setting.dtype == 'fp32' and not r.setting.compile]
    for ref in (r for r in nets if r.setting.is_reference):
        def find(path: str, fmt: str) -> Row | None:
            return next((r for r in nets if _same_run(r, ref) and r.setting.path == path
                         and r.setting.memory_format == fmt), None)
        targeted = device == 'cpu' and scale == 2 and ref.lr == (256, 256)
        pairs = [('fast nchw vs reference nchw', find('fast', 'nchw'), ref),
                 ('fast channels_last vs reference nchw', find('fast', 'channels_last'), ref),
                 ('fast channels_last vs reference channels_last', find('fast', 'channels_last'),
                  find('reference', 'channels_last'))]
        for name, fast, base in pairs:
            if fast is None or base is None:
                continue
            value = base.timing.median / fast.timing.median
            result.append(_comparison(name, ref, value, fast.max_abs_diff, TARGETS.get(name) if targeted else None))
        for fast in (find('fast', 'nchw'), find('fast', 'channels_last')):
            rate = roofline_rate(rows, fast) if fast else None
            if rate:
                name = f'roofline fraction, fast {fast.setting.memory_format}'
                result.append(_comparison(name, ref, fast.gmacs_per_s / rate, fast.max_abs_diff,
                                          TARGETS['roofline fraction'] if targeted else None))
    return result


def _comparison(name: str, ref: Row, value: float, max_abs_diff: float | None, target: float | None) -> dict:
    return {'comparison': name, 'size': ref.size, 'threads': ref.setting.threads, 'value': value,
            'max_abs_diff': max_abs_diff, 'target': target,
            'met': None if target is None else bool(value >= target and (max_abs_diff or 0.0) <= 1e-5)}


def environment(device: str) -> dict:
    """What a reader needs to compare timings: software, hardware, load."""
    info = {'torch': torch.__version__, 'python': platform.python_version(), 'device': device,
            'cpu': _cpu_model(), 'cpu_count': os.cpu_count(), 'torch_threads': torch.get_num_threads(),
            'onednn_fused_kernels': fused_kernels_available(),
            'load_average': os.getloadavg() if hasattr(os, 'getloadavg') else None,
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


def format_markdown(rows: Sequence[Row], compared: Sequence[Mapping], env: Mapping, title: str) -> str:
    """Tables of the rows, the roofline probes and the reference-vs-fast comparison."""
    where = env.get('gpu') or env.get('cpu')
    lines = [f'### {title}', '',
             f'{where}; torch {env["torch"]}; {env["torch_threads"]} threads by default; '
             f'load average before the run {_load(env)}; {env["date"]}.', '',
             '| setting | size | LR -> HR | median ms | p10 ms | p90 ms | img/s | MP/s | GMAC/s | peak MiB '
             '| max abs diff |',
             '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |']
    for row in (r for r in rows if r.kind == 'net'):
        diff = 'reference' if row.max_abs_diff is None else f'{row.max_abs_diff:.2e}'
        memory = '-' if row.peak_memory_mb is None else f'{row.peak_memory_mb:.0f}'
        lines.append(f'| {row.setting.label} | {row.size} | {_hw(row.lr)} -> {_hw(row.hr)} | '
                     f'{row.timing.median * 1e3:.1f} | {row.timing.p10 * 1e3:.1f} | {row.timing.p90 * 1e3:.1f} | '
                     f'{row.images_per_s:.2f} | {row.megapixels_per_s:.2f} | {row.gmacs_per_s:.1f} | '
                     f'{memory} | {diff} |')
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
                  '| comparison | size | value | max abs diff | target | met |',
                  '| --- | --- | ---: | ---: | ---: | --- |']
        for item in compared:
            diff = '-' if item['max_abs_diff'] is None else f'{item["max_abs_diff"]:.1e}'
            target = '-' if item['target'] is None else f'{item["target"]:.2f}'
            met = '-' if item['met'] is None else ('yes' if item['met'] else 'NO')
            lines.append(f'| {item["comparison"]} | {item["size"]} | {item["value"]:.2f} | {diff} | {target} | {met} |')
    return '\n'.join(lines) + '\n'


def _hw(size: Sequence[int]) -> str:
    return f'{size[0]}x{size[1]}'


def _load(env: Mapping) -> str:
    load = env.get('load_average')
    return '-' if not load else ' / '.join(f'{value:.2f}' for value in load)


def plot_runtime(rows: Sequence[Row], path: str, title: str) -> None:
    """Median runtime (p10-p90 bars) against output megapixels, one line per setting; PNG."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt
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
    _save_figure(figure, path)


#: Columns of a results file for the quality plots (CSV header, or keys of JSON objects).
RESULT_COLUMNS = ('name', 'params', 'macs', 'psnr')


def read_results(path: str) -> list[dict]:
    """Read a results file: CSV with columns ``name,params,macs,psnr`` (optional ``dataset``, ``scale``),
    or JSON, a list of objects with the same keys. ``params`` is a count, ``macs`` a count of
    multiply-accumulates (not FLOPs), ``psnr`` in dB."""
    import csv
    import json
    try:
        with open(path, encoding='utf-8') as handle:
            if path.lower().endswith('.json'):
                records = json.load(handle)
            else:
                records = list(csv.DictReader(handle))
    except OSError as exc:
        raise ValueError(f'{path}: cannot read ({exc.strerror})') from None
    except json.JSONDecodeError as exc:
        raise ValueError(f'{path}: not valid JSON ({exc})') from None
    if not isinstance(records, list) or not records:
        raise ValueError(f'{path}: expected a non-empty list of results')
    parsed = []
    for index, record in enumerate(records):
        missing = [key for key in RESULT_COLUMNS if key not in record]
        if missing:
            raise ValueError(f'{path}: result {index + 1} lacks {", ".join(missing)} '
                             f'(needs {", ".join(RESULT_COLUMNS)})')
        try:
            parsed.append({'name': str(record['name']), 'params': float(record['params']),
                           'macs': float(record['macs']), 'psnr': float(record['psnr']),
                           'group': ' '.join(filter(None, (str(record.get('dataset') or ''),
                                                           f'x{record["scale"]}' if record.get('scale') else '')))})
        except (TypeError, ValueError):
            raise ValueError(f'{path}: result {index + 1} has a non-numeric params, macs or psnr') from None
    return parsed


def plot_quality(results: Sequence[Mapping], path: str) -> None:
    """PSNR against parameters and against MACs, one point per result, labelled; PNG."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt
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
    _save_figure(figure, path)


def _save_figure(figure, path: str) -> None:
    from matplotlib import pyplot as plt
    try:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, dpi=120, format='png')
    finally:
        plt.close(figure)
