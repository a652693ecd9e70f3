"""Training hooks for MMagic runs of the LESRCNN family, and checkpoints that a full disk cannot truncate.

mmengine's ``CheckpointHook`` saves ``iter_<n>.pth``, ``best_*.pth`` and ``last_checkpoint`` through
its local file backend, which writes in place: a full disk leaves a truncated checkpoint where the
run resumes from. Importing this module (``lesrcnn_plugin.mmagic`` does) replaces that backend with
``AtomicLocalBackend``, which writes each file to a temporary name and renames it into place: a
failed write leaves the files as they were and raises an ``OSError`` naming the file, which
``lesrcnn-mmagic-train`` reports in one line.
"""
from __future__ import annotations

import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmagic.registry import HOOKS

from ..fileio import write_bytes_atomic
from ._registry import register_once


class AtomicLocalBackend(LocalBackend):
    """mmengine's ``LocalBackend``, writing whole files or none: ``put`` and ``put_text`` through
    ``fileio.write_bytes_atomic``."""

    def put(self, obj: bytes, filepath) -> None:
        write_bytes_atomic(filepath, obj)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        self.put(obj.encode(encoding), filepath)


def install_atomic_local_backend() -> None:
    """Make ``AtomicLocalBackend`` mmengine's backend for local paths (those without a ``scheme://``)."""
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')


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
install_atomic_local_backend()
