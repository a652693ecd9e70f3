"""The LESRCNN family in plain PyTorch (no BasicSR or MMagic import).

Each network's module ends with its ``SPEC`` (``spec.NetworkSpec``: scale argument, distinctive keys,
hyper-parameters read from weights, key maps, fast path, receptive field); this package registers
them, in the order detection tries them. ``ARCHS`` maps each registered name to its class; the framework
integrations register exactly these. A network defined elsewhere joins with ``register_network``.
"""
from ..errors import ConfigError
from . import dual_kernel_lesrcnn_arch, lesrcnn_arch, multiscale_lesrcnn_arch
from .blocks import DIV2K_RGB_MEAN, SUPPORTED_SCALES, VARIANTS, LESRCNNBody
from .dual_kernel_lesrcnn_arch import DualKernelLESRCNN
from .lesrcnn_arch import LESRCNN
from .multiscale_lesrcnn_arch import MultiScaleLESRCNN
from .spec import (PLAIN, KeyMap, NetworkSpec, RegisteredClasses, network_specs, register_network, spec_for, spec_of,
                   unregister_network)

for _module in (lesrcnn_arch, multiscale_lesrcnn_arch, dual_kernel_lesrcnn_arch):
    register_network(_module.SPEC)

ARCHS = RegisteredClasses()


def build_arch(name: str, **kwargs):
    """Build a registered network by name, e.g. ``build_arch('LESRCNN', upscale=3)``."""
    spec = spec_for(name)
    unsupported = [scale for scale in spec.requested_scales(kwargs) if scale not in spec.scales]
    if unsupported:
        raise ConfigError(f'{name}: unsupported scale {unsupported[0]}; choose one of {spec.scales}')
    try:
        return spec.cls(**kwargs)
    except (TypeError, ValueError) as exc:  # an unknown or invalid argument: the caller's to fix
        raise ConfigError(f'{name}: {exc}') from None


def lower(model):
    """The exact fast inference path of a registered network (its spec's ``fast_path``)."""
    spec = spec_of(model)
    if spec is None:
        raise TypeError(f'{type(model).__name__} is not a registered network: it has no fast path')
    return spec.fast_path(model)


__all__ = ['ARCHS', 'DIV2K_RGB_MEAN', 'PLAIN', 'SUPPORTED_SCALES', 'VARIANTS', 'DualKernelLESRCNN', 'KeyMap',
           'LESRCNN', 'LESRCNNBody', 'MultiScaleLESRCNN', 'NetworkSpec', 'build_arch', 'lower', 'network_specs',
           'register_network', 'spec_for', 'spec_of', 'unregister_network']
