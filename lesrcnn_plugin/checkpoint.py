"""Checkpoint formats of the LESRCNN family and the strict key map to the authors' state dicts.

Formats (``detect_format`` tells them apart):

* ``official``: the authors' released state dict (``conv1.0.weight`` ... ``conv18.0.weight``,
  ``upsample.up.body.0.weight``, ``sub_mean.shifter.*``; multi-scale ``upsample.up2|up3|up4.*``);
* ``basicsr``: ``{'params': state_dict}`` (optionally ``params_ema``, preferred when present);
* ``mmagic``: ``{'meta': ..., 'state_dict': {'generator.<name>': ...}}``;
* ``plain``: this package's own state dict.

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

Every load is strict: a missing, unexpected or mis-shaped key raises ``CheckpointError`` naming it.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from .archs import build_arch
from .fileio import atomic_path

FORMATS = ('official', 'basicsr', 'mmagic', 'plain')

_OFFICIAL_TO_OURS = [
    (r'sub_mean\.shifter\.(weight|bias)', lambda m, s: f'subtract_mean.{m[1]}'),
    (r'add_mean\.shifter\.(weight|bias)', lambda m, s: f'add_mean.{m[1]}'),
    (r'conv1\.0\.weight', lambda m, s: 'information_extraction.shallow.weight'),
    (r'conv17_([1-4])\.0\.weight', lambda m, s: f'refinement.convs.{int(m[1]) - 1}.weight'),
    (r'conv18\.0\.weight', lambda m, s: 'refinement.to_rgb.weight'),
    (r'conv(\d+)\.0\.weight', lambda m, s: _stage_key(int(m[1]))),
    (r'upsample\.up\.body\.(\d+)\.(weight|bias)', lambda m, s: _upsampler_key(s, m[1], m[2])),
    (r'upsample\.up([2348])\.body\.(\d+)\.(weight|bias)', lambda m, s: f'reconstruction.upsamplers.x{m[1]}.{m[2]}.{m[3]}'),
]

_OURS_TO_OFFICIAL = [
    (r'subtract_mean\.(weight|bias)', lambda m, ms: f'sub_mean.shifter.{m[1]}'),
    (r'add_mean\.(weight|bias)', lambda m, ms: f'add_mean.shifter.{m[1]}'),
    (r'information_extraction\.shallow\.weight', lambda m, ms: 'conv1.0.weight'),
    (r'information_extraction\.stages\.(\d+)\.extract\.weight', lambda m, ms: f'conv{2 * int(m[1]) + 2}.0.weight'),
    (r'information_extraction\.stages\.(\d+)\.fuse\.weight', lambda m, ms: f'conv{2 * int(m[1]) + 3}.0.weight'),
    (r'refinement\.convs\.(\d+)\.weight', lambda m, ms: f'conv17_{int(m[1]) + 1}.0.weight'),
    (r'refinement\.to_rgb\.weight', lambda m, ms: 'conv18.0.weight'),
    (r'reconstruction\.upsamplers\.x(\d+)\.(\d+)\.(weight|bias)',
     lambda m, ms: f'upsample.{"up" + m[1] if ms else "up"}.body.{m[2]}.{m[3]}'),
]


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, recognised or loaded strictly."""


def _stage_key(index: int) -> str:
    if not 2 <= index <= 17:
        raise CheckpointError(f'conv{index} is not a layer of the authors\' LESRCNN')
    kind = 'extract' if index % 2 == 0 else 'fuse'
    return f'information_extraction.stages.{(index - 2) // 2}.{kind}.weight'


def _upsampler_key(scale: int | None, index: str, name: str) -> str:
    if scale is None:
        raise CheckpointError('a single-scale official checkpoint needs its scale (pass scale=2, 3 or 4)')
    return f'reconstruction.upsamplers.x{scale}.{index}.{name}'


def _map_keys(state: Mapping[str, torch.Tensor], rules, arg) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        for pattern, target in rules:
            match = re.fullmatch(pattern, key)
            if match:
                new_key = target(match, arg)
                break
        else:
            raise CheckpointError(f'unexpected key {key!r}: it has no counterpart in the key map')
        if new_key in out:
            raise CheckpointError(f'key {key!r} maps onto {new_key!r}, which another key already took')
        out[new_key] = value
    return out


