"""The machine's load around a measurement: recorded before and after, waited out on request, and the
spread of the timings flagged when it is too wide to trust.

A CPU timing measures the network only when nothing else competes for the cores: on a loaded 2-core
machine a network timed with two threads ran 39x slower than with one, and ratios between networks
moved by a factor of four from run to run, while at one thread every network stayed within +-10%.
Hence the protocol of ``lesrcnn-measure-runtime`` and ``tools/make_comparison.py``: threads pinned
(one by default), the load average recorded before and after, ``--require-idle`` to wait (bounded)
for the load to drop below the core count, and a spread (p90 - p10) / median above ``SPREAD_LIMIT``
flagged beside the figure.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable

from ..errors import LESRCNNError

#: (p90 - p10) / median above which a timing is flagged: wider than the +-10% that one-thread runs held
#: on a loaded machine.
SPREAD_LIMIT = 0.2


class MachineBusyError(LESRCNNError):
    """The load average stayed above the core count for as long as ``--require-idle`` waits."""


def load_average() -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load averages (``None`` where the platform has none)."""
    return os.getloadavg() if hasattr(os, 'getloadavg') else None


def cpu_count() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def wait_until_idle(max_wait_s: float, poll_s: float = 10.0, limit: float | None = None,
                    read_load: Callable[[], tuple[float, float, float] | None] | None = None,
                    sleep: Callable[[float], None] = time.sleep) -> float | None:
    """Wait until the 1-minute load average is at most ``limit`` (default: the core count).

    Returns the load average it found (``None`` where the platform has none: nothing to wait for).
    Raises ``MachineBusyError`` when it is still above the limit after ``max_wait_s`` seconds.
    """
    limit = float(cpu_count()) if limit is None else limit
    read_load = read_load or load_average
    waited = 0.0
    while True:
        load = read_load()
        if load is None or load[0] <= limit:
            return None if load is None else load[0]
        if waited >= max_wait_s:
            raise MachineBusyError(f'--require-idle: the load average is {load[0]:.2f}, above the {limit:g} cores, '
                                   f'after waiting {waited:.0f} s; run again when the machine is idle, or raise '
                                   '--idle-wait')
        step = min(poll_s, max_wait_s - waited)
        sleep(step)
        waited += step


def spread(p10: float, median: float, p90: float) -> float:
    """(p90 - p10) / median: the relative width of the middle 80% of the rounds."""
    return (p90 - p10) / median if median > 0 else float('inf')


def flag(relative_spread: float, limit: float = SPREAD_LIMIT) -> str:
    """``'UNSTABLE'`` beside a figure whose spread is above ``limit``, else ``''``."""
    return 'UNSTABLE' if relative_spread > limit else ''


def format_spread(relative_spread: float) -> str:
    """``'12.3%'``, or ``'24.6% UNSTABLE'`` above the limit (one decimal, so that no flagged figure reads 20%)."""
    flagged = flag(relative_spread)
    return f'{relative_spread:.1%}' + (f' {flagged}' if flagged else '')


__all__ = ['SPREAD_LIMIT', 'MachineBusyError', 'cpu_count', 'flag', 'format_spread', 'load_average', 'spread',
           'wait_until_idle']
