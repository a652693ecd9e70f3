"""Several networks timed against each other in one interleaved run (the comparison table's runtime).

Every network runs as ``measure_runtime`` runs its reference setting (fp32, NCHW, eager, the
synchronised clock of ``torch.utils.benchmark``): its own copy, its own seeded input at its own size,
``warmup`` untimed calls, then ``repeats`` rounds that time one block of every network in alternating
order, so that a background load or clock drift affects all networks alike.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..complexity import InputSize
from .timing import Setting, Timing, _prepare, _run_rounds, _TimedCall, build_runner, make_input, resolve_device


def time_networks(networks: Sequence[tuple[nn.Module, InputSize]], device: str | torch.device = 'cpu',
                  warmup: int = 1, repeats: int = 5, threads: int | None = None,
                  min_block_seconds: float = 0.02) -> list[Timing]:
    """Median and percentiles of one forward pass of each network, in one interleaved run.

    Args:
        networks: (network with the calling contract, input size) pairs; each runs at its default scale.
        device: ``'cpu'`` or ``'cuda[:N]'``.
        warmup: Untimed calls per network before the rounds.
        repeats: Timed rounds.
        threads: CPU threads (``None``: PyTorch's default).
        min_block_seconds: Shortest timed block; fast calls are repeated within a block to reach it.

    Returns:
        One ``Timing`` per network, in the order given.
    """
    device = resolve_device(device)
    setting = Setting('reference', threads=threads)
    calls = []
    for network, size in networks:
        runner = build_runner(network, setting, device, network.default_scale)
        image = make_input(size, 1, setting, device)
        calls.append(_TimedCall(setting, lambda runner=runner, image=image: runner(image)))
    for call in calls:
        _prepare(call, device, warmup, min_block_seconds)
    _run_rounds(calls, repeats, progress=None)
    return [call.timing for call in calls]


__all__ = ['time_networks']
