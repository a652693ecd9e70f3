"""What the frameworks' sides of ``lesrcnn-measure-training`` share.

Each framework reads its own file: ``lesrcnn_plugin.basicsr.throughput.BasicSRSource`` (options file)
and ``lesrcnn_plugin.mmagic.throughput.MMagicSource`` (config), with one interface:

* ``recipe``: a ``measure.Recipe`` read from the file;
* ``storages``: the storage kinds whose databases exist, ``'png'`` and/or ``'raw'``: the file's own
  training set, and the same set switched to the other kind (``*_sub.lmdb`` <-> ``*_sub_raw.lmdb``,
  PNG datasets/loaders <-> their raw twins) when that kind's databases are on disk;
* ``make_dataset(storage)``: the framework's training dataset, built by the framework's registry;
  ``collate_fn``: the framework's collate function;
* ``set_batch(batch)``: train with another batch size than the file's;
* ``run_loop(storage, iters, device)``: the framework's training loop for ``iters`` iterations,
  timed as the framework times it (BasicSR's ``AvgTimer`` around ``prefetcher.next()`` and the whole
  iteration, MMagic's ``IterTimerHook`` ``data_time`` and ``time``), with no validation and no
  checkpoints, in a temporary folder. Dataset paths are used as the file gives them, relative to the
  working directory.

This module holds what both sides use: the worker cap, the warm-up left out of the real loop's
averages, the database paths of each storage and the loop's row.
"""
from __future__ import annotations

import os

from ..benchmark.load import cpu_count
from ..data.raw_store import png_db_path, raw_db_path
from .measure import LoopRow


def capped_workers(workers: int) -> int:
    """The recipe's loader workers, at most the CPUs this process may use: more only queue behind each other
    (and a 2-core machine given 8 workers spends the measured loop starting them)."""
    return min(int(workers), cpu_count())


def warmup_iterations(iters: int) -> int:
    """Iterations of the real loop left out of its averages: worker start-up, first allocations, compiling."""
    return max(1, min(20, iters // 5))


def storage_path(path: str, storage: str) -> str:
    """The database ``path`` (a PNG or a raw one) in ``storage``'s kind."""
    return raw_db_path(path) if storage == 'raw' else png_db_path(path)


def databases_exist(paths) -> bool:
    """Whether every LMDB folder of ``paths`` holds its ``data.mdb``."""
    return all(os.path.isfile(os.path.join(path, 'data.mdb')) for path in paths)


def loop_row(storage: str, iters: int, iter_times: list[float], data_times: list[float], note: str) -> LoopRow:
    """The real loop's row: its iteration and data times in ms, averaged after the warm-up."""
    warmup = warmup_iterations(iters)
    timed_iters, timed_data = iter_times[warmup:], data_times[warmup:]
    return LoopRow(storage, iters, warmup, 1e3 * sum(timed_iters) / len(timed_iters),
                   1e3 * sum(timed_data) / len(timed_data), note)


__all__ = ['capped_workers', 'databases_exist', 'loop_row', 'storage_path', 'warmup_iterations']
