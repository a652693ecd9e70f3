"""Any super-resolution network, from the ways researchers name one, with the family's calling contract.

Where a network can come from (``resolve_network``, ``network_from_weights``; on the command line,
``lesrcnn_plugin.cli._networks``):

=================================  =========================================================================
spec                               network
=================================  =========================================================================
``LESRCNN`` (a bare name)          the LESRCNN family; else BasicSR's ``ARCH_REGISTRY``; else MMagic's ``MODELS``
``basicsr:EDSR``                   BasicSR's ``ARCH_REGISTRY`` only
``mmagic:SRCNNNet``                MMagic's ``MODELS`` only
``package.module:callable``        a researcher's own network: a class or factory returning an ``nn.Module``
``path/to/file.py:callable``       the same, defined in a file
``-opt`` options file              its ``network_g``: the family, else BasicSR (a registered name only)
``--config`` MMagic config         its ``model.generator``: the family, else MMagic (a registered name only)
``--weights`` file or name         the package's own loader for LESRCNN weights (files and names such as
                                   ``lesrcnn_x2``); any other architecture that spandrel detects
=================================  =========================================================================

A file is data: the ``type`` of an options file or config names a registered network, never
``module:callable``, which would import and call whatever the file says; that is a choice the user
types (``--arch``). Weights are read as inert data (``safe_load``) and only the state dict read
that way reaches spandrel (``load_from_state_dict``), never the file, which spandrel would open
with ``torch.jit.load`` or an unpickler.

Every network comes back with the family's calling contract (``contract.follow_contract``).

**Frameworks are plug-ins.** This module imports no framework: it sits below the integrations
(docs/architecture.md). An integration offers its registry when it is imported: ``import
lesrcnn_plugin.basicsr`` makes ``basicsr:NAME`` resolvable, ``lesrcnn_plugin.mmagic`` ``mmagic:NAME``,
``lesrcnn_plugin.spandrel`` other architectures' weights (``INTEGRATIONS``). The commands
(``lesrcnn_plugin.cli._networks``) register loaders that import an integration only when a name or
weights outside the family need it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
import importlib
import importlib.util
import os
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence

from torch import nn

from .archs import ARCHS, build_arch, spec_for, spec_of
from .contract import follow_contract
from .errors import ConfigError

#: Prefixes naming a framework registry in a spec (``basicsr:EDSR``), and how messages name the registry.
FRAMEWORKS = ('basicsr', 'mmagic')
_REGISTRY_LABELS = {'basicsr': "BasicSR's ARCH_REGISTRY", 'mmagic': "MMagic's MODELS"}

#: The plug-in point of the integrations: ``'basicsr'``, ``'mmagic'`` or ``'spandrel'`` -> a function
#: returning that integration (importing it if need be), or raising ``ImportError`` when its framework is
#: not installed. ``basicsr`` and ``mmagic`` offer ``registry_names()`` and ``build_network(name, kwargs)``;
#: ``spandrel`` offers ``descriptor_from_checkpoint(state_dict, path)``. Filled by ``register_integration``.
INTEGRATIONS: dict[str, Callable[[], typing.Any]] = {}


def register_integration(name: str, load: Callable[[], typing.Any], replace: bool = True) -> None:
    """Offer an integration to the resolution (see ``INTEGRATIONS``); ``replace=False`` keeps one already
    offered (the commands' loaders never replace an integration that registered itself)."""
    if replace or name not in INTEGRATIONS:
        INTEGRATIONS[name] = load


def _integration(name: str):
    """The integration ``name``, or ``None`` when none is offered or its framework is not installed."""
    load = INTEGRATIONS.get(name)
    if load is None:
        return None
    try:
        return load()
    except ImportError:
        return None


@dataclasses.dataclass
class ResolvedNetwork:
    """A network ready to count or time.

    Attributes:
        name: How to print it: ``LESRCNN``, ``basicsr:EDSR``, ``mmagic:SRCNNNet``, ``spandrel:SPAN``,
            ``package.module:callable``.
        kwargs: The arguments it was built with (``{'weights': path}`` for loaded weights).
        module: The network, following the calling contract (a family network, or a ``ForeignNetwork``),
            in eval mode.
        scale: The upscaling factor it runs: ``module.default_scale`` (a multi-scale network is built to
            run the scale asked for by default).
    """
    name: str
    kwargs: dict
    module: nn.Module
    scale: int

    @property
    def is_family(self) -> bool:
        """A LESRCNN-family network, which has a per-block breakdown and a fast path."""
        return spec_of(self.module) is not None


# --------------------------------------------------------------------------------------------------
# Specs from files


def network_spec(spec: Mapping, source: str) -> tuple[str, dict]:
    """``{'type': NAME, **kwargs}`` (a BasicSR ``network_g`` or an MMagic ``generator``) -> (name, kwargs).

    A registry scope (``mmagic.EDSRNet``) is dropped.
    """
    if not isinstance(spec, Mapping) or 'type' not in spec:
        raise ConfigError(f'{source}: the network section must be a mapping with a "type" key')
    name = spec['type']
    if not isinstance(name, str):
        raise ConfigError(f'{source}.type: {name!r:.80} is not the name of a registered network')
    if ':' in name:
        raise ConfigError(f'{source}.type: {name!r} is not a registered network name; a file names registered '
                          'networks only (module:callable is given on the command line: --arch)')
    name = name.rsplit('.', 1)[-1]
    kwargs = {key: (list(value) if isinstance(value, tuple) else value) for key, value in spec.items() if key != 'type'}
    if name in ARCHS:
        check_family_arguments(name, kwargs, source)
    return name, kwargs


def check_family_arguments(name: str, kwargs: Mapping, source: str) -> None:
    """Refuse an argument of a family network whose type is not the constructor's: ``upscale: '2'``
    (a string in a YAML file) would otherwise be reported as an unsupported scale 2."""
    hints = typing.get_type_hints(ARCHS[name].__init__)
    for key, value in kwargs.items():
        hint = hints.get(key)
        if hint is int:
            fits = type(value) is int
        elif hint == Sequence[int]:
            fits = isinstance(value, (list, tuple)) and all(type(item) is int for item in value)
        elif hint is str:
            fits = isinstance(value, str)
        else:
            continue
        if not fits:
            expected = {int: 'an integer', str: 'a string'}.get(hint, 'a list of integers')
            raise ConfigError(f'{source}.{key}: {value!r:.80} is a {type(value).__name__}, not {expected}')


def network_from_basicsr_options(path: str) -> tuple[str, dict]:
    """Read ``network_g`` from a BasicSR options YAML (plain YAML; BasicSR is not imported)."""
    import yaml
    try:
        with open(path, encoding='utf-8') as handle:
            options = yaml.safe_load(handle)
    except OSError as exc:
        raise ConfigError(f'{path}: cannot read ({exc.strerror})') from None
    except yaml.YAMLError as exc:
        raise ConfigError(f'{path}: not valid YAML ({exc})') from None
    if not isinstance(options, Mapping) or 'network_g' not in options:
        raise ConfigError(f'{path}: no network_g section')
    return network_spec(options['network_g'], f'{path}: network_g')


def network_from_mmagic_config(path: str) -> tuple[str, dict]:
    """Read ``model.generator`` from an MMagic config (needs mmengine; MMagic is not imported)."""
    try:
        from mmengine.config import Config
    except ImportError:
        raise ConfigError('reading an MMagic config needs mmengine (pip install mmengine)') from None
    try:
        config = Config.fromfile(path, import_custom_modules=False)
    except Exception as exc:  # mmengine raises many types for a bad file; all are the user's to fix
        raise ConfigError(f'{path}: cannot read the config ({exc})') from None
    generator = config.get('model', {}).get('generator')
    if generator is None:
        raise ConfigError(f'{path}: no model.generator section')
    return network_spec(generator.to_dict() if hasattr(generator, 'to_dict') else generator,
                        f'{path}: model.generator')


# --------------------------------------------------------------------------------------------------
# Registries, offered by the integrations


def _registry_names(framework: str) -> list[str] | None:
    """Every name in ``framework``'s registry, or ``None`` when its integration is not available."""
    integration = _integration(framework)
    return None if integration is None else integration.registry_names()


def _unavailable(framework: str) -> str:
    return (f'the {framework} integration is not loaded: pip install "lesrcnn-plugin[{framework}]" and import '
            f'lesrcnn_plugin.{framework}')


def _build_from_registry(framework: str, name: str, kwargs: dict) -> nn.Module | None:
    """The network ``name`` built from ``framework``'s registry, or ``None`` when it has no such name."""
    names = _registry_names(framework)
    if names is None:
        raise ConfigError(f'{framework}:{name} needs {_unavailable(framework)}')
    if name not in names:
        return None
    with _construction_errors(f'{framework}:{name}'):
        return _integration(framework).build_network(name, kwargs)


def _build_from_callable(target: str, kwargs: dict) -> nn.Module:
    """``package.module:callable`` or ``path/to/file.py:callable`` (``callable`` may be dotted) called with kwargs."""
    module_name, _, attribute = target.rpartition(':')
    if not module_name or not attribute:
        raise ConfigError(f'{target!r} is not module:callable')
    try:
        if module_name.endswith('.py'):
            if not os.path.isfile(module_name):
                raise ConfigError(f'{target}: no such file {module_name}')
            spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(module_name))[0],
                                                          module_name)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f'{target}: cannot import {module_name} ({exc})') from None
    factory = module
    for part in attribute.split('.'):
        if not hasattr(factory, part):
            raise ConfigError(f'{target}: {module_name} has no attribute {attribute!r}')
        factory = getattr(factory, part)
    if not callable(factory):
        raise ConfigError(f'{target}: {attribute} is not callable')
    with _construction_errors(target):
        network = factory(**kwargs)
    if not isinstance(network, nn.Module):
        raise ConfigError(f'{target} returned {type(network).__name__}, not a torch.nn.Module')
    return network


