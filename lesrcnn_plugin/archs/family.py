"""The pieces of a ``NetworkSpec`` that every network built on ``LESRCNNBody`` shares: its layout's
distinctive keys, how its hyper-parameters are read from weights, the key map to the authors'
layout, its receptive field. Each ``*_arch.py`` composes its ``SPEC`` from them.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable

import torch
from torch import nn

from ..errors import CheckpointError
from .blocks import SUPPORTED_SCALES, VARIANTS
from .spec import KeyMap, StateDict, spec_of

_UPSAMPLER_KEY = re.compile(r'reconstruction\.upsamplers\.x(\d+)\.')


def upsampler_scales(state: StateDict) -> list[int]:
    """Scales for which a state dict in this package's layout holds upsampler weights."""
    found = (_UPSAMPLER_KEY.match(key) for key in state if isinstance(key, str))
    return sorted({int(match.group(1)) for match in found if match})


def plain_keys(num_stages: int = 8, extraction: str = 'extract.weight',
               several_scales: bool = False) -> Callable[[StateDict], bool]:
    """The detector of a network's own layout: the mean shift, the shallow layer, the last IEEB stage's
    extraction layer (its key ends in ``extraction``), no stage after it, the projection to RGB, and
    one upsampler (``several_scales``: two or more). The IRB's convolutions are not required, so that
    the ablations without one are claimed too."""
    required = ('subtract_mean.weight', 'information_extraction.shallow.weight',
                f'information_extraction.stages.{num_stages - 1}.{extraction}', 'refinement.to_rgb.weight')
    beyond = f'information_extraction.stages.{num_stages}.'

    def detect(state: StateDict) -> bool:
        if not all(key in state for key in required):
            return False
        if any(isinstance(key, str) and key.startswith(beyond) for key in state):
            return False
        count = len(upsampler_scales(state))
        return count > 1 if several_scales else count == 1

    return detect


def read_scales(state: StateDict) -> list[int]:
    scales = upsampler_scales(state)
    if not scales:
        raise CheckpointError('no upsampler weights found: cannot tell the scale')
    return scales


def read_width(state: StateDict, default: int = 64) -> dict:
    """``{'num_feat': width}`` when the weights' width is not the constructor's default (so that the
    arguments read like the constructor call one would write), else ``{}``."""
    shallow = state.get('information_extraction.shallow.weight')
    if shallow is None:
        raise CheckpointError("no 'information_extraction.shallow.weight': cannot tell the width")
    return {} if shallow.shape[0] == default else {'num_feat': shallow.shape[0]}


def read_variant(state: StateDict, variant: str | None) -> str:
    """The ablation of ``blocks.VARIANTS`` the weights hold; ``variant`` when given. ``ieeb_rb``,
    ``ieeb`` and ``hn`` hold the same weights (they differ in their forward pass): those need it given."""
    if variant is not None:
        return variant
    fuse = state.get('information_extraction.stages.0.fuse.weight')
    if fuse is not None and fuse.shape[-1] == VARIANTS['sn']['fuse_kernel']:
        return 'sn'
    if any(isinstance(key, str) and key.startswith('refinement.convs.') for key in state):
        return 'full'
    raise CheckpointError('an ablation checkpoint without an IRB (ieeb_rb, ieeb or hn): pass the variant')


# ------------------------------------------------------------------------------ the authors' layout

_AUTHORS_SINGLE_SCALE = 'upsample.up.body.'


def authors_single_scale(state: StateDict) -> int | None:
    """Scale of a single-scale file of the authors, read from its upsampler (None if multi-scale).

    x3 is one stage to 9C channels; x2, x4 and x8 are one, two and three x2 stages (weights at
    ``body.0``, ``body.2``, ``body.4``).
    """
    first = state.get(_AUTHORS_SINGLE_SCALE + '0.weight')
    if not isinstance(first, torch.Tensor) or first.dim() != 4:
        return None
    if first.shape[0] == 9 * first.shape[1]:
        return 3
    return 2 ** sum(f'{_AUTHORS_SINGLE_SCALE}{2 * index}.weight' in state for index in range(3))


