"""LESRCNN, the lightweight enhanced SR CNN, and the ablation networks of its paper.

Tian, C., Zhuge, R., Wu, Z., Xu, Y., Zuo, W., Chen, C., Lin, C.-W. "Lightweight image
super-resolution with enhanced CNN." Knowledge-Based Systems 205 (2020) 106235.
Reference code: https://github.com/hellloxiaotian/LESRCNN (one copy per scale).
"""
from __future__ import annotations

from collections.abc import Sequence

from .blocks import DIV2K_RGB_MEAN, LESRCNNBody
from .family import (AUTHORS_KEY_MAP, SUPPORTED_SCALES, plain_keys, read_scales, read_variant, read_width,
                     receptive_field_margin)
from .fast import FastLESRCNN
from .spec import NetworkSpec


class LESRCNN(LESRCNNBody):
    """LESRCNN for one upscaling factor (the authors' network and its released weights).

    IEEB (17 layers, odd 3x3 / even 1x1, cumulative residual sums), RB (one sub-pixel upsampler
    applied to the deep and the shallow features, summed, ReLU), IRB (four 3x3 conv+ReLU, 3x3 to
    RGB), with the DIV2K mean subtracted before and added after. Convolutions carry no bias, except
    the upsampler's. Residual sums are rectified as in the authors' code (see ``blocks``).
    Parameters, the frozen mean shifts included: 626,328 (x2), 810,968 (x3), 774,040 (x4).

    Args:
        upscale: Upscaling factor: 2, 3 or 4 (8 is built from three x2 stages, untrained by the authors).
        num_feat: Feature channels (64 in the paper).
        variant: ``'full'`` for LESRCNN, or one of the paper's Table 1 ablations: ``'sn'`` (17
            stacked 3x3 conv+ReLU), ``'hn'`` (alternating 3x3/1x1, no residual sums), ``'ieeb'``
            (hn with the sums), ``'ieeb_rb'`` (ieeb with the RB, no IRB). ``blocks.VARIANTS`` says
            how the ablations upsample and reconstruct, where the paper is silent.
        rgb_mean: Mean subtracted from the input and added back to the output.

    Input: (N, 3, H, W) RGB in [0, 1]. Output: (N, 3, upscale*H, upscale*W). Called as every network
    of the family: ``net(x)`` or ``net(x, scale=upscale)`` (see ``LESRCNNBody``).
    """

    def __init__(self, upscale: int = 2, num_feat: int = 64, variant: str = 'full',
                 rgb_mean: Sequence[float] = DIV2K_RGB_MEAN) -> None:
        super().__init__(scales=(upscale,), num_feat=num_feat, variant=variant, rgb_mean=rgb_mean)

    @property
    def upscale(self) -> int:
        """The constructor's upscaling factor (BasicSR's name for it): ``default_scale``."""
        return self.default_scale


def _read_arguments(state, variant: str | None) -> dict:
    return {'upscale': read_scales(state)[0], 'variant': read_variant(state, variant), **read_width(state)}


SPEC = NetworkSpec(
    LESRCNN, scale_argument='upscale', scales=SUPPORTED_SCALES,
    detect=plain_keys(),  # eight 3x3 extraction layers, one upsampler
    read_arguments=_read_arguments,
    key_maps={'official': AUTHORS_KEY_MAP},
    fast_path=FastLESRCNN, receptive_field=receptive_field_margin)
