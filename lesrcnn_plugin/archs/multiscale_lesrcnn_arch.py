"""LESRCNN-S: one LESRCNN with an upsampler per scale, the scale chosen per call.

The multi-scale model of Tian et al., "Lightweight Image Super-Resolution with Enhanced CNN",
Knowledge-Based Systems 2020 (the authors' ``multi_scale`` option: upsamplers ``up2``, ``up3``,
``up4`` sharing one IEEB and one IRB).
"""
from __future__ import annotations

from collections.abc import Sequence

from .blocks import DIV2K_RGB_MEAN, LESRCNNBody
from .family import (AUTHORS_KEY_MAP, SUPPORTED_SCALES, plain_keys, read_scales, read_variant, read_width,
                     receptive_field_margin)
from .fast import FastLESRCNN
from .spec import NetworkSpec


class MultiScaleLESRCNN(LESRCNNBody):
    """LESRCNN-S: shared IEEB and IRB, one sub-pixel upsampler for each of ``scales``.

    ``forward(x, scale=None)`` upsamples by ``scale``; ``None`` uses ``default_scale``, so that a
    framework calling ``net(lq)`` works, and a trainer can switch scales by setting
    ``net.default_scale`` or passing ``scale``.

    Args:
        scales: Scales to build upsamplers for.
        default_scale: Scale used when ``forward`` is given none; must be one of ``scales``.
        num_feat: Feature channels (64 in the paper).
        variant: ``'full'`` or an ablation, as for ``LESRCNN``.
        rgb_mean: Mean subtracted from the input and added back to the output.

    Input: (N, 3, H, W) RGB in [0, 1]. Output: (N, 3, scale*H, scale*W).
    """

    def __init__(self, scales: Sequence[int] = (2, 3, 4), default_scale: int = 2, num_feat: int = 64,
                 variant: str = 'full', rgb_mean: Sequence[float] = DIV2K_RGB_MEAN) -> None:
        super().__init__(scales=scales, default_scale=default_scale, num_feat=num_feat, variant=variant,
                         rgb_mean=rgb_mean)


def _read_arguments(state, variant: str | None) -> dict:
    scales = read_scales(state)
    return {'scales': scales, 'default_scale': scales[0], 'variant': read_variant(state, variant),
            **read_width(state)}


SPEC = NetworkSpec(
    MultiScaleLESRCNN, scale_argument='default_scale', scales_argument='scales', scales=SUPPORTED_SCALES,
    detect=plain_keys(several_scales=True),  # as LESRCNN, with two upsamplers or more
    read_arguments=_read_arguments,
    key_maps={'official': AUTHORS_KEY_MAP},  # the authors' multi_scale option: upsample.up2, up3, up4
    fast_path=FastLESRCNN, receptive_field=receptive_field_margin)
