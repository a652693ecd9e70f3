"""Checkpoints of the LESRCNN family: one loader and one writer, formats described as data.

``FILE_FORMATS`` is the one table of how weights sit in a file: under which container key, with
which key prefix, in which key layout, with which metadata. Reading and writing both follow it,
and so does spandrel's detection (``lesrcnn_plugin.spandrel``).

Reading any file goes the same way (``load_model`` and ``load_weights`` are the only entry points the
tools and integrations use):

1. ``read_checkpoint``: the file is unpickled as inert data (``lesrcnn_plugin.safe_load``): nothing
   read from a file ever runs code.
2. ``canonical_state``: the containers of ``FILE_FORMATS`` are unwrapped in the table's order
   (BasicSR's ``params_ema`` before its ``params``) and their prefixes removed, the way spandrel
   canonicalises state dicts.
3. ``key_map.identify``: each registered network's spec recognises its own layout by its distinctive
   keys; a file in another layout (the authors': ``official``) is renamed through the spec's key map.
4. The spec reads the network's hyper-parameters from the weights (``infer_arch``); the network is
   built and the weights loaded strictly (``load_strict``): a missing, unexpected, mis-shaped or
   non-finite tensor raises ``CheckpointError`` naming it, and the file.

Writing (``save_checkpoint``, ``format_checkpoint``) puts a state dict into one of ``FORMATS``.
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

from .archs import PLAIN, build_arch, spec_for
from .errors import CheckpointError
from .fileio import atomic_path
from .key_map import (detect_network, identify, official_scale, official_to_plugin, plain_to_layout,
                      plugin_to_official)


@dataclasses.dataclass(frozen=True)
class FileFormat:
    """How one framework stores the weights: ``{container: {prefix + key: tensor}, meta: {...}}``.

    Attributes:
        layout: Key names: ``'plain'`` (this package's) or a layout the networks' specs map (``'official'``).
        containers: Keys the weights may sit under, tried in this order when reading (none: a bare state dict).
        written_under: The container written (``None``: a bare state dict).
        prefix: Prefix of every weight key (a wrapper's attribute name); removed wherever found when reading.
        meta: Key of the metadata dict written beside the weights (``None``: no place for it).
        written: Whether the package writes this format (else it only reads what others write).
    """
    layout: str = PLAIN
    containers: tuple[str, ...] = ()
    written_under: str | None = None
    prefix: str = ''
    meta: str | None = None
    written: bool = True


FILE_FORMATS = {
    'official': FileFormat('official'),                                           # the authors' released files
    'basicsr': FileFormat(containers=('params_ema', 'params'), written_under='params'),  # BasicSR's net_g_*.pth
    'mmagic': FileFormat(containers=('state_dict',), written_under='state_dict', prefix='generator.',
                         meta='meta'),                                            # mmengine/MMagic checkpoints
    'plain': FileFormat(),                                                        # this package's state dict
    # Read, never written:
    'dataparallel': FileFormat(prefix='module.', written=False),             # DataParallel/DDP-wrapped weights
    'training-script': FileFormat(containers=('model', 'net'), written=False),  # {'model': ..., 'optimizer': ...}
}
#: The formats the package writes (``lesrcnn-convert --to``).
FORMATS = tuple(name for name, fmt in FILE_FORMATS.items() if fmt.written)
#: Containers unwrapped when reading, in order of preference.
CONTAINERS = tuple(container for fmt in FILE_FORMATS.values() for container in fmt.containers)
#: Prefixes that wrappers put before every key of the network.
PREFIXES = tuple(dict.fromkeys(fmt.prefix for fmt in FILE_FORMATS.values() if fmt.prefix))


def _unwrap(checkpoint: Mapping) -> tuple[str | None, Mapping]:
    """(container found or None, the mapping inside it)."""
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f'expected a dict of tensors, got {type(checkpoint).__name__}')
    for container in CONTAINERS:
        inner = checkpoint.get(container)
        if isinstance(inner, Mapping):
            return container, inner
    return None, checkpoint


def _strip_prefixes(state: Mapping) -> dict:
    """The keys under the wrappers' prefixes, without them (nested wrappers, e.g. DDP around MMagic's
    model, in any order); when a prefix is found, keys without it (a wrapper's other parts) are dropped."""
    state = dict(state)
    while True:
        prefix = next((p for p in PREFIXES if any(isinstance(k, str) and k.startswith(p) for k in state)), None)
        if prefix is None:
            return state
        state = {k[len(prefix):]: v for k, v in state.items() if isinstance(k, str) and k.startswith(prefix)}


def detect_format(checkpoint: Mapping) -> str:
    """Which of ``FORMATS`` a loaded checkpoint is in (a foreign container is named by its layout)."""
    container, state = _unwrap(checkpoint)
    layout = identify(_strip_prefixes(state))[1]
    for name in FORMATS:
        fmt = FILE_FORMATS[name]
        if fmt.layout == layout and (container in fmt.containers if container else not fmt.containers):
            return name
    return layout


def canonical_state(checkpoint: Mapping) -> tuple[str, dict[str, torch.Tensor]]:
    """(layout, state dict) of any loaded checkpoint: containers and wrapper prefixes removed."""
    _, state = _unwrap(checkpoint)
    state = _strip_prefixes(state)
    if not state:
        raise CheckpointError('the checkpoint holds no weights')
    return identify(state)[1], state


def to_plugin_state(checkpoint: Mapping) -> dict[str, torch.Tensor]:
    """Any supported checkpoint (already loaded) to this package's plain state dict."""
    _, state = _unwrap(checkpoint)
    state = _strip_prefixes(state)
    if not state:
        raise CheckpointError('the checkpoint holds no weights')
    return identify(state)[2]


def infer_arch(state: Mapping[str, torch.Tensor], variant: str | None = None) -> tuple[str, dict]:
    """The network name and constructor arguments a plain state dict holds, read by its spec.

    ``variant`` overrides the guess; it is required for the ablations ``ieeb_rb``, ``ieeb`` and
    ``hn``, which hold the same weights and differ only in their forward pass.
    """
    spec = detect_network(state)
    if spec is None:
        raise CheckpointError(f'the weights fit none of the registered networks (first keys: {list(state)[:3]})')
    return spec.name, spec.read_arguments(state, variant)


def model_from_state(state: Mapping[str, torch.Tensor], arch: str | None = None, scale: int | None = None,
                     variant: str | None = None) -> nn.Module:
    """Build the network a plain state dict describes, load it strictly, set eval mode.

    Args:
        state: A plain state dict (``to_plugin_state``).
        arch: Network to build (default: read from the weights). Another network for the same
            weights reads its arguments (scales, width) from them, as its spec does.
        scale: Scale the network runs by default. A multi-scale network must have it; a single-scale
            one is built for it, so weights of another scale are refused naming the missing key.
        variant: LESRCNN ablation; needed for the ablations without an IRB.
    """
    name, kwargs = infer_arch(state, variant)
    if arch is not None and arch != name:
        name, kwargs = arch, spec_for(arch).read_arguments(state, variant)
    spec = spec_for(name)
    if scale is not None:
        built = kwargs.get(spec.scales_argument) if spec.scales_argument else None
        if built is not None and scale not in built:
            raise CheckpointError(f'the network has upsamplers for scales {tuple(built)}, not x{scale}')
        kwargs[spec.scale_argument] = scale
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
    from .safe_load import checkpoint_file
    from .weights import resolve_weights

    if not os.fspath(source):  # Path('') is '.', the current folder
        raise CheckpointError("'': an empty name is neither a checkpoint file nor a weights name")
    return checkpoint_file(resolve_weights(source))


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
        state = _strip_prefixes(checkpoint[found]) if found else to_plugin_state(checkpoint)
        if strict:
            load_strict(model, state)
        else:
            model.load_state_dict(state, strict=False)
    return path


def format_checkpoint(state: Mapping[str, torch.Tensor], fmt: str, meta: dict | None = None) -> dict:
    """A plain state dict put into ``fmt`` (one of ``FORMATS``) as ``FILE_FORMATS`` describes it.

    ``meta`` is stored beside the weights in the formats that have a place for it (MMagic's ``meta``).
    """
    if fmt not in FORMATS:
        raise CheckpointError(f'unknown format {fmt!r}; choose one of {FORMATS}')
    spec = FILE_FORMATS[fmt]
    if spec.layout != PLAIN:
        state = plain_to_layout(state, spec.layout)
    payload: dict = {spec.prefix + k: v for k, v in state.items()}
    if spec.written_under is not None:
        payload = {spec.written_under: payload}
    if spec.meta is not None:
        payload[spec.meta] = dict(meta or {})
    return payload


def save_checkpoint(state: Mapping[str, torch.Tensor], path: str | os.PathLike, fmt: str,
                    meta: dict | None = None) -> None:
    """Write a plain state dict in ``fmt`` (one of ``FORMATS``, see ``format_checkpoint``), atomically.

    Raises:
        OSError: naming ``path``, when it cannot be written (a full disk, a read-only folder); no
            temporary file is left behind.
    """
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    payload = format_checkpoint(state, fmt, meta)
    # Serialised in memory (a few MB for this family) and written by Python: torch.save's own file
    # writer reports a full disk as a RuntimeError without errno or file name.
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())


__all__ = ['CONTAINERS', 'CheckpointError', 'FILE_FORMATS', 'FORMATS', 'FileFormat', 'LoadedCheckpoint', 'PREFIXES',
           'canonical_state', 'detect_format', 'format_checkpoint', 'infer_arch', 'is_family_checkpoint',
           'load_checkpoint', 'load_model', 'load_strict', 'load_weights', 'model_from_checkpoint', 'model_from_state',
           'non_finite_keys', 'official_scale', 'official_to_plugin', 'plugin_to_official', 'read_checkpoint',
           'resolve_source', 'save_checkpoint', 'to_plugin_state']