def official_to_plugin(state: Mapping[str, torch.Tensor], scale: int | None = None) -> dict[str, torch.Tensor]:
    """Rename the authors' keys to this package's. ``scale`` names the single-scale upsampler."""
    return _map_keys(state, _OFFICIAL_TO_OURS, scale)


def plugin_to_official(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename this package's keys to the authors'. Several upsamplers give the multi-scale names."""
    upsamplers = {k.split('.')[2] for k in state if k.startswith('reconstruction.upsamplers.')}
    if any('branch3x3' in k or 'branch5x5' in k for k in state):
        raise CheckpointError('DualKernelLESRCNN has no counterpart among the authors\' checkpoints')
    return _map_keys(state, _OURS_TO_OFFICIAL, len(upsamplers) > 1)


def detect_format(checkpoint: Mapping) -> str:
    """Tell which of ``FORMATS`` a loaded checkpoint is in."""
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f'expected a dict, got {type(checkpoint).__name__}')
    if 'params_ema' in checkpoint or 'params' in checkpoint:
        return 'basicsr'
    if 'state_dict' in checkpoint:
        return 'mmagic'
    keys = list(checkpoint)
    if any(k.startswith(('conv1.', 'sub_mean.', 'upsample.')) for k in keys):
        return 'official'
    if any(k.startswith(('information_extraction.', 'subtract_mean.')) for k in keys):
        return 'plain'
    raise CheckpointError(f'unrecognised checkpoint layout (first keys: {keys[:3]})')


def _strip(prefix: str, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def to_plugin_state(checkpoint: Mapping, scale: int | None = None) -> dict[str, torch.Tensor]:
    """Any supported checkpoint (already loaded) to this package's plain state dict.

    ``scale`` names the upsampler of a single-scale official checkpoint; it is read from the weights
    when omitted.
    """
    fmt = detect_format(checkpoint)
    if fmt == 'basicsr':
        state = checkpoint['params_ema'] if 'params_ema' in checkpoint else checkpoint['params']
        return dict(state)
    if fmt == 'mmagic':
        state = _strip('generator.', checkpoint['state_dict'])
        if not state:
            raise CheckpointError('the MMagic checkpoint has no "generator." keys')
        return state
    if fmt == 'official':
        return official_to_plugin(checkpoint, official_scale(checkpoint) if scale is None else scale)
    return dict(checkpoint)


def upsampler_scales(state: Mapping[str, torch.Tensor]) -> list[int]:
    """Scales for which a plain state dict holds upsampler weights."""
    return sorted({int(k.split('.')[2][1:]) for k in state if k.startswith('reconstruction.upsamplers.')})


def infer_arch(state: Mapping[str, torch.Tensor], variant: str | None = None) -> tuple[str, dict]:
    """Guess the network name and constructor arguments from a plain state dict.

    ``variant`` overrides the guess; it is required for the ablations ``ieeb_rb``, ``ieeb`` and
    ``hn``, which hold the same weights and differ only in their forward pass.
    """
    scales = upsampler_scales(state)
    if not scales:
        raise CheckpointError('no upsampler weights found: cannot tell the scale')
    shallow = state.get('information_extraction.shallow.weight')
    if shallow is None:
        raise CheckpointError("no 'information_extraction.shallow.weight': cannot tell the width")
    # Only a non-default width is passed, so the guess reads like the constructor call one would write.
    width = {} if shallow.shape[0] == 64 else {'num_feat': shallow.shape[0]}
    if any('branch5x5' in k for k in state):
        return 'DualKernelLESRCNN', {'upscale': scales[0], **width}
    if variant is None:
        fuse_shape = state.get('information_extraction.stages.0.fuse.weight')
        if fuse_shape is not None and fuse_shape.shape[-1] == 3:
            variant = 'sn'
        elif any(k.startswith('refinement.convs.') for k in state):
            variant = 'full'
        else:
            raise CheckpointError('an ablation checkpoint without an IRB (ieeb_rb, ieeb or hn): pass the variant')
    if len(scales) > 1:
        return 'MultiScaleLESRCNN', {'scales': scales, 'default_scale': scales[0], 'variant': variant, **width}
    return 'LESRCNN', {'upscale': scales[0], 'variant': variant, **width}


def model_from_state(state: Mapping[str, torch.Tensor], arch: str | None = None, variant: str | None = None,
                     **arch_kwargs) -> nn.Module:
    """Build the network a plain state dict describes and load it strictly.

    ``arch``, ``variant`` and ``arch_kwargs`` override what ``infer_arch`` reads from the weights.
    """
    name, kwargs = infer_arch(state, variant)
    if arch is not None and arch != name:
        # Another class for the same weights (e.g. a single-scale LESRCNN as MultiScaleLESRCNN): the
        # scales and the width still come from the weights.
        scales = upsampler_scales(state)
        size = ({'scales': scales, 'default_scale': scales[0]} if arch == 'MultiScaleLESRCNN'
                else {'upscale': scales[0]})
        kwargs = {**size, **({'num_feat': kwargs['num_feat']} if 'num_feat' in kwargs else {}),
                  **({'variant': variant} if variant is not None else {})}
        name = arch
    kwargs.update(arch_kwargs)
    model = build_arch(name, **kwargs)
    load_strict(model, state)
    return model


def load_strict(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """``load_state_dict(strict=True)`` with an error naming each missing, extra or mis-shaped key."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    shapes = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}'
              for k in expected if k in state and state[k].shape != expected[k].shape]
    problems = ([f'missing key {k!r}' for k in missing] + [f'unexpected key {k!r}' for k in extra]
                + [f'mis-shaped key {s}' for s in shapes])
    if problems:
        raise CheckpointError(f'weights do not fit {type(model).__name__}: ' + '; '.join(problems))
    model.load_state_dict(state, strict=True)


