"""Batch samplers for MMagic dataloaders."""
from __future__ import annotations

import bisect
from collections.abc import Iterator

from torch.utils.data import BatchSampler, ConcatDataset, Sampler

from mmagic.registry import DATA_SAMPLERS

from ._registry import register_once


class GroupByDatasetBatchSampler(BatchSampler):
    """Batches whose indices all come from the same sub-dataset of a ``ConcatDataset``.

    LESRCNN-S is trained on one DIV2K dataset per scale, concatenated; patches of different scales
    have different GT sizes and need different upsamplers, so a batch must hold one scale only.
    Indices are taken from ``sampler`` (e.g. ``InfiniteSampler``, which shuffles and shards them per
    rank) and put into one bucket per sub-dataset; the first bucket to reach ``batch_size`` is yielded.
    With a shuffling sampler the scale of successive batches is therefore random, each scale being
    drawn in proportion to its dataset's size (equal for the DIV2K LMDBs). Every rank groups its own
    indices, so in multi-GPU training ranks may train different scales in the same step: wrap the
    model with ``find_unused_parameters=True``.

    Args:
        sampler: Sampler of indices into a ``ConcatDataset`` (``sampler.dataset`` or ``.data_source``).
        batch_size: Samples per batch.
        drop_last: Drop each bucket's incomplete last batch when a finite sampler is exhausted.
    """

    def __init__(self, sampler: Sampler, batch_size: int, drop_last: bool = False) -> None:
        # mmengine's samplers keep their dataset in .dataset, torch's in .data_source.
        dataset = getattr(sampler, 'dataset', getattr(sampler, 'data_source', None))
        if not isinstance(dataset, ConcatDataset):
            raise TypeError('GroupByDatasetBatchSampler needs a sampler over a ConcatDataset, got '
                            f'{type(dataset).__name__}')
        super().__init__(sampler, batch_size, drop_last)
        self.cumulative_sizes = list(dataset.cumulative_sizes)

    def dataset_index(self, index: int) -> int:
        """Which sub-dataset a global index belongs to."""
        return bisect.bisect_right(self.cumulative_sizes, index)

    def __iter__(self) -> Iterator[list[int]]:
        buckets: list[list[int]] = [[] for _ in self.cumulative_sizes]
        for index in self.sampler:
            bucket = buckets[self.dataset_index(index)]
            bucket.append(index)
            if len(bucket) == self.batch_size:
                yield bucket[:]
                bucket.clear()
        if not self.drop_last:
            yield from (bucket for bucket in buckets if bucket)

    def __len__(self) -> int:
        # Exact only when every bucket divides evenly; as for mmdet's grouped samplers, a bound.
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size


register_once(DATA_SAMPLERS, GroupByDatasetBatchSampler)
