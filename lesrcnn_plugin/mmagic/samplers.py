"""Batch samplers for MMagic dataloaders."""
from __future__ import annotations

import bisect
import random
from collections.abc import Iterator

from torch.utils.data import BatchSampler, ConcatDataset, Sampler

from mmengine.dist import sync_random_seed

from mmagic.registry import DATA_SAMPLERS

from ._registry import register_once


class GroupByDatasetBatchSampler(BatchSampler):
    """Batches whose indices all come from the same sub-dataset of a ``ConcatDataset``.

    LESRCNN-S is trained on one DIV2K dataset per scale, concatenated; patches of different scales
    have different GT sizes and need different upsamplers, so a batch must hold one scale only.
    The sub-dataset of each batch is drawn uniformly at random, as the authors draw one scale per
    iteration (``random.randint(2, 4)``), from a seed every rank shares: the sampler's (mmengine's
    ``InfiniteSampler`` synchronises it across ranks), so all ranks train the same scale in a step, and
    a resumed run (mmengine skips the batches already trained) draws the same sequence. Indices are
    taken from ``sampler`` (which shuffles and shards them per rank) into one bucket per sub-dataset
    until the drawn one holds ``batch_size``. A batch leaves the other scales' upsamplers unused: wrap
    the model with ``find_unused_parameters=True``.

    Args:
        sampler: Sampler of indices into a ``ConcatDataset`` (``sampler.dataset`` or ``.data_source``).
        batch_size: Samples per batch.
        drop_last: Drop each bucket's incomplete last batch when a finite sampler is exhausted.
        seed: Seed of the draw; default the sampler's ``seed``, else one synchronised across ranks.
    """

    def __init__(self, sampler: Sampler, batch_size: int, drop_last: bool = False, seed: int | None = None) -> None:
        # mmengine's samplers keep their dataset in .dataset, torch's in .data_source.
        dataset = getattr(sampler, 'dataset', getattr(sampler, 'data_source', None))
        if not isinstance(dataset, ConcatDataset):
            raise TypeError('GroupByDatasetBatchSampler needs a sampler over a ConcatDataset, got '
                            f'{type(dataset).__name__}')
        super().__init__(sampler, batch_size, drop_last)
        self.cumulative_sizes = list(dataset.cumulative_sizes)
        self.seed = seed if seed is not None else getattr(sampler, 'seed', None)
        if self.seed is None:
            self.seed = sync_random_seed()

    def dataset_index(self, index: int) -> int:
        """Which sub-dataset a global index belongs to."""
        return bisect.bisect_right(self.cumulative_sizes, index)

    def __iter__(self) -> Iterator[list[int]]:
        buckets: list[list[int]] = [[] for _ in self.cumulative_sizes]
        draw = random.Random(self.seed)
        indices = iter(self.sampler)
        while True:
            bucket = buckets[draw.randrange(len(buckets))]
            while len(bucket) < self.batch_size:
                index = next(indices, None)
                if index is None:  # a finite sampler is exhausted: what the buckets hold, in batches
                    for rest in buckets:
                        for start in range(0, len(rest), self.batch_size):
                            if len(rest) - start >= self.batch_size or not self.drop_last:
                                yield rest[start:start + self.batch_size]
                    return
                buckets[self.dataset_index(index)].append(index)
            yield bucket[:self.batch_size]
            del bucket[:self.batch_size]

    def __len__(self) -> int:
        # Exact only when every bucket divides evenly; as for mmdet's grouped samplers, a bound.
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size


register_once(DATA_SAMPLERS, GroupByDatasetBatchSampler)
