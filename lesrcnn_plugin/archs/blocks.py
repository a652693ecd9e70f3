"""Building blocks shared by the LESRCNN family.

Tian et al., "Lightweight Image Super-Resolution with Enhanced CNN", Knowledge-Based Systems 2020
(LESRCNN) describes three blocks:

* IEEB, the information extraction and enhancement block: 17 layers alternating 3x3 and 1x1
  convolutions whose outputs are accumulated in cumulative residual sums;
* RB, the reconstruction block: one sub-pixel upsampler applied to the deep (IEEB output) and to the
  shallow (first layer) features, the two results summed and rectified;
* IRB, the information refinement block: four 3x3 conv+ReLU layers, then a 3x3 conv to RGB.

A note on rectified residuals. The paper writes the IEEB sums with un-rectified features. The
authors' released code applies ``nn.ReLU(inplace=True)`` to tensors that it reuses in later sums, so
every running sum and the shallow branch fed to the RB are rectified *in place* before being reused.
The released weights were trained (and the reference outputs produced) with that behaviour, so these
blocks implement the code as it runs::

    h_0 = relu(conv1(x))
    h_k = relu(h_{k-1} + fuse_k(relu(extract_k(h_{k-1}))))      k = 1..8
    y   = IRB(relu(up(h_8) + up(h_0)))

whereas the paper's formula reads ``h_k = h_{k-1} + fuse_k(...)`` without the outer ReLU.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

#: RGB mean of the DIV2K training set, as used by the authors (and by EDSR).
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)

#: Scales a sub-pixel upsampler can be built for (powers of two are built from x2 stages).
SUPPORTED_SCALES = (2, 3, 4, 8)


class MeanShift(nn.Conv2d):
    """Frozen 1x1 convolution adding (``sign=1``) or subtracting (``sign=-1``) a per-channel mean.

    Kept as a convolution, not a buffer, so that it holds the same 12 parameters as the authors'
    ``MeanShift`` (they count towards the published parameter totals) and loads their weights
    unchanged. Its parameters never receive gradients.

    Args:
        rgb_mean: Mean of each input channel, in the [0, 1] range.
        sign: -1 to subtract the mean, +1 to add it back.
    """

    def __init__(self, rgb_mean: Sequence[float] = DIV2K_RGB_MEAN, sign: int = -1) -> None:
        super().__init__(3, 3, kernel_size=1)
        if sign not in (-1, 1):
            raise ValueError(f'sign must be -1 or +1, got {sign}')
        with torch.no_grad():
            self.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.bias.copy_(sign * torch.tensor(rgb_mean, dtype=torch.float32))
        self.requires_grad_(False)


class SubPixelUpsampler(nn.Sequential):
    """Sub-pixel convolution upsampler (Shi et al. 2016), as in the authors' ``_UpsampleBlock``.

    x2, x4 and x8 are built from ``log2(scale)`` stages of (3x3 conv to 4C channels, PixelShuffle(2));
    x3 is one stage of (3x3 conv to 9C channels, PixelShuffle(3)). Convolutions carry a bias; there
    is no activation between stages.

    Args:
        channels: Feature channels in and out.
        scale: Upscaling factor, one of 2, 3, 4, 8.
    """

    def __init__(self, channels: int, scale: int) -> None:
        if scale not in SUPPORTED_SCALES:
            raise ValueError(f'unsupported scale {scale}; choose one of {SUPPORTED_SCALES}')
        factors = [3] if scale == 3 else [2] * int(math.log2(scale))
        layers: list[nn.Module] = []
        for factor in factors:
            layers += [nn.Conv2d(channels, channels * factor**2, 3, padding=1), nn.PixelShuffle(factor)]
        super().__init__(*layers)
        self.scale = scale


class DualKernelConv(nn.Module):
    """Two parallel branches, a 3x3 and a 5x5 convolution, concatenated along channels.

    The extraction layer of the upgraded LESRCNN (see ``DualKernelLESRCNN``): each branch produces
    half of the output channels, so the layer sees two receptive fields at no change of width.

    Args:
        in_channels: Input channels.
        out_channels: Output channels, split evenly between the two branches.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        if out_channels % 2:
            raise ValueError(f'out_channels must be even to split between two branches, got {out_channels}')
        self.branch3x3 = nn.Conv2d(in_channels, out_channels // 2, 3, padding=1, bias=False)
        self.branch5x5 = nn.Conv2d(in_channels, out_channels // 2, 5, padding=2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch3x3(x), self.branch5x5(x)], dim=1)


class ExtractionStage(nn.Module):
    """One pair of IEEB layers: an extraction convolution (+ReLU), then a fusing convolution.

    Args:
        extract: The first layer (3x3 in LESRCNN, dual-kernel in the upgraded network).
        fuse: The second layer (1x1 in LESRCNN, 3x3 in the stacked ablation SN).
        residual: Add the stage input to the fused output before the ReLU (the IEEB's cumulative
            residual sum); without it the stage is a plain stack (the ablations SN and HN).
    """

    def __init__(self, extract: nn.Module, fuse: nn.Module, residual: bool) -> None:
        super().__init__()
        self.extract = extract
        self.fuse = fuse
        self.residual = residual

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = self.fuse(F.relu(self.extract(h)))
        if self.residual:
            out = out + h
        return F.relu(out)


class InformationExtraction(nn.Module):
    """IEEB: a shallow 3x3 layer then ``num_stages`` extraction stages (17 layers for 8 stages).

    ``forward`` returns both the rectified shallow features ``h_0`` (the RB reuses them) and the
    deep features ``h_n``.

    Args:
        channels: Feature channels.
        num_stages: Number of (extract, fuse) pairs after the shallow layer.
        fuse_kernel: Kernel size of the fusing layer: 1 in LESRCNN, 3 for the stacked ablation SN.
        residual: Cumulative residual sums (LESRCNN) or none (ablations SN, HN).
        dual_kernel_from: Index of the first stage whose extraction layer is a ``DualKernelConv``
            (the upgraded LESRCNN uses 1: every stage but the first); ``None`` keeps all 3x3.
    """

    def __init__(self, channels: int = 64, num_stages: int = 8, fuse_kernel: int = 1, residual: bool = True,
                 dual_kernel_from: int | None = None) -> None:
        super().__init__()
        self.shallow = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        stages = []
        for index in range(num_stages):
            if dual_kernel_from is not None and index >= dual_kernel_from:
                extract: nn.Module = DualKernelConv(channels, channels)
            else:
                extract = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            fuse = nn.Conv2d(channels, channels, fuse_kernel, padding=fuse_kernel // 2, bias=False)
            stages.append(ExtractionStage(extract, fuse, residual))
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shallow = F.relu(self.shallow(x))
        h = shallow
        for stage in self.stages:
            h = stage(h)
        return shallow, h


class InformationRefinement(nn.Module):
    """IRB: ``num_layers`` 3x3 conv+ReLU layers, then a 3x3 convolution to RGB.

    Args:
        channels: Feature channels.
        num_layers: Conv+ReLU layers before the RGB projection (4 in LESRCNN, 0 in the ablations
            without an IRB, where only the projection to RGB remains).
    """

    def __init__(self, channels: int = 64, num_layers: int = 4) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1, bias=False) for _ in range(num_layers))
        self.to_rgb = nn.Conv2d(channels, 3, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = F.relu(conv(x))
        return self.to_rgb(x)


class Reconstruction(nn.Module):
    """RB: one sub-pixel upsampler per scale, applied to the deep and the shallow features.

    With ``fuse_shallow`` (LESRCNN) the output is ``relu(up(deep) + up(shallow))``: the *same*
    upsampler runs twice, so its parameters count once but its MACs twice. Without it (the ablations
    that lack an RB) the deep features alone are upsampled: ``up(deep)``.

    Args:
        channels: Feature channels.
        scales: Scales to build an upsampler for (one for LESRCNN, several for LESRCNN-S).
        fuse_shallow: Sum the upsampled shallow features in (the RB proper).
    """

    def __init__(self, channels: int, scales: Sequence[int], fuse_shallow: bool = True) -> None:
        super().__init__()
        self.upsamplers = nn.ModuleDict({f'x{scale}': SubPixelUpsampler(channels, scale) for scale in scales})
        self.fuse_shallow = fuse_shallow

    def forward(self, deep: torch.Tensor, shallow: torch.Tensor, scale: int) -> torch.Tensor:
        upsampler = self.upsamplers[f'x{scale}']
        if not self.fuse_shallow:
            return upsampler(deep)
        return F.relu(upsampler(deep) + upsampler(shallow))


#: Table 1 of the paper: which blocks each ablation network keeps. The paper does not say how the
#: networks without an RB or an IRB upsample and reconstruct; we keep the sub-pixel upsampler of the
#: deep features (no shallow branch) and the final 3x3 projection to RGB, so each row adds exactly
#: one idea to the previous one.
#:   sn:      17 stacked 3x3 conv+ReLU layers (fuse layers are 3x3, no residual sums)
#:   hn:      17 layers alternating 3x3 / 1x1, no residual sums (heterogeneous network)
#:   ieeb:    hn with the cumulative residual sums (the IEEB)
#:   ieeb_rb: ieeb with the RB (shallow branch upsampled and fused), then the RGB projection
#:   full:    ieeb_rb with the IRB's four 3x3 conv+ReLU layers (LESRCNN)
VARIANTS = {
    'full': dict(fuse_kernel=1, residual=True, fuse_shallow=True, refinement_layers=4),
    'ieeb_rb': dict(fuse_kernel=1, residual=True, fuse_shallow=True, refinement_layers=0),
    'ieeb': dict(fuse_kernel=1, residual=True, fuse_shallow=False, refinement_layers=0),
    'hn': dict(fuse_kernel=1, residual=False, fuse_shallow=False, refinement_layers=0),
    'sn': dict(fuse_kernel=3, residual=False, fuse_shallow=False, refinement_layers=0),
}


class LESRCNNBody(nn.Module):
    """The LESRCNN pipeline shared by every network of the family, and its calling contract.

    ``subtract_mean -> information_extraction (IEEB) -> reconstruction (RB) -> refinement (IRB)
    -> add_mean``. The public networks (``LESRCNN``, ``MultiScaleLESRCNN``, ``DualKernelLESRCNN``)
    choose its arguments; use them rather than this class.

    Every network of the family (and ``FastLESRCNN`` built from one) is called the same way:
    ``net(x)`` upsamples by ``net.default_scale``, ``net(x, scale=k)`` by any ``k`` in ``net.scales``.

    Args:
        scales: Scales to build upsamplers for.
        default_scale: Scale of ``net(x)``; one of ``scales`` (default: the first).
        num_feat: Feature channels.
        variant: One of ``VARIANTS`` (``'full'`` is LESRCNN; the others are the paper's ablations).
        dual_kernel_from: First IEEB stage with a dual-kernel extraction layer (None: none).
        rgb_mean: Mean subtracted from the input and added to the output.
        num_stages: IEEB stages after the shallow layer (8 in every network of the paper).
    """

    def __init__(self, scales: Sequence[int], default_scale: int | None = None, num_feat: int = 64,
                 variant: str = 'full', dual_kernel_from: int | None = None,
                 rgb_mean: Sequence[float] = DIV2K_RGB_MEAN, num_stages: int = 8) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f'unknown variant {variant!r}; choose one of {sorted(VARIANTS)}')
        if num_feat <= 0:
            raise ValueError(f'num_feat must be positive, got {num_feat}')
        self.scales = tuple(scales)
        self.default_scale = self.scales[0] if default_scale is None else default_scale
        if self.default_scale not in self.scales:
            raise ValueError(f'default_scale {self.default_scale} is not one of scales {self.scales}')
        spec = VARIANTS[variant]
        self.variant = variant
        self.subtract_mean = MeanShift(rgb_mean, sign=-1)
        self.information_extraction = InformationExtraction(
            num_feat, num_stages=num_stages, fuse_kernel=spec['fuse_kernel'], residual=spec['residual'],
            dual_kernel_from=dual_kernel_from)
        self.reconstruction = Reconstruction(num_feat, self.scales, fuse_shallow=spec['fuse_shallow'])
        self.refinement = InformationRefinement(num_feat, num_layers=spec['refinement_layers'])
        self.add_mean = MeanShift(rgb_mean, sign=1)

    def forward(self, x: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        """Super-resolve ``x`` (N, 3, H, W), RGB in [0, 1], by ``scale`` (default ``default_scale``)."""
        scale = self.default_scale if scale is None else scale
        if scale not in self.scales:
            raise ValueError(f'this network has upsamplers for scales {self.scales}, not {scale}')
        shallow, deep = self.information_extraction(self.subtract_mean(x))
        features = self.reconstruction(deep, shallow, scale)
        return self.add_mean(self.refinement(features))
