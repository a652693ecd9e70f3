"""Checkpoints of the LESRCNN family: one loader, formats described as data, one strict key map.

Reading any file goes the same way (``load_model`` and ``load_weights`` are the only entry points the
tools and integrations use):

1. ``read_checkpoint``: the file is unpickled as inert data (``lesrcnn_plugin.safe_load``): nothing
   read from a file ever runs code.
2. ``canonical_state``: containers and wrapper prefixes are unwrapped the way spandrel canonicalises
   state dicts: ``params_ema`` (preferred), ``params``, ``state_dict``, ``model``, ``net``, then the
   ``module.`` (DataParallel/DDP) and ``generator.`` (MMagic) prefixes.
3. The key layout is recognised by the distinctive keys it must have (``LAYOUTS``): the authors'
   (``official``) names are renamed to this package's (``plain``) through ``KEY_MAP``.
4. ``infer_arch`` reads the network, its scales, width and variant from the weights; the network is
   built and the weights loaded strictly (``load_strict``): a missing, unexpected, mis-shaped or
   non-finite tensor raises ``CheckpointError`` naming it, and the file.

Writing (``save_checkpoint``) uses the same tables: each of ``FILE_FORMATS`` is a container key, a
key prefix and a layout.

The key map between the authors' names and ours is ``lesrcnn_plugin.key_map``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from torch import nn

from .archs import build_arch
from .errors import CheckpointError
from .fileio import atomic_path
from .key_map import KEY_MAP, official_scale, official_to_plugin, plugin_to_official, upsampler_scales


@dataclasses.dataclass(frozen=True)
class FileFormat:
    """How one framework stores the weights: ``{container: {prefix + key: tensor}}`` in ``layout`` names.

    Attributes:
        containers: Keys the state dict sits under, the one written first (none: a bare state dict).
        prefix: Prefix of every weight key inside the container.
        layout: Key names, one of ``LAYOUTS``.
    """
    containers: tuple[str, ...]
    prefix: str
    layout: str


FILE_FORMATS = {
    'official': FileFormat((), '', 'official'),                   # the authors' released files
    'basicsr': FileFormat(('params', 'params_ema'), '', 'plain'),  # BasicSR's net_g_*.pth
    'mmagic': FileFormat(('state_dict',), 'generator.', 'plain'),  # mmengine/MMagic checkpoints
    'plain': FileFormat((), '', 'plain'),                          # this package's state dict
}
FORMATS = tuple(FILE_FORMATS)

#: Containers unwrapped when reading, in order of preference (BasicSR's EMA weights before its raw ones).
CONTAINERS = ('params_ema', 'params', 'state_dict', 'model', 'net')
#: Prefixes that wrappers put before every key of the network: DataParallel/DDP, then MMagic's model.
PREFIXES = ('module.', 'generator.')
#: Key layouts, each named by keys only it has (spandrel's ``KeyCondition.has_all`` in spirit).
LAYOUTS = {
    'official': ('conv1.0.weight', 'conv18.0.weight', 'sub_mean.shifter.weight'),
    'plain': ('information_extraction.shallow.weight', 'refinement.to_rgb.weight', 'subtract_mean.weight'),
}


def _unwrap(checkpoint: Mapping) -> tuple[str | None, Mapping]:
    """(container found or None, the mapping inside it)."""
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f'expected a dict of tensors, got {type(checkpoint).__name__}')
    for container in CONTAINERS:
        inner = checkpoint.get(container)
        if isinstance(inner, Mapping):
            return container, inner
    return None, checkpoint


def _strip_prefixes(state: Mapping) -> tuple[str, dict]:
    """(prefixes removed, the keys that carried them, without them); other keys are dropped."""
    removed = ''
    state = dict(state)
    for prefix in PREFIXES:
        if any(isinstance(k, str) and k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items() if isinstance(k, str) and k.startswith(prefix)}
            removed += prefix
    return removed, state


def _layout(state: Mapping) -> str:
    for name, keys in LAYOUTS.items():
        if all(key in state for key in keys):
            return name
    raise CheckpointError(f'not a LESRCNN-family checkpoint: none of the known key layouts fits '
                          f'(first keys: {list(state)[:3]})')


def detect_format(checkpoint: Mapping) -> str:
    """Which of ``FORMATS`` a loaded checkpoint is in (a foreign container is named by its layout)."""
    container, state = _unwrap(checkpoint)
    layout = _layout(_strip_prefixes(state)[1])
    for name, fmt in FILE_FORMATS.items():
        if container in fmt.containers and fmt.layout == layout:
            return name
    return layout


def canonical_state(checkpoint: Mapping) -> tuple[str, dict[str, torch.Tensor]]:
    """(layout, state dict) of any loaded checkpoint: containers and wrapper prefixes removed."""
    _, state = _unwrap(checkpoint)
    _, state = _strip_prefixes(state)
    if not state:
        raise CheckpointError('the checkpoint holds no weights')
    return _layout(state), state


def to_plugin_state(checkpoint: Mapping) -> dict[str, torch.Tensor]:
    """Any supported checkpoint (already loaded) to this package's plain state dict."""
    layout, state = canonical_state(checkpoint)
    return official_to_plugin(state) if layout == 'official' else state


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
        fuse = state.get('information_extraction.stages.0.fuse.weight')
        if fuse is not None and fuse.shape[-1] == 3:
            variant = 'sn'
        elif any(k.startswith('refinement.convs.') for k in state):
            variant = 'full'
        else:
            raise CheckpointError('an ablation checkpoint without an IRB (ieeb_rb, ieeb or hn): pass the variant')
    if len(scales) > 1:
        return 'MultiScaleLESRCNN', {'scales': scales, 'default_scale': scales[0], 'variant': variant, **width}
    return 'LESRCNN', {'upscale': scales[0], 'variant': variant, **width}


