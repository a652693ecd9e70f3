"""Key layouts: which network a state dict holds, and its keys renamed between layouts, strictly.

Each network's spec (``archs.NetworkSpec``) says how to recognise its own layout (``detect``) and maps
every other layout its checkpoints come in (``key_maps``, e.g. ``'official'``: the authors' code; the
LESRCNN family's is ``archs.family.authors_key_map``). This module applies those declarations:

* ``identify``: the network and layout of a state dict, and the dict in this package's layout;
* ``layout_to_plain`` / ``plain_to_layout``: renaming through a spec's ``KeyMap``, in either direction.
  Every key must have a counterpart; a key that has none, or two keys meeting one name, raise
  ``CheckpointError`` naming them.

The forward map is written once per layout (``KeyMap.names`` and ``KeyMap.per_scale``); the reverse
is derived from it.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch

from .archs.spec import PLAIN, KeyMap, NetworkSpec, network_specs
from .errors import CheckpointError

OFFICIAL = 'official'


def _rename(state: Mapping[str, torch.Tensor], names: Mapping[str, str],
            prefixes: Mapping[str, str]) -> dict[str, torch.Tensor]:
    """Rename every key through ``names`` or, for per-scale layers, through ``prefixes``."""
    out = {}
    for key, value in state.items():
        new_key = names.get(key)
        if new_key is None:
            prefix = next((p for p in prefixes if isinstance(key, str) and key.startswith(p)), None)
            if prefix is None:
                raise CheckpointError(f'unexpected key {key!r}: it has no counterpart in the key map')
            new_key = prefixes[prefix] + key[len(prefix):]
        if new_key in out:
            raise CheckpointError(f'key {key!r} maps onto {new_key!r}, which another key already took')
        out[new_key] = value
    return out


def _per_scale(key_map: KeyMap, scales: tuple[int, ...]) -> dict[str, str]:
    """Their per-scale prefix -> ours, for every scale."""
    theirs, ours = key_map.per_scale
    return {theirs.format(scale=scale): ours.format(scale=scale) for scale in scales}


def _to_plain(state: Mapping[str, torch.Tensor], spec: NetworkSpec, key_map: KeyMap,
              scale: int | None) -> dict[str, torch.Tensor]:
    prefixes = _per_scale(key_map, spec.scales)
    scale = key_map.read_single_scale(state) if scale is None else scale
    if scale is not None and key_map.single_scale is not None:
        prefixes[key_map.single_scale] = key_map.per_scale[1].format(scale=scale)
    return _rename(state, key_map.names, prefixes)


def detect_network(state: Mapping[str, torch.Tensor]) -> NetworkSpec | None:
    """The spec of the network a state dict in this package's layout holds (the first that detects it)."""
    return next((spec for spec in network_specs() if spec.detect(state)), None)


def _claiming(state: Mapping, layout: str) -> list[tuple[NetworkSpec, KeyMap]]:
    """The specs mapping ``layout`` whose distinctive keys ``state`` has all of."""
    return [(spec, spec.key_maps[layout]) for spec in network_specs() if layout in spec.key_maps
            and all(key in state for key in spec.key_maps[layout].distinctive)]


def layout_to_plain(state: Mapping[str, torch.Tensor], layout: str,
                    scale: int | None = None) -> dict[str, torch.Tensor]:
    """Rename a state dict in ``layout`` to this package's names.

    Every spec mapping ``layout`` whose distinctive keys the state has is tried in turn; the renaming
    one of them detects is returned (else the first that renames at all). ``scale`` (default: read
    from the weights) names the per-scale layers of a single-scale file.
    """
    problems, renamed = [], []
    for spec, key_map in _claiming(state, layout):
        try:
            plain = _to_plain(state, spec, key_map, scale)
        except CheckpointError as exc:
            problems.append(exc)
            continue
        if spec.detect(plain):
            return plain
        renamed.append(plain)
    if renamed:
        return renamed[0]
    if problems:
        raise problems[0]
    raise CheckpointError(f'the keys are not in the {layout!r} layout of any network (first keys: {list(state)[:3]})')


def plain_to_layout(state: Mapping[str, torch.Tensor], layout: str) -> dict[str, torch.Tensor]:
    """Rename a state dict in this package's names to ``layout``; a network without that layout is refused.

    Several per-scale layers (a multi-scale network) keep their scale in the name; one takes the
    layout's single-scale name when it has one.
    """
    spec = detect_network(state)
    if spec is None:
        raise CheckpointError(f'not a state dict of a registered network (first keys: {list(state)[:3]})')
    key_map = spec.key_maps.get(layout)
    if key_map is None:
        raise CheckpointError(f'{spec.name} has no counterpart in the {layout!r} layout')
    theirs, ours = key_map.per_scale
    present = [scale for scale in spec.scales if any(key.startswith(ours.format(scale=scale)) for key in state)]
    prefixes = {plain: other for other, plain in _per_scale(key_map, spec.scales).items()}
    if len(present) == 1 and key_map.single_scale is not None:
        prefixes = {ours.format(scale=present[0]): key_map.single_scale}
    return _rename(state, {plain: other for other, plain in key_map.names.items()}, prefixes)


def identify(state: Mapping[str, torch.Tensor]) -> tuple[NetworkSpec, str, dict[str, torch.Tensor]]:
    """(spec, layout, the state in this package's layout) of a state dict without containers or prefixes."""
    spec = detect_network(state)
    if spec is not None:
        return spec, PLAIN, dict(state)
    layouts = dict.fromkeys(layout for spec in network_specs() for layout in spec.key_maps)
    for layout in layouts:
        if _claiming(state, layout):
            plain = layout_to_plain(state, layout)
            spec = detect_network(plain)
            if spec is None:
                raise CheckpointError(f'keys in the {layout!r} layout that fit none of the networks (first keys: '
                                      f'{list(state)[:3]})')
            return spec, layout, plain
    raise CheckpointError(f'not a LESRCNN-family checkpoint: none of the known key layouts fits '
                          f'(first keys: {list(state)[:3]})')


def official_to_plugin(state: Mapping[str, torch.Tensor], scale: int | None = None) -> dict[str, torch.Tensor]:
    """Rename the authors' keys to this package's (``layout_to_plain`` for ``'official'``)."""
    return layout_to_plain(state, OFFICIAL, scale)


def plugin_to_official(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename this package's keys to the authors' (``plain_to_layout`` for ``'official'``)."""
    return plain_to_layout(state, OFFICIAL)


def official_scale(state: Mapping[str, torch.Tensor]) -> int | None:
    """Scale of a single-scale file of the authors, read from its weights (None if multi-scale)."""
    return next((key_map.read_single_scale(state) for _, key_map in _claiming(state, OFFICIAL)), None)


__all__ = ['OFFICIAL', 'detect_network', 'identify', 'layout_to_plain', 'official_scale', 'official_to_plugin',
           'plain_to_layout', 'plugin_to_official']
