"""The one key map between the LESRCNN authors' state dicts and this package's, in both directions.

Key map between the authors' names and ours (k = 1..8 indexes the IEEB stages)::

    sub_mean.shifter.{weight,bias}   <-> subtract_mean.{weight,bias}
    add_mean.shifter.{weight,bias}   <-> add_mean.{weight,bias}
    conv1.0.weight                   <-> information_extraction.shallow.weight
    conv{2k}.0.weight                <-> information_extraction.stages.{k-1}.extract.weight
    conv{2k+1}.0.weight              <-> information_extraction.stages.{k-1}.fuse.weight
    conv17_{j}.0.weight  (j = 1..4)  <-> refinement.convs.{j-1}.weight
    conv18.0.weight                  <-> refinement.to_rgb.weight
    upsample.up.body.{i}.*           <-> reconstruction.upsamplers.x{scale}.{i}.*
    upsample.up{s}.body.{i}.*        <-> reconstruction.upsamplers.x{s}.{i}.*   (multi-scale)

The forward map is written once (``KEY_MAP`` and ``UPSAMPLER_PREFIXES``); the reverse is derived from it.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch

from .archs.blocks import SUPPORTED_SCALES
from .errors import CheckpointError


def _key_pairs() -> Iterator[tuple[str, str]]:
    """(authors' name, our name) of every layer outside the upsamplers."""
    for param in ('weight', 'bias'):
        yield f'sub_mean.shifter.{param}', f'subtract_mean.{param}'
        yield f'add_mean.shifter.{param}', f'add_mean.{param}'
    yield 'conv1.0.weight', 'information_extraction.shallow.weight'
    for stage in range(8):
        yield f'conv{2 * stage + 2}.0.weight', f'information_extraction.stages.{stage}.extract.weight'
        yield f'conv{2 * stage + 3}.0.weight', f'information_extraction.stages.{stage}.fuse.weight'
    for layer in range(4):
        yield f'conv17_{layer + 1}.0.weight', f'refinement.convs.{layer}.weight'
    yield 'conv18.0.weight', 'refinement.to_rgb.weight'


#: The key map, authors' name -> ours; the reverse map is derived from it, never written twice.
KEY_MAP = dict(_key_pairs())
_REVERSE_KEY_MAP = {ours: official for official, ours in KEY_MAP.items()}
#: Upsampler key prefixes, authors' -> ours, per scale; a single-scale file names its upsampler ``up``.
UPSAMPLER_PREFIXES = {f'upsample.up{scale}.body.': f'reconstruction.upsamplers.x{scale}.' for scale in SUPPORTED_SCALES}
_SINGLE_SCALE_PREFIX = 'upsample.up.body.'


def _rename(state: Mapping[str, torch.Tensor], names: Mapping[str, str],
            prefixes: Mapping[str, str]) -> dict[str, torch.Tensor]:
    """Rename every key through ``names`` or, for upsampler weights, through ``prefixes``."""
    out = {}
    for key, value in state.items():
        new_key = names.get(key)
        if new_key is None:
            prefix = next((p for p in prefixes if key.startswith(p)), None)
            if prefix is None:
                raise CheckpointError(f'unexpected key {key!r}: it has no counterpart in the key map')
            new_key = prefixes[prefix] + key[len(prefix):]
        if new_key in out:
            raise CheckpointError(f'key {key!r} maps onto {new_key!r}, which another key already took')
        out[new_key] = value
    return out


def official_scale(state: Mapping[str, torch.Tensor]) -> int | None:
    """Scale of a single-scale official checkpoint, read from its upsampler (None if multi-scale).

    x3 is one stage to 9C channels; x2, x4 and x8 are one, two and three x2 stages (weights at
    ``body.0``, ``body.2``, ``body.4``).
    """
    first = state.get(_SINGLE_SCALE_PREFIX + '0.weight')
    if first is None:
        return None
    if first.shape[0] == 9 * first.shape[1]:
        return 3
    stages = sum(f'{_SINGLE_SCALE_PREFIX}{2 * index}.weight' in state for index in range(3))
    return 2 ** stages


def official_to_plugin(state: Mapping[str, torch.Tensor], scale: int | None = None) -> dict[str, torch.Tensor]:
    """Rename the authors' keys to this package's. ``scale`` (default: read from the weights) names a
    single-scale upsampler."""
    scale = official_scale(state) if scale is None else scale
    prefixes = dict(UPSAMPLER_PREFIXES)
    if scale is not None:
        prefixes[_SINGLE_SCALE_PREFIX] = f'reconstruction.upsamplers.x{scale}.'
    return _rename(state, KEY_MAP, prefixes)


def plugin_to_official(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename this package's keys to the authors'. Several upsamplers give the multi-scale names."""
    if any('branch3x3' in k or 'branch5x5' in k for k in state):
        raise CheckpointError('DualKernelLESRCNN has no counterpart among the authors\' checkpoints')
    scales = upsampler_scales(state)
    prefixes = {ours: official for official, ours in UPSAMPLER_PREFIXES.items()}
    if len(scales) == 1:
        prefixes = {f'reconstruction.upsamplers.x{scales[0]}.': _SINGLE_SCALE_PREFIX}
    return _rename(state, _REVERSE_KEY_MAP, prefixes)


def upsampler_scales(state: Mapping[str, torch.Tensor]) -> list[int]:
    """Scales for which a plain state dict holds upsampler weights."""
    return sorted({int(k.split('.')[2][1:]) for k in state if k.startswith('reconstruction.upsamplers.')})


__all__ = ['KEY_MAP', 'UPSAMPLER_PREFIXES', 'official_scale', 'official_to_plugin', 'plugin_to_official',
           'upsampler_scales']