def model_from_state(state: Mapping[str, torch.Tensor], arch: str | None = None, scale: int | None = None,
                     variant: str | None = None) -> nn.Module:
    """Build the network a plain state dict describes, load it strictly, set eval mode.

    Args:
        state: A plain state dict (``to_plugin_state``).
        arch: Network class to build (default: read from the weights). Another class for the same
            weights keeps the scales and the width of the weights.
        scale: Scale the network runs by default. A multi-scale network must have it; a single-scale
            one is built for it, so weights of another scale are refused naming the missing key.
        variant: LESRCNN ablation; needed for the ablations without an IRB.
    """
    name, kwargs = infer_arch(state, variant)
    if arch is not None and arch != name:
        scales = upsampler_scales(state)
        size = ({'scales': scales, 'default_scale': scales[0]} if arch == 'MultiScaleLESRCNN'
                else {'upscale': scales[0]})
        kwargs = {**size, **{key: kwargs[key] for key in ('num_feat',) if key in kwargs},
                  **({'variant': variant} if variant is not None else {})}
        name = arch
    if scale is not None:
        if 'scales' in kwargs and scale not in kwargs['scales']:
            raise CheckpointError(f'the network has upsamplers for scales {tuple(kwargs["scales"])}, not x{scale}')
        kwargs['default_scale' if 'scales' in kwargs else 'upscale'] = scale
    model = build_arch(name, **kwargs)
    load_strict(model, state)
    return model.eval()


