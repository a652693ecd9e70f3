"""Training hooks for MMagic runs of the LESRCNN family."""
from __future__ import annotations

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmagic.registry import HOOKS

from ._registry import register_once


class ChannelsLastHook(Hook):
    """Train in channels_last (NHWC) memory format: ``custom_hooks = [dict(type='ChannelsLastHook')]``.

    Converts the model's weights before training starts. A convolution with channels_last weights
    computes in channels_last whatever the layout of its input, so the batches need no conversion.
    Tensor-core convolutions (bf16/fp16, e.g. with ``--amp``) are faster this way; in fp32 the
    arithmetic differs from NCHW's by rounding only (about 1e-6 on the losses), which is why it is a
    switch, off by default. With several GPUs DDP is built before hooks run, so it may warn that
    gradient strides differ from its buckets' (correct, a little slower).
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        model.to(memory_format=torch.channels_last)


register_once(HOOKS, ChannelsLastHook)