def authors_key_map(num_stages: int = 8, refinement_layers: int = 4) -> KeyMap:
    """The authors' names (https://github.com/hellloxiaotian/LESRCNN) against ours, k = 1..num_stages::

        sub_mean.shifter.{weight,bias}   <-> subtract_mean.{weight,bias}
        add_mean.shifter.{weight,bias}   <-> add_mean.{weight,bias}
        conv1.0.weight                   <-> information_extraction.shallow.weight
        conv{2k}.0.weight                <-> information_extraction.stages.{k-1}.extract.weight
        conv{2k+1}.0.weight              <-> information_extraction.stages.{k-1}.fuse.weight
        conv17_{j}.0.weight  (j = 1..4)  <-> refinement.convs.{j-1}.weight
        conv18.0.weight                  <-> refinement.to_rgb.weight
        upsample.up.body.{i}.*           <-> reconstruction.upsamplers.x{scale}.{i}.*
        upsample.up{s}.body.{i}.*        <-> reconstruction.upsamplers.x{s}.{i}.*   (multi-scale)

    (``conv17_j`` and ``conv18`` follow the last IEEB layer, ``conv17``: with fewer stages they are
    numbered after it.)
    """
    names = {}
    for param in ('weight', 'bias'):
        names[f'sub_mean.shifter.{param}'] = f'subtract_mean.{param}'
        names[f'add_mean.shifter.{param}'] = f'add_mean.{param}'
    names['conv1.0.weight'] = 'information_extraction.shallow.weight'
    for stage in range(num_stages):
        names[f'conv{2 * stage + 2}.0.weight'] = f'information_extraction.stages.{stage}.extract.weight'
        names[f'conv{2 * stage + 3}.0.weight'] = f'information_extraction.stages.{stage}.fuse.weight'
    last = 2 * num_stages + 1
    for layer in range(refinement_layers):
        names[f'conv{last}_{layer + 1}.0.weight'] = f'refinement.convs.{layer}.weight'
    names[f'conv{last + 1}.0.weight'] = 'refinement.to_rgb.weight'
    return KeyMap(names, per_scale=('upsample.up{scale}.body.', 'reconstruction.upsamplers.x{scale}.'),
                  single_scale=_AUTHORS_SINGLE_SCALE, read_single_scale=authors_single_scale,
                  distinctive=('sub_mean.shifter.weight', 'conv1.0.weight', f'conv{last}.0.weight',
                               f'conv{last + 1}.0.weight'))


#: The authors' layout of the eight-stage networks (LESRCNN and LESRCNN-S).
AUTHORS_KEY_MAP = authors_key_map()


# ---------------------------------------------------------------------------------- receptive field


def _half_kernel(layer: nn.Module, parallel: Callable[[nn.Module], tuple[nn.Module, ...]]) -> int:
    """Pixels a layer reaches on each side: k // 2 for a convolution, the widest of parallel ones."""
    reaches = []
    for conv in parallel(layer):
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f'no receptive-field rule for {type(conv).__name__}')
        if conv.dilation != (1, 1) or conv.stride != (1, 1):
            raise ValueError('the receptive field assumes stride-1, undilated convolutions')
        reaches.append(max(conv.kernel_size) // 2)
    return max(reaches)


def receptive_field_margin(model: nn.Module, scale: int) -> int:
    """Receptive-field radius of a ``LESRCNNBody`` network in LR pixels: the smallest safe tile overlap.

    Counted from the layers, each stride-1 convolution adding ``kernel // 2`` pixels on its own grid
    (parallel convolutions, as the spec's ``parallel_convolutions`` gives them: the widest):

    * LR grid: the mean shift (1x1, 0), the IEEB's shallow 3x3 layer and, per stage, the extraction
      layer (3x3: 1; dual-kernel 3x3+5x5: 2) and the fusing layer (1x1: 0; 3x3 in the SN ablation: 1);
    * the RB upsampler: 1 per 3x3 convolution, counted as a full LR pixel (the second x2 stage of x4
      runs at twice the LR resolution, so this over-counts by half a pixel: a safe bound);
    * HR grid: the IRB's 3x3 layers and its 3x3 projection to RGB (the output mean shift is 1x1), ``r``
      HR pixels in all, which is ``ceil(r / scale)`` LR pixels.

    For LESRCNN: 1 + 8 + 1 + ceil(5/2) = 13 at x2, 1 + 8 + 1 + ceil(5/3) = 12 at x3, 1 + 8 + 2 +
    ceil(5/4) = 13 at x4.
    """
    parallel = spec_of(model).parallel_convolutions
    extraction = model.information_extraction
    lr_layers = [extraction.shallow, *(layer for stage in extraction.stages for layer in (stage.extract, stage.fuse)),
                 *(layer for layer in model.reconstruction.upsamplers[f'x{scale}'] if isinstance(layer, nn.Conv2d))]
    hr_layers = [*model.refinement.convs, model.refinement.to_rgb]
    lr_margin = sum(_half_kernel(layer, parallel) for layer in lr_layers)
    hr_margin = sum(_half_kernel(layer, parallel) for layer in hr_layers)
    return lr_margin + math.ceil(hr_margin / scale)


__all__ = ['AUTHORS_KEY_MAP', 'SUPPORTED_SCALES', 'authors_key_map', 'authors_single_scale', 'plain_keys',
           'read_scales', 'read_variant', 'read_width', 'receptive_field_margin', 'upsampler_scales']