def load_strict(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """``load_state_dict(strict=True)`` with an error naming each missing, extra, mis-shaped or
    non-finite tensor (NaN or Inf weights would upscale to black or wrong images silently)."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    shapes = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}'
              for k in expected if k in state and state[k].shape != expected[k].shape]
    problems = ([f'missing key {k!r}' for k in missing] + [f'unexpected key {k!r}' for k in extra]
                + [f'mis-shaped key {s}' for s in shapes])
    if problems:
        raise CheckpointError(f'weights do not fit {type(model).__name__}: ' + '; '.join(problems))
    non_finite = non_finite_keys(state)
    if non_finite:
        raise CheckpointError(f'non-finite weights (NaN or Inf) in {", ".join(non_finite)}')
    model.load_state_dict(state, strict=True)


def non_finite_keys(state: Mapping[str, torch.Tensor]) -> list[str]:
    """The keys of the floating-point tensors of ``state`` holding a NaN or an Inf."""
    return [key for key, value in state.items()
            if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all()]


def read_checkpoint(path: str | os.PathLike) -> Mapping:
    """Read a checkpoint file as inert data, on the CPU, with errors that name the file."""
    from .safe_load import load_untrusted

    return load_untrusted(path)


def is_family_checkpoint(checkpoint: Mapping) -> bool:
    """Whether a loaded checkpoint holds LESRCNN-family weights in one of the known layouts."""
    try:
        detect_format(checkpoint)
    except CheckpointError:
        return False
    return True


def model_from_checkpoint(checkpoint: Mapping, path: str | os.PathLike, arch: str | None = None,
                          scale: int | None = None, variant: str | None = None) -> nn.Module:
    """``model_from_state`` for a checkpoint already read from ``path``; errors name ``path``."""
    with _naming(Path(path)):
        return model_from_state(to_plugin_state(checkpoint), arch, scale, variant)


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Re-raise a problem with the weights as one ``CheckpointError`` naming the file."""
    try:
        yield
    except (CheckpointError, KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f'{path}: {exc}') from None


@dataclasses.dataclass
class LoadedCheckpoint:
    """A network built from a checkpoint file, and where and in which format it was found."""
    model: nn.Module
    path: Path
    format: str


def resolve_source(source: str | os.PathLike) -> Path:
    """A checkpoint file, or the cached file of a registered weights name (downloaded on first use)."""
    from .weights import resolve_weights

    if not os.fspath(source):  # Path('') is '.', the current folder
        raise CheckpointError("'': an empty name is neither a checkpoint file nor a weights name")
    path = resolve_weights(source)
    if path.is_dir():
        raise CheckpointError(f'{path}: is a folder, not a checkpoint file')
    return path


def load_checkpoint(source: str | os.PathLike, arch: str | None = None, scale: int | None = None,
                    variant: str | None = None) -> LoadedCheckpoint:
    """``load_model``, also telling the file and its format (what ``lesrcnn-convert`` reports)."""
    path = resolve_source(source)
    checkpoint = read_checkpoint(path)
    with _naming(path):
        fmt = detect_format(checkpoint)
        return LoadedCheckpoint(model_from_state(to_plugin_state(checkpoint), arch, scale, variant), path, fmt)


def load_model(source: str | os.PathLike, arch: str | None = None, scale: int | None = None,
               variant: str | None = None) -> nn.Module:
    """Build the network a checkpoint holds (any format), load its weights strictly; eval mode, CPU.

    Args:
        source: A checkpoint file (the authors', BasicSR ``net_g_*.pth``, MMagic ``iter_*.pth``, a
            plain state dict) or a registered weights name such as ``'lesrcnn_x2'``.
        arch, scale, variant: As for ``model_from_state``; read from the weights when omitted.
    """
    return load_checkpoint(source, arch, scale, variant).model


def load_weights(model: nn.Module, source: str | os.PathLike, strict: bool = True,
                 containers: tuple[str, ...] = ()) -> Path:
    """Load a checkpoint (any format, or a weights name) into an existing network; returns its file.

    Args:
        model: The network to fill.
        source: A checkpoint file or a registered weights name.
        strict: Refuse missing, unexpected and mis-shaped keys (``load_strict``); otherwise load what
            fits, as ``load_state_dict(strict=False)``.
        containers: Containers to take the weights from, first found first (BasicSR's
            ``param_key``); their state dict is taken as it is, so that networks outside the family
            load too. A file with none of them is read as ``to_plugin_state`` reads it.
    """
    path = resolve_source(source)
    checkpoint = read_checkpoint(path)
    with _naming(path):
        found = next((c for c in containers if isinstance(checkpoint.get(c), Mapping)), None)
        state = _strip_prefixes(checkpoint[found])[1] if found else to_plugin_state(checkpoint)
        if strict:
            load_strict(model, state)
        else:
            model.load_state_dict(state, strict=False)
    return path


def save_checkpoint(state: Mapping[str, torch.Tensor], path: str | os.PathLike, fmt: str,
                    meta: dict | None = None) -> None:
    """Write a plain state dict in ``fmt`` (one of ``FORMATS``), atomically.

    ``meta`` is stored beside the weights in the formats that have a place for it (MMagic's ``meta``).

    Raises:
        OSError: naming ``path``, when it cannot be written (a full disk, a read-only folder); no
            temporary file is left behind.
    """
    if fmt not in FILE_FORMATS:
        raise CheckpointError(f'unknown format {fmt!r}; choose one of {FORMATS}')
    spec = FILE_FORMATS[fmt]
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    if spec.layout == 'official':
        state = plugin_to_official(state)
    payload: dict = {spec.prefix + k: v for k, v in state.items()}
    if spec.containers:
        payload = {spec.containers[0]: payload}
        if fmt == 'mmagic':
            payload['meta'] = dict(meta or {})
    # Serialised in memory (a few MB for this family) and written by Python: torch.save's own file
    # writer reports a full disk as a RuntimeError without errno or file name.
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())


__all__ = ['CONTAINERS', 'CheckpointError', 'FILE_FORMATS', 'FORMATS', 'FileFormat', 'KEY_MAP', 'LAYOUTS',
           'LoadedCheckpoint', 'PREFIXES', 'canonical_state', 'detect_format', 'infer_arch', 'is_family_checkpoint',
           'load_checkpoint', 'load_model', 'load_strict', 'load_weights', 'model_from_checkpoint', 'model_from_state',
           'non_finite_keys', 'official_scale', 'official_to_plugin',
           'plugin_to_official', 'read_checkpoint', 'resolve_source', 'save_checkpoint', 'to_plugin_state',
           'upsampler_scales']
