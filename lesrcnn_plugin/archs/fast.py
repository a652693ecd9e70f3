"""An exact, faster inference path for every network of the LESRCNN family.

Two algebraic rewrites, exact up to floating-point rounding:

* The RB upsampler is affine: ``up(a) = L(a) + c``, where ``L`` is linear and ``c`` comes from the
  biases alone. Hence ``up(a) + up(b) = L(a + b) + 2c``, which is ``up2(a + b)`` for an upsampler
  ``up2`` with the same weights and every bias doubled (for x4, the second stage is linear in the
  first stage's biased output, so doubling both stages' biases is again exact). One upsampler pass
  instead of two.
* The output mean shift ``add_mean`` (a 1x1 convolution ``y = M x + c``) folds into the bias-free
  RGB projection before it: ``to_rgb'`` has weight ``M W`` and bias ``c``.

The input mean shift is not folded into the first convolution: with zero padding that would change
the border pixels.

``FastLESRCNN(model)`` keeps the reference model untouched (``model`` mirrors the authors'
computation) and holds folded copies of the weights; call it like the model.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from .blocks import LESRCNNBody, SubPixelUpsampler


def _doubled_bias_upsampler(upsampler: SubPixelUpsampler) -> SubPixelUpsampler:
    fused = copy.deepcopy(upsampler)
    with torch.no_grad():
        for layer in fused:
            if isinstance(layer, nn.Conv2d) and layer.bias is not None:
                layer.bias.mul_(2)
    return fused


def _fold_output_shift(to_rgb: nn.Conv2d, add_mean: nn.Conv2d) -> nn.Conv2d:
    folded = nn.Conv2d(to_rgb.in_channels, to_rgb.out_channels, to_rgb.kernel_size, padding=to_rgb.padding,
                       bias=True)
    mix = add_mean.weight.detach().flatten(1)  # (3, 3)
    with torch.no_grad():
        folded.weight.copy_(torch.einsum('oc,cikl->oikl', mix, to_rgb.weight.detach()))
        folded.bias.copy_(add_mean.bias.detach())
    return folded.to(to_rgb.weight.device, to_rgb.weight.dtype)


class FastLESRCNN(nn.Module):
    """Inference-only rewrite of a LESRCNN-family network, numerically equal to it.

    Args:
        model: A trained ``LESRCNN``, ``MultiScaleLESRCNN`` or ``DualKernelLESRCNN`` (any variant).
            It is not modified.

    ``forward(x, scale=None)`` accepts the same input; ``scale`` defaults to the model's own.
    """

    def __init__(self, model: LESRCNNBody) -> None:
        super().__init__()
        if not isinstance(model, LESRCNNBody):
            raise TypeError(f'expected a LESRCNN-family network, got {type(model).__name__}')
        self.default_scale = getattr(model, 'upscale', None) or getattr(model, 'default_scale')
        self.fuse_shallow = model.reconstruction.fuse_shallow
        self.subtract_mean = copy.deepcopy(model.subtract_mean)
        self.information_extraction = copy.deepcopy(model.information_extraction)
        upsamplers = model.reconstruction.upsamplers
        self.upsamplers = nn.ModuleDict({
            name: _doubled_bias_upsampler(up) if self.fuse_shallow else copy.deepcopy(up)
            for name, up in upsamplers.items()})
        self.refinement_convs = copy.deepcopy(model.refinement.convs)
        self.to_rgb = _fold_output_shift(model.refinement.to_rgb, model.add_mean)
        self.eval().requires_grad_(False)

    @torch.inference_mode()
    def forward(self, x: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        scale = self.default_scale if scale is None else scale
        shallow, deep = self.information_extraction(self.subtract_mean(x))
        if self.fuse_shallow:
            features = F.relu(self.upsamplers[f'x{scale}'](deep.add_(shallow)))
        else:
            features = self.upsamplers[f'x{scale}'](deep)
        for conv in self.refinement_convs:
            features = F.relu(conv(features))
        return self.to_rgb(features)