@contextlib.contextmanager
def _construction_errors(name: str) -> Iterator[None]:
    """Re-raise a constructor's complaint about its arguments as a ``ConfigError`` naming the network."""
    try:
        yield
    except ConfigError:
        raise
    except (TypeError, ValueError, KeyError, AssertionError) as exc:
        raise ConfigError(f'{name}: {exc}') from None


# --------------------------------------------------------------------------------------------------
# Resolution


def split_spec(spec: str) -> tuple[str | None, str]:
    """``'basicsr:EDSR'`` -> ``('basicsr', 'EDSR')``; ``'pkg.mod:fn'`` -> ``('callable', 'pkg.mod:fn')``;
    a bare name -> ``(None, name)``."""
    prefix, colon, rest = spec.partition(':')
    if not colon:
        return None, spec
    if prefix in FRAMEWORKS:
        return prefix, rest
    return 'callable', spec


def resolve_network(spec: str, kwargs: Mapping | None = None, scale: int | None = None,
                    frameworks: Sequence[str] = FRAMEWORKS) -> ResolvedNetwork:
    """Build the network ``spec`` names (see the module docstring) and give it the calling contract.

    Args:
        spec: A family name, ``basicsr:NAME``, ``mmagic:NAME``, ``module:callable`` or a bare name
            looked up in ``frameworks``.
        kwargs: Constructor arguments.
        scale: For the family, the scale to build (``upscale``) or, multi-scale, to run by default
            (``default_scale``); for any other network, its scale when a forward pass cannot tell it
            (checked otherwise).
        frameworks: Where a bare name that is not the family's is looked up, in order.

    Raises:
        ConfigError: An unknown or ambiguous name (the message lists where it looked and the closest
            names), bad arguments, or a scale that does not match.
    """
    kwargs = dict(kwargs or {})
    source, name = split_spec(spec)
    if source is None and name in ARCHS:
        check_family_arguments(name, kwargs, name)
        if scale is not None:  # a multi-scale network is built to run it by default, as the loader does
            kwargs[spec_for(name).scale_argument] = scale
        module, scale = follow_contract(build_arch(name, **kwargs), name, scale)
        return ResolvedNetwork(name, kwargs, module, scale)
    if source == 'callable':
        network, display = _build_from_callable(name, kwargs), name
    elif source in FRAMEWORKS:
        network, display = _build_from_registry(source, name, kwargs), spec
        if network is None:
            raise ConfigError(_unknown_name_message(name, [source]))
    else:
        found = [framework for framework in frameworks if name in (_registry_names(framework) or ())]
        if not found:
            raise ConfigError(_unknown_name_message(name, frameworks))
        if len(found) > 1:
            raise ConfigError(f'{name!r} names a network in {" and ".join(found)}; say which: '
                              + ' or '.join(f'{framework}:{name}' for framework in found))
        network, display = _build_from_registry(found[0], name, kwargs), f'{found[0]}:{name}'
    module, scale = follow_contract(network, display, scale)
    return ResolvedNetwork(display, kwargs, module, scale)


