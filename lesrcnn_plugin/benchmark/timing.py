"""Runtime of SR networks that cannot be fooled: synchronised, warmed up, interleaved.

How a measurement is taken (``measure_runtime``):

* Every setting (reference path, or the LESRCNN family's fast path; dtype, memory format,
  ``torch.compile``, thread count) gets its own copy of the network and its own input, is warmed up
  (``warmup`` calls, which also compile), and is then timed with the clock of ``torch.utils.benchmark``,
  which synchronises the accelerator whenever it is read. A block holds as many calls as make it last
  ``min_block_seconds`` (one call for a CPU forward pass).
* Settings are **interleaved**: each of the ``repeats`` rounds times one block of every setting, in
  alternating order, so that a background load or clock drift affects all settings alike: speed-ups
  are taken "in the same run".
* Reported: median time per image batch with the 10th and 90th percentiles over the rounds, images/s,
  output megapixels/s, peak memory of one forward pass (CUDA: ``max_memory_allocated`` above the
  memory held before the call; CPU: the peak of PyTorch's tensor allocations recorded by the
  profiler, the weights and the input excluded, not available for compiled code), and for every
  setting but the fp32 NCHW reference the maximum absolute difference of its output from that
  reference's output.
* Roofline: one 64->64 3x3 convolution on a 1x64x256x256 map, timed in the same rounds for each dtype,
  memory format and thread count in use, through PyTorch's and (CPU, fp32) oneDNN's convolution as the
  fast path calls it; the faster of the two is this machine's roofline (``report.roofline_rate``).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import sys
import time
import timeit
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.benchmark.utils.timer import timer as synchronized_clock

from ..archs import LESRCNNBody
from ..archs.fast import FastLESRCNN, fused_kernels_available
from ..complexity import InputSize, count_complexity
from ..errors import ConfigError
from ..inference import resolve_device
from .load import flag, spread

#: ``fp32`` is strict float32 (TF32 disabled); ``tf32`` stores float32 but lets CUDA convolutions and
#: matrix products use TF32 tensor cores (PyTorch's default for cuDNN convolutions; no effect on CPU).
DTYPES = {'fp32': torch.float32, 'tf32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}
MEMORY_FORMATS = {'nchw': torch.contiguous_format, 'channels_last': torch.channels_last}
PATHS = ('reference', 'fast')

#: The roofline probe: one 64->64 3x3 convolution on a 256x256 map, batch of one.
ROOFLINE_SHAPE = (1, 64, 256, 256)
ROOFLINE_MACS = 64 * 64 * 3 * 3 * 256 * 256


@dataclasses.dataclass(frozen=True)
class Setting:
    """One way of running the network.

    Attributes:
        path: ``'reference'`` (the network as the authors compute it) or ``'fast'`` (``FastLESRCNN``);
            ``'conv'`` for a roofline probe.
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

    @property
    def spread(self) -> float:
        """(p90 - p10) / median; above ``load.SPREAD_LIMIT`` the timing is flagged as unstable."""
        return spread(self.p10, self.median, self.p90)

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
            'p90_ms': self.timing.p90 * 1e3, 'spread': self.timing.spread, 'unstable': bool(flag(self.timing.spread)),
            'rounds': self.timing.rounds,
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
            raise ConfigError(f'unknown path, dtype or memory format in {setting.label!r}; paths {PATHS}, '
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


@contextlib.contextmanager
def tf32_mode(allowed: bool):
    """Allow or forbid TF32 in CUDA convolutions and matrix products for the duration of a call."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def build_runner(model: nn.Module, setting: Setting, device: torch.device,
                 scale: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The callable ``x -> output`` for one setting (its own copy of the weights)."""
    if setting.path == 'fast' and not isinstance(model, LESRCNNBody):
        raise ConfigError('the fast path exists for the LESRCNN family only; time other networks on the reference path')
    network = FastLESRCNN(model) if setting.path == 'fast' else copy.deepcopy(model)
    network = network.to(device=device, dtype=DTYPES[setting.dtype]).eval()
    network = network.to(memory_format=MEMORY_FORMATS[setting.memory_format])

    def upscale(x: torch.Tensor) -> torch.Tensor:
        return network(x, scale=scale)
    runner = torch.compile(upscale) if setting.compile else upscale

    def call(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), tf32_mode(setting.dtype == 'tf32'):
            return runner(x)
    return call


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
class _TimedCall:
    """A callable timed in the interleaved rounds: a network setting, or a roofline probe (``probe`` set)."""
    setting: Setting
    fn: Callable[[], object]
    probe: str | None = None
    timer: timeit.Timer | None = None
    calls_per_block: int = 1
    samples: list[float] = dataclasses.field(default_factory=list)

    @property
    def timing(self) -> Timing:
        return Timing.from_samples(self.samples, self.calls_per_block)


def _prepare(call: _TimedCall, device: torch.device, warmup: int, min_block_seconds: float) -> None:
    def warm() -> float:
        for _ in range(max(warmup, 1)):
            call.fn()
        _synchronize(device)
        start = time.perf_counter()
        call.fn()
        _synchronize(device)
        return time.perf_counter() - start
    one_call = _with_threads(call.setting.threads, warm)
    call.calls_per_block = max(1, int(min_block_seconds / max(one_call, 1e-9)))
    # torch.utils.benchmark's clock synchronises the accelerator when it reads the time. Its Timer is
    # not used directly because Timer.timeit runs two untimed calls before every timed block, which
    # would triple the cost of each interleaved round.
    call.timer = timeit.Timer(stmt=call.fn, timer=synchronized_clock)


def _run_rounds(calls: Sequence[_TimedCall], repeats: int, progress: Callable[[], object] | None) -> None:
    for round_index in range(repeats):
        order = calls if round_index % 2 == 0 else list(reversed(calls))
        for call in order:
            seconds = _with_threads(call.setting.threads, lambda: call.timer.timeit(call.calls_per_block))
            call.samples.append(seconds / call.calls_per_block)
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


def _roofline_calls(settings: Sequence[Setting], device: torch.device) -> list[_TimedCall]:
    """One probe per dtype, memory format and thread count in use, through each convolution available."""
    calls = []
    for combo in dict.fromkeys(dataclasses.replace(s, path='conv', compile=False) for s in settings):
        probes = ['torch'] + (['onednn'] if device.type == 'cpu' and combo.dtype == 'fp32'
                              and fused_kernels_available() else [])
        calls += [_TimedCall(combo, _roofline_fn(combo, device, probe), probe) for probe in probes]
    return calls


def executed_macs(model: nn.Module, size: InputSize, scale: int, batch: int) -> dict[str, int]:
    """MACs each path executes: the fast path runs the RB upsampler once instead of twice."""
    report = count_complexity(model, size, scale=scale)
    reference = report.total.macs
    if not isinstance(model, LESRCNNBody):
        return {'reference': reference * batch}
    rb = next(block for block in report.blocks if block.name == 'RB').macs
    fast = reference - rb // 2 if model.reconstruction.fuse_shallow else reference
    return {'reference': reference * batch, 'fast': fast * batch}


def measure_runtime(model: nn.Module, sizes: Sequence[InputSize], settings: Sequence[Setting],
                    device: str | torch.device = 'cpu', scale: int | None = None, batch: int = 1, warmup: int = 3,
                    repeats: int = 10, min_block_seconds: float = 0.02, roofline: bool = True,
                    progress: bool = True) -> list[Row]:
    """Time every setting at every size, interleaved; see the module docstring for the method.

    Args:
        model: Any network with the calling contract (``networks``), weights as they should be timed; copied.
        sizes: Input sizes (``complexity.input_size``).
        settings: From ``settings_grid``; must include the fp32 NCHW eager reference.
        device: ``'cpu'`` or ``'cuda'``.
        scale: Scale to run (multi-scale networks); ``model.default_scale`` by default.
        batch: Images per call.
        warmup: Untimed calls before timing (the first also compiles).
        repeats: Timed rounds per setting.
        min_block_seconds: Shortest timed block; fast calls are repeated within a block to reach it.
        roofline: Also time the roofline convolution.
        progress: Show a progress bar.
    """
    device = resolve_device(device)
    if not any(s.is_reference for s in settings):
        raise ConfigError('the settings must include the fp32 NCHW eager reference')
    if device.type == 'cuda':
        settings = list(dict.fromkeys(dataclasses.replace(s, threads=None) for s in settings))
    scale = model.default_scale if scale is None else scale
    model = copy.deepcopy(model).eval()
    rows: list[Row] = []
    bar = _progress_bar(len(sizes) * repeats, progress)
    runners = {setting: build_runner(model, setting, device, scale) for setting in settings}
    for size in sizes:
        macs = executed_macs(model, size, scale, batch)
        inputs = {s: make_input(size, batch, s, device) for s in settings}
        networks = [_TimedCall(s, lambda s=s: runners[s](inputs[s])) for s in settings]
        probes = _roofline_calls(settings, device) if roofline else []
        for call in networks + probes:
            _prepare(call, device, warmup, min_block_seconds)
        _run_rounds(networks + probes, repeats, bar.update if bar else None)
        outputs = {call.setting: _with_threads(call.setting.threads, call.fn).float().contiguous().cpu()
                   for call in networks}
        for call in networks:
            setting = call.setting
            # Each thread count has its own reference; CUDA runs have a single one.
            reference = outputs.get(Setting('reference', threads=setting.threads),
                                    outputs[next(s for s in settings if s.is_reference)])
            rows.append(Row('net', setting, size.label, size.lr, size.hr, batch, call.timing, macs[setting.path],
                            peak_memory_mb=None if setting.compile and device.type == 'cpu'  # see peak_memory_mb
                            else _with_threads(setting.threads, lambda: peak_memory_mb(call.fn, device)),
                            max_abs_diff=None if setting.is_reference
                            else float((outputs[setting] - reference).abs().max())))
        rows += [Row('roofline', call.setting, size.label, ROOFLINE_SHAPE[2:], ROOFLINE_SHAPE[2:], 1, call.timing,
                     ROOFLINE_MACS, probe=call.probe) for call in probes]
    if bar:
        bar.close()
    return rows


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc='timing rounds', unit='round')
