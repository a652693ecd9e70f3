"""Edit models for MMagic."""
from __future__ import annotations

import torch

from mmagic.models import BaseEditModel
from mmagic.registry import MODELS

from ._registry import register_once


class MultiScaleEditModel(BaseEditModel):
    """``BaseEditModel`` for a generator with one upsampler per scale (LESRCNN-S).

    The scale of a batch is read from its ``scale`` metainfo, which the pipeline sets with
    ``SetValues(dictionary=dict(scale=k))`` and keeps with ``PackInputs(meta_keys=['scale'])``; the
    generator is then called as ``generator(inputs, scale=k)``. A batch without that metainfo (e.g.
    plain inference) uses the generator's ``default_scale``. Everything else (MSE/L1 pixel loss,
    de-normalisation, outputs) is ``BaseEditModel``'s.

    Args: as ``BaseEditModel``.
    """

    def forward_tensor(self, inputs: torch.Tensor, data_samples=None, **kwargs) -> torch.Tensor:
        scale = batch_scale(data_samples)
        if scale is not None:
            kwargs.setdefault('scale', scale)
        return self.generator(inputs, **kwargs)


def batch_scale(data_samples) -> int | None:
    """The single ``scale`` metainfo of a (stacked) batch of data samples; None when absent.

    Raises ``ValueError`` for a batch mixing scales: one forward pass uses one upsampler.
    """
    if data_samples is None or 'scale' not in data_samples.metainfo_keys():
        return None
    scales = data_samples.metainfo['scale']
    distinct = {int(s) for s in (scales if isinstance(scales, (list, tuple)) else [scales])}
    if len(distinct) != 1:
        raise ValueError(f'a batch mixes scales {sorted(distinct)}; group batches by scale '
                         '(GroupByDatasetBatchSampler) so that each uses one upsampler')
    return distinct.pop()


register_once(MODELS, MultiScaleEditModel)