def _unknown_name_message(name: str, frameworks: Sequence[str]) -> str:
    """Where the name was looked for, and the closest names found there."""
    looked = [f'the LESRCNN family ({", ".join(ARCHS)})']
    candidates = {family_name: family_name for family_name in ARCHS}
    for framework in frameworks:
        names = _registry_names(framework)
        if names is None:
            looked.append(f'{_REGISTRY_LABELS[framework]} (not available: {_unavailable(framework)})')
            continue
        looked.append(f'{_REGISTRY_LABELS[framework]} ({len(names)} names)')
        candidates.update({registered.lower(): f'{framework}:{registered}' for registered in names})
    looked.append('a module:callable (no ":" in the name)')
    close = difflib.get_close_matches(name.lower(), list(candidates), n=5, cutoff=0.5)
    suggestion = f' Closest names: {", ".join(candidates[key] for key in close)}.' if close else ''
    return f'unknown network {name!r}. Looked in: {"; ".join(looked)}.{suggestion}'


def network_from_weights(source: str | os.PathLike, scale: int | None = None) -> ResolvedNetwork:
    """The network a weights file holds, with its weights loaded.

    The file (or registered name such as ``lesrcnn_x2``) is read once, as inert data. LESRCNN-family
    weights (any format the package reads) are loaded by ``checkpoint.model_from_checkpoint``
    (``scale`` picks a multi-scale network's default); any other state dict goes to spandrel, which
    detects its architecture (``pip install lesrcnn-plugin[spandrel]``). A file the inert reader
    refuses (a TorchScript archive, a pickle that calls code) is refused, not handed on.
    """
    from .checkpoint import is_family_checkpoint, model_from_checkpoint, read_checkpoint, resolve_source

    path = resolve_source(source)
    checkpoint = read_checkpoint(path)
    if is_family_checkpoint(checkpoint):
        model = model_from_checkpoint(checkpoint, path, scale=scale)
        module, scale = follow_contract(model, type(model).__name__, scale)
        return ResolvedNetwork(type(model).__name__, {'weights': str(source)}, module, scale)
    spandrel = _integration('spandrel')
    if spandrel is None:
        raise ConfigError(f'{path}: not a LESRCNN-family checkpoint; other architectures are read by spandrel, '
                          f'and {_unavailable("spandrel")}')
    descriptor = spandrel.descriptor_from_checkpoint(checkpoint, path)
    if descriptor.input_channels != 3:
        raise ConfigError(f'{path}: a {descriptor.input_channels}-channel network; only RGB networks '
                          'are counted and timed')
    name = f'spandrel:{descriptor.architecture.name}'
    if scale is not None and scale != descriptor.scale:
        raise ConfigError(f'{name} in {path} upscales x{descriptor.scale}, not x{scale}')
    module, scale = follow_contract(descriptor.model, name, descriptor.scale)
    return ResolvedNetwork(name, {'weights': str(source)}, module, scale)


__all__ = ['FRAMEWORKS', 'INTEGRATIONS', 'ResolvedNetwork', 'network_from_basicsr_options', 'network_from_mmagic_config',
           'network_from_weights', 'network_spec', 'register_integration', 'resolve_network', 'split_spec']