def read_checkpoint(path: str | os.PathLike) -> Mapping:
    """``torch.load`` on the CPU with ``weights_only=True``, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'{path}: no such checkpoint file')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        raise CheckpointError(f'{path}: cannot read checkpoint ({exc})') from exc


def load_model(path: str | os.PathLike, arch: str | None = None, variant: str | None = None,
               **arch_kwargs) -> nn.Module:
    """Build the network a checkpoint file holds (any format), load its weights strictly, set eval mode.

    ``arch``, ``variant`` and ``arch_kwargs`` (e.g. ``upscale=3``) override what the weights tell.
    """
    checkpoint = read_checkpoint(path)
    try:
        state = to_plugin_state(checkpoint)
        return model_from_state(state, arch, variant, **arch_kwargs).eval()
    except (CheckpointError, KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f'{path}: {exc}') from exc


def official_scale(state: Mapping[str, torch.Tensor]) -> int | None:
    """Scale of a single-scale official checkpoint, read from its upsampler (None if multi-scale)."""
    first = state.get('upsample.up.body.0.weight')
    if first is None:
        return None
    channels = first.shape[1]
    if first.shape[0] == 9 * channels:
        return 3
    return 4 if 'upsample.up.body.2.weight' in state else 2


def save_checkpoint(state: Mapping[str, torch.Tensor], path: str | os.PathLike, fmt: str,
                    meta: dict | None = None) -> None:
    """Write a plain state dict in ``fmt``, atomically (temporary file, then rename)."""
    if fmt not in FORMATS:
        raise CheckpointError(f'unknown format {fmt!r}; choose one of {FORMATS}')
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    if fmt == 'official':
        payload: dict = plugin_to_official(state)
    elif fmt == 'basicsr':
        payload = {'params': state}
    elif fmt == 'mmagic':
        payload = {'meta': dict(meta or {}), 'state_dict': {f'generator.{k}': v for k, v in state.items()}}
    else:
        payload = state
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


__all__ = ['CheckpointError', 'FORMATS', 'detect_format', 'infer_arch', 'load_model', 'load_strict',
           'model_from_state', 'upsampler_scales', 'official_scale', 'official_to_plugin', 'plugin_to_official',
           'read_checkpoint', 'save_checkpoint', 'to_plugin_state']
