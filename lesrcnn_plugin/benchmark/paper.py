"""The LESRCNN paper's runtime table (its Table 8) and the family timed at its sizes
(``lesrcnn-measure-runtime --preset paper-table8``).

What is known of the paper's protocol: the authors' repository titles Table 8 "Running time of different
methods on hr images of size 256x256, 512x512 and 1024x1024 for x2", and its test script
(``x2/tcw_sample.py``) times one image at a time, batch of one, fp32, as ``time.time()`` around moving
the LR image to the device and ``net(lr, scale)``, with autograd on, no warm-up and no CUDA
synchronisation. The GPU is not named in any text read for this package (the tables are images).

What the preset does: the x2 networks of the family, at those three output sizes, fp32, batch of one,
the reference path (the authors' computation), timed as every other runtime here (warm-up, inference
mode, synchronised clock, interleaved rounds, median with p10/p90). It differs from the paper in the
clock (synchronised: completed work, not kernel launches), the warm-up, autograd (off) and the input
copy (not timed), and in the hardware.
"""
from __future__ import annotations

import dataclasses

import torch

from ..complexity import input_size
from ..networks import resolve_network
from .interleaved import time_networks
from .load import format_spread
from .timing import Timing

#: Output sizes of the paper's Table 8 (square, x2).
SIZES = ('256', '512', '1024')
SCALE = 2
#: The family networks the preset times (the paper's Table 8 has LESRCNN only).
NETWORKS = ('LESRCNN', 'DualKernelLESRCNN', 'MultiScaleLESRCNN')
#: Table 8 as printed (seconds per image at 256 / 512 / 1024 outputs), from the issue that transcribed it.
TABLE8_SECONDS = {
    'VDSR': (0.0172, 0.0575, 0.2126),
    'MemNet': (0.8774, 3.605, 14.69),
    'CARN-M': (0.0159, 0.0199, 0.0320),
    'LESRCNN': (0.0102, 0.0129, 0.0222),
}
PROTOCOL = ('x2, fp32, batch of one, reference path, interleaved rounds of torch.utils.benchmark\'s synchronised '
            'clock after warm-up, inference mode; the paper: time.time() around the input copy and one forward '
            'pass, autograd on, no warm-up, no CUDA synchronisation, GPU not named')


@dataclasses.dataclass
class PaperTiming:
    """One family network at one of Table 8's sizes."""
    network: str
    size: str
    timing: Timing

    def to_dict(self) -> dict:
        return {'network': self.network, 'size': self.size, 'median_s': self.timing.median,
                'p10_s': self.timing.p10, 'p90_s': self.timing.p90, 'spread': self.timing.spread,
                'rounds': self.timing.rounds, 'paper_s': paper_seconds(self.network, self.size)}


def paper_seconds(network: str, size: str) -> float | None:
    """The paper's figure for ``network`` at ``size`` (``None`` where Table 8 has none)."""
    row = TABLE8_SECONDS.get(network)
    return row[SIZES.index(size)] if row else None


def time_paper_table8(device: str | torch.device = 'cpu', threads: int | None = 1, warmup: int = 1,
                      repeats: int = 5, sizes: tuple[str, ...] = SIZES) -> list[PaperTiming]:
    """Every network of ``NETWORKS`` at every size of ``sizes`` (Table 8's), all in one interleaved run."""
    torch.manual_seed(0)
    networks = [(name, resolve_network(name, scale=SCALE).module) for name in NETWORKS]
    pairs = [(name, size, network) for name, network in networks for size in sizes]
    timings = time_networks([(network, input_size(SCALE, preset=size)) for _, size, network in pairs],
                            device=device, warmup=warmup, repeats=repeats, threads=threads)
    return [PaperTiming(name, size, timing) for (name, size, _), timing in zip(pairs, timings)]


def format_paper_markdown(timings: list[PaperTiming], where: str) -> str:
    """Seconds per image beside Table 8's, with the spread flagged as everywhere else."""
    lines = [f'Measured on {where}; {PROTOCOL}.', '',
             '| network | output | median s | p10 s | p90 s | spread | Table 8 s |', '| --- | --- | ---: | ---: | ---: '
             '| ---: | ---: |']
    for item in timings:
        paper = paper_seconds(item.network, item.size)
        lines.append(f'| {item.network} | {item.size}x{item.size} | {item.timing.median:.4f} | {item.timing.p10:.4f} '
                     f'| {item.timing.p90:.4f} | {format_spread(item.timing.spread)} | {"-" if paper is None else f"{paper:g}"} |')
    lines += ['', 'Table 8\'s other rows (seconds, 256 / 512 / 1024): '
              + '; '.join(f'{name} {" / ".join(f"{value:g}" for value in row)}'
                          for name, row in TABLE8_SECONDS.items() if name not in NETWORKS) + '.']
    return '\n'.join(lines) + '\n'


__all__ = ['NETWORKS', 'PROTOCOL', 'SIZES', 'TABLE8_SECONDS', 'PaperTiming', 'format_paper_markdown',
           'paper_seconds', 'time_paper_table8']
