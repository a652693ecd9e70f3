"""Runtime as the NTIRE efficient-SR challenge measures it (``lesrcnn-measure-runtime --ntire``).

The challenge's ``test_demo.py`` (NTIRE 2024 and 2025 ESR) times every image of its validation set on
its own: the LR image is already on the GPU, then ``start.record()``, the forward pass, ``end.record()``,
``torch.cuda.synchronize()`` and ``start.elapsed_time(end)``; it reports the mean over the images in
milliseconds, with ``torch.backends.cudnn.benchmark = False``, a batch of one, fp32 and no tiling,
together with ``torch.cuda.max_memory_allocated``. The script has no explicit warm-up (its validation
set runs before its test set); here ``warmup`` untimed passes come first, so that one-off costs (CUDA
context, cuDNN plans, allocator growth) are not charged to the first image.

On a CPU there are no CUDA events: the same loop is timed with ``time.perf_counter`` around each forward
pass (wall clock), and labelled so.
"""
from __future__ import annotations

import copy
import dataclasses
import statistics
import time

import torch
from torch import nn

from ..complexity import InputSize
from .timing import resolve_device

CUDA_CLOCK = 'CUDA events (NTIRE ESR test_demo.py)'
CPU_CLOCK = 'wall clock, time.perf_counter (CPU equivalent of the NTIRE ESR convention)'


@dataclasses.dataclass
class NtireTiming:
    """Per-image times of one network at one size, and their mean (the challenge's figure).

    Attributes:
        clock: ``CUDA_CLOCK`` or ``CPU_CLOCK``.
        device: Where it ran (the GPU's name on CUDA).
        size: Input and output sizes.
        warmup: Untimed passes before the timed ones.
        per_image_ms: One time per image, in order.
        peak_memory_mb: ``torch.cuda.max_memory_allocated`` over the run (MiB); ``None`` on a CPU.
    """
    clock: str
    device: str
    size: InputSize
    warmup: int
    per_image_ms: list[float]
    peak_memory_mb: float | None = None

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.per_image_ms)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), 'images': len(self.per_image_ms), 'mean_ms': self.mean_ms}


def ntire_runtime(model: nn.Module, size: InputSize, scale: int | None = None, device: str | torch.device = 'cpu',
                  images: int = 10, warmup: int = 3, seed: int = 0) -> NtireTiming:
    """Time ``model`` image by image as the NTIRE ESR script does (see the module docstring).

    Args:
        model: Any network with the calling contract (copied, not modified).
        size: Input size; every image has it.
        scale: Scale to run; the network's own by default.
        device: ``'cpu'`` or ``'cuda[:N]'``.
        images: Timed images (distinct seeded random images, made on the device before timing).
        warmup: Untimed passes first.
        seed: Seed of the images.
    """
    device = resolve_device(device)
    network = copy.deepcopy(model).to(device).eval()
    generator = torch.Generator().manual_seed(seed)
    batch = [torch.rand(1, 3, *size.lr, generator=generator).to(device) for _ in range(images)]
    saved_benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False  # as the challenge script sets it
    try:
        with torch.no_grad():
            for _ in range(warmup):
                network(batch[0], scale=scale)
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
                torch.cuda.reset_peak_memory_stats(device)
                per_image = [_cuda_event_ms(network, x, scale) for x in batch]
                peak = torch.cuda.max_memory_allocated(device) / 2**20
                return NtireTiming(CUDA_CLOCK, torch.cuda.get_device_name(device), size, warmup, per_image, peak)
            per_image = [_wall_clock_ms(network, x, scale) for x in batch]
            return NtireTiming(CPU_CLOCK, 'cpu', size, warmup, per_image)
    finally:
        torch.backends.cudnn.benchmark = saved_benchmark


def _cuda_event_ms(network: nn.Module, x: torch.Tensor, scale: int | None) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    network(x, scale=scale)
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end)


def _wall_clock_ms(network: nn.Module, x: torch.Tensor, scale: int | None) -> float:
    start = time.perf_counter()
    network(x, scale=scale)
    return (time.perf_counter() - start) * 1e3


def format_ntire_markdown(timings: list[tuple[str, NtireTiming]]) -> str:
    """A table of (network, timing) pairs, with the clock and the method under it."""
    lines = ['| network | device | LR -> HR | images | warm-up | mean ms / image | min | max | peak MiB |',
             '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |']
    for name, timing in timings:
        size = timing.size
        peak = '' if timing.peak_memory_mb is None else f'{timing.peak_memory_mb:.1f}'
        lines.append(f'| {name} | {timing.device} | {size.lr[0]}x{size.lr[1]} -> {size.hr[0]}x{size.hr[1]} | '
                     f'{len(timing.per_image_ms)} | {timing.warmup} | {timing.mean_ms:.2f} | '
                     f'{min(timing.per_image_ms):.2f} | {max(timing.per_image_ms):.2f} | {peak} |')
    clocks = sorted({timing.clock for _, timing in timings})
    lines += ['', f'Clock: {"; ".join(clocks)}. Batch of one, fp32, cudnn.benchmark off, each image timed on '
                  'its own after the warm-up passes; the figure is the mean over the images.']
    return '\n'.join(lines) + '\n'


__all__ = ['CPU_CLOCK', 'CUDA_CLOCK', 'NtireTiming', 'format_ntire_markdown', 'ntire_runtime']
