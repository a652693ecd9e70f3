"""The upgraded LESRCNN: dual-kernel (3x3 + 5x5) extraction layers in the IEEB.

An upgrade presented by the LESRCNN authors after the paper (Tian et al., "Lightweight Image
Super-Resolution with Enhanced CNN", Knowledge-Based Systems 2020): each IEEB 3x3 layer after the
first two (the authors' conv4, conv6, ..., conv16) becomes two parallel branches, a 3x3 and a 5x5
convolution of 32 output channels each with ReLU, concatenated to 64 channels before the following
1x1 layer. Reported on Urban100 x2: 31.61 dB / 0.9226 against 31.45 / 0.9206 for LESRCNN.

The speakers' code feeds the last layer's 3x3 branch twice where the 5x5 branch was meant; this is
the intended design, with a 5x5 branch in every dual-kernel layer.
"""
from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .blocks import DIV2K_RGB_MEAN, DualKernelConv, LESRCNNBody
from .family import SUPPORTED_SCALES, plain_keys, read_scales, read_width, receptive_field_margin
from .fast import FastLESRCNN
from .spec import NetworkSpec


class DualKernelLESRCNN(LESRCNNBody):
    """LESRCNN whose IEEB extraction layers 2..8 are dual-kernel (3x3 and 5x5 branches).

    Everything else is as ``LESRCNN``. Parameters at x2: 855,704 (the frozen mean shifts included).

    Args:
        upscale: Upscaling factor: 2, 3 or 4.
        num_feat: Feature channels (64); each branch gets half.
        rgb_mean: Mean subtracted from the input and added back to the output.

    Input: (N, 3, H, W) RGB in [0, 1]. Output: (N, 3, upscale*H, upscale*W).
    """

    def __init__(self, upscale: int = 2, num_feat: int = 64, rgb_mean: Sequence[float] = DIV2K_RGB_MEAN) -> None:
        # Stage 0 holds the authors' conv2 (kept 3x3); stages 1..7 hold conv4, conv6, ..., conv16.
        super().__init__(scales=(upscale,), num_feat=num_feat, dual_kernel_from=1, rgb_mean=rgb_mean)

    @property
    def upscale(self) -> int:
        """The constructor's upscaling factor (BasicSR's name for it): ``default_scale``."""
        return self.default_scale


def _read_arguments(state, variant: str | None) -> dict:
    return {'upscale': read_scales(state)[0], **read_width(state)}


def _parallel_convolutions(layer: nn.Module) -> tuple[nn.Module, ...]:
    """A dual-kernel layer runs its 3x3 and 5x5 branches side by side, concatenated in this order."""
    return (layer.branch3x3, layer.branch5x5) if isinstance(layer, DualKernelConv) else (layer,)


SPEC = NetworkSpec(
    DualKernelLESRCNN, scale_argument='upscale', scales=SUPPORTED_SCALES,
    detect=plain_keys(extraction='extract.branch5x5.weight'),
    read_arguments=_read_arguments,
    key_maps={},  # the authors released no dual-kernel weights: no official layout
    parallel_convolutions=_parallel_convolutions,
    fast_path=FastLESRCNN, receptive_field=receptive_field_margin, tags=('dual-kernel',))
