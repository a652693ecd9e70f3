"""ONNX export of the LESRCNN family, with a parity check against PyTorch in onnxruntime.

The exported graph takes ``lr`` (N, 3, H, W), RGB in [0, 1], with dynamic N, H and W, and returns
``sr`` (N, 3, scale*H, scale*W), not clamped (clamp to [0, 1] before quantising). It is written with
opset ``DEFAULT_OPSET`` (17: Conv, Relu, Add, DepthToSpace, all supported by onnxruntime's CPU and
CUDA providers) through PyTorch's TorchScript-based exporter (``dynamo=False``), which needs no
package beyond ``onnx``.

The fast path (``FastLESRCNN`` with PyTorch's own convolutions, not its oneDNN fused CPU kernels,
which have no ONNX form) is exported by default: one upsampler pass and the output mean shift
folded, the same function as the reference network. ``fast=False`` exports the reference network.

``--fp16`` stores weights and activations in float16 (input and output too); its parity is
checked against the float32 PyTorch network with ``FP16_TOLERANCE``, as half precision cannot meet
``FP32_TOLERANCE``.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .archs.blocks import LESRCNNBody
from .archs.fast import FastLESRCNN
from .errors import NonFiniteOutputError
from .fileio import atomic_path

#: ONNX opset the graph is written with.
DEFAULT_OPSET = 17
#: Largest accepted |onnxruntime - PyTorch| for a float32 export.
FP32_TOLERANCE = 1e-4
#: Largest accepted |onnxruntime - PyTorch float32| for a float16 export.
FP16_TOLERANCE = 1e-2
#: Input sizes (N, H, W) of the parity check: odd, non-square and unlike the traced size, so that
#: the dynamic axes are exercised.
PARITY_SIZES = ((1, 37, 53), (2, 24, 19))


class _AtScale(nn.Module):
    """``network(x, scale=scale)`` as a one-input module: an ONNX graph is exported per scale."""

    def __init__(self, network: nn.Module, scale: int) -> None:
        super().__init__()
        self.network, self.scale = network, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x, scale=self.scale)


def export_onnx(model: LESRCNNBody, path: str | os.PathLike, scale: int | None = None, fast: bool = True,
                fp16: bool = False, opset: int = DEFAULT_OPSET) -> Path:
    """Export ``model`` to ONNX at ``path`` (written atomically) with dynamic batch, height and width.

    Args:
        model: A LESRCNN-family network with its weights (on the CPU).
        path: ``.onnx`` file to write.
        scale: Scale to export (multi-scale networks); defaults to the network's.
        fast: Export the exact fast path (``FastLESRCNN``) rather than the reference network.
        fp16: Store weights, input and output as float16.
        opset: ONNX opset version.
    """
    network = FastLESRCNN(model, fuse_kernels=False) if fast else model
    network = _AtScale(network, model.default_scale if scale is None else scale).eval()
    network = network.half() if fp16 else network.float()
    dummy = torch.rand(1, 3, 32, 32, dtype=torch.float16 if fp16 else torch.float32)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one (which needs onnxscript);
        # it still writes these graphs exactly.
        warnings.simplefilter('ignore', DeprecationWarning)
        torch.onnx.export(network, (dummy,), str(tmp), dynamo=False, opset_version=opset, input_names=['lr'],
                          output_names=['sr'], dynamic_axes={'lr': {0: 'batch', 2: 'height', 3: 'width'},
                                                             'sr': {0: 'batch', 2: 'sr_height', 3: 'sr_width'}})
    return Path(path)


def onnx_parity(onnx_path: str | os.PathLike, model: nn.Module, scale: int | None = None,
                sizes: Sequence[tuple[int, int, int]] = PARITY_SIZES, seed: int = 0) -> float:
    """Largest |onnxruntime - PyTorch| over random inputs of ``sizes`` (N, H, W).

    ``model`` is the float32 PyTorch network to compare with (the reference network is the strictest
    choice: it also checks the fast path's rewrites). The ONNX input type (float32 or float16) is
    read from the file.

    Raises:
        NonFiniteOutputError: either side's output holds a NaN or an Inf (``max`` would skip a NaN
            and report the parity of the finite values only).
        ValueError: the output shapes differ.
    """
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=['CPUExecutionProvider'])
    feed = session.get_inputs()[0]
    input_type = np.float16 if feed.type == 'tensor(float16)' else np.float32
    model = model.eval().float()
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    for batch, height, width in sizes:
        x = torch.rand(batch, 3, height, width, generator=generator)
        # Both sides see the same (possibly half-rounded) input, so only the network's arithmetic differs.
        x = torch.from_numpy(x.numpy().astype(input_type).astype(np.float32))
        (onnx_output,) = session.run(None, {feed.name: x.numpy().astype(input_type)})
        with torch.inference_mode():
            torch_output = model(x, scale=scale).numpy()
        for side, output in (('onnxruntime', onnx_output), ('PyTorch', torch_output)):
            if not np.isfinite(output).all():
                raise NonFiniteOutputError(f'non-finite output (NaN or Inf) from {side} on a '
                                           f'{"x".join(map(str, x.shape))} input')
        if onnx_output.shape != torch_output.shape:
            raise ValueError(f'{onnx_path}: output shape {onnx_output.shape} for input {tuple(x.shape)}, '
                             f'expected {torch_output.shape}')
        worst = max(worst, float(np.abs(onnx_output.astype(np.float32) - torch_output).max()))
    return worst


__all__ = ['DEFAULT_OPSET', 'FP16_TOLERANCE', 'FP32_TOLERANCE', 'NonFiniteOutputError', 'PARITY_SIZES', 'export_onnx',
           'onnx_parity']
