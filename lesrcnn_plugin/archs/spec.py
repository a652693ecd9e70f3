"""What the package knows about each network, declared once beside its class (as spandrel's
``Architecture`` and timm's pretrained configs do), and the registry that collects the declarations.

Each ``*_arch.py`` ends with ``SPEC = NetworkSpec(...)``; the ``archs`` package registers them. The
checkpoint reader and writer, the key map, the network resolver, the spandrel integration, the fast
path and inference read a network's spec; none of them names a network class or a layer type. A
network defined outside the package is added with ``register_network(SPEC)``.
"""
from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from torch import nn

from ..errors import ConfigError

#: This package's own key layout (the names of ``model.state_dict()``); every other layout is
#: reached through a ``KeyMap``.
PLAIN = 'plain'

StateDict = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class KeyMap:
    """The names of another key layout (e.g. the authors' code) against this package's.

    Attributes:
        names: Their key -> ours, for every tensor outside the per-scale layers.
        per_scale: (their prefix, our prefix) of the layers built once per scale, as templates with
            ``{scale}``: ``('upsample.up{scale}.body.', 'reconstruction.upsamplers.x{scale}.')``.
        single_scale: Their prefix for those layers in a file of one scale (``'upsample.up.body.'``);
            ``None`` when they always name the scale.
        read_single_scale: Reads the scale of such a file from its weights (``None``: not one).
        distinctive: Keys every file in this layout has: a file is tried in this layout only when
            it has them all.
    """
    names: Mapping[str, str]
    per_scale: tuple[str, str]
    single_scale: str | None = None
    read_single_scale: Callable[[StateDict], int | None] = lambda state: None
    distinctive: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class NetworkSpec:
    """Everything the package needs to know about one network class.

    Attributes:
        cls: The ``nn.Module`` class; registered under its ``__name__``.
        scale_argument: The constructor argument naming the scale ``net(x)`` runs (``'upscale'``,
            or ``'default_scale'`` for a network built with several scales).
        scales: The scales it can be built for.
        detect: Whether a state dict in this package's layout holds this network: its distinctive
            keys (what sets it apart from every other registered network).
        read_arguments: ``(state dict in this package's layout, variant or None) -> constructor
            arguments``: its hyper-parameters read from the weights (``variant`` when the weights
            cannot tell); raises ``CheckpointError`` when they cannot be read.
        scales_argument: The constructor argument listing the scales built, for a network with
            several (``'scales'``); ``None`` for a single-scale network.
        key_maps: Other key layouts its checkpoints come in, by layout name (``'official'``: the
            authors' code), each with its ``KeyMap``. Formats in a layout it lacks are refused.
        parallel_convolutions: How the fast path and the receptive field see a layer: the
            convolutions it runs side by side on the same input, each rectified, their outputs
            concatenated (a plain convolution is itself alone).
        fast_path: Builds the exact fast inference path of a network (``FastLESRCNN``).
        receptive_field: ``(network, scale) -> LR pixels`` it looks around an output pixel: the
            smallest seamless tile overlap.
        tags: Extra words spandrel's descriptor carries (``'dual-kernel'``).
    """
    cls: type[nn.Module]
    scale_argument: str
    scales: tuple[int, ...]
    detect: Callable[[StateDict], bool]
    read_arguments: Callable[[StateDict, str | None], dict]
    fast_path: Callable[[nn.Module], nn.Module]
    receptive_field: Callable[[nn.Module, int], int]
    scales_argument: str | None = None
    key_maps: Mapping[str, KeyMap] = dataclasses.field(default_factory=dict)
    parallel_convolutions: Callable[[nn.Module], tuple[nn.Module, ...]] = lambda layer: (layer,)
    tags: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.cls.__name__

    def requested_scales(self, kwargs: Mapping) -> list[int]:
        """The scales constructor arguments ``kwargs`` ask for (those given)."""
        built = kwargs.get(self.scales_argument, ()) if self.scales_argument else ()
        scales = list(built) if isinstance(built, (list, tuple)) else []  # else the constructor's to refuse
        return scales + ([kwargs[self.scale_argument]] if self.scale_argument in kwargs else [])


_SPECS: dict[str, NetworkSpec] = {}


def register_network(spec: NetworkSpec) -> NetworkSpec:
    """Add a network; building by name, checkpoints, spandrel and inference then know it.

    Registering the same spec again changes nothing; another network under a taken name is refused.
    """
    registered = _SPECS.get(spec.name)
    if registered is not None and registered is not spec:
        raise ConfigError(f'a network named {spec.name!r} is already registered ({registered.cls.__module__})')
    _SPECS[spec.name] = spec
    return spec


def unregister_network(name: str) -> None:
    """Remove a network added by ``register_network`` (a plugin unloaded, a test's toy network)."""
    _SPECS.pop(name, None)


def network_specs() -> Iterator[NetworkSpec]:
    """Every registered spec, in registration order (the order detection tries them)."""
    return iter(tuple(_SPECS.values()))


def spec_for(name: str) -> NetworkSpec:
    """The spec of the network registered as ``name``; ``ConfigError`` listing the closest names."""
    spec = _SPECS.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, _SPECS, n=len(_SPECS), cutoff=0)
        raise ConfigError(f'unknown network type {name!r}; valid names: {", ".join(close)}')
    return spec


def spec_of(model: nn.Module) -> NetworkSpec | None:
    """The spec of ``model``'s class (or of the nearest registered class it derives from), else ``None``."""
    by_class = {spec.cls: spec for spec in _SPECS.values()}
    return next((by_class[cls] for cls in type(model).__mro__ if cls in by_class), None)


class RegisteredClasses(Mapping):
    """Registered name -> class, a live view of the registry (what the framework integrations register)."""

    def __getitem__(self, name: str) -> type[nn.Module]:
        return _SPECS[name].cls

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(_SPECS))

    def __len__(self) -> int:
        return len(_SPECS)

    def __repr__(self) -> str:
        return f'RegisteredClasses({", ".join(_SPECS)})'


__all__ = ['KeyMap', 'NetworkSpec', 'PLAIN', 'RegisteredClasses', 'network_specs', 'register_network', 'spec_for',
           'spec_of', 'unregister_network']
