"""BasicSR integration: importing this package registers the LESRCNN family into BasicSR.

After ``import lesrcnn_plugin.basicsr``:

* ``ARCH_REGISTRY`` holds every network of ``lesrcnn_plugin.archs.ARCHS`` under its class name
  (``LESRCNN``, ``MultiScaleLESRCNN``, ``DualKernelLESRCNN``), so ``network_g: {type: LESRCNN, upscale: 2}``
  builds the authors' network, with BasicSR's own ``model_type: SRModel`` as well;
* ``MODEL_REGISTRY`` holds ``LESRCNNModel`` (SRModel plus gradient clipping, mixed precision and
  multi-scale training, see ``lesrcnn_model``);
* ``DATASET_REGISTRY`` holds ``MultiScalePairedImageDataset`` (one HR/LR patch pair per scale, for
  LESRCNN-S), and ``RawLMDBPairedImageDataset`` / ``RawLMDBMultiScalePairedImageDataset``, the same
  datasets reading raw-pixel LMDBs without decoding (``raw_lmdb_datasets``).

It also offers ``ARCH_REGISTRY`` to the package's tools (``registry_names``, ``build_network``): after
this import, ``networks.resolve_network('basicsr:EDSR')`` (and ``lesrcnn-count-flops --arch basicsr:EDSR``)
builds BasicSR's networks.

BasicSR's registries assert on a duplicate name, so registration skips a name that already holds
the same class: importing this package again (or reloading it) is harmless. A *different* class
already registered under one of these names raises ``RegistrationError`` naming both.
"""
from __future__ import annotations

import sys

from torch import nn

from lesrcnn_plugin.compat import install_torchvision_alias

install_torchvision_alias()  # basicsr 1.4.2 imports a module torchvision >= 0.17 no longer has

from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, MODEL_REGISTRY, Registry  # noqa: E402

from lesrcnn_plugin.archs import ARCHS  # noqa: E402
from lesrcnn_plugin.errors import RegistrationError  # noqa: E402  (defined there with the other user errors)
from lesrcnn_plugin.networks import register_integration  # noqa: E402

from .lesrcnn_model import LESRCNNModel  # noqa: E402
from .multiscale_paired_dataset import MultiScalePairedImageDataset  # noqa: E402
from .raw_lmdb_datasets import RawLMDBMultiScalePairedImageDataset, RawLMDBPairedImageDataset  # noqa: E402


def _same_definition(a: object, b: object) -> bool:
    # A re-imported module defines new class objects with the same module and qualified name.
    return a is b or (getattr(a, '__module__', None), getattr(a, '__qualname__', None)) == (
        getattr(b, '__module__', None), getattr(b, '__qualname__', None))


def register(registry: Registry, obj: type) -> None:
    """Register ``obj`` under its class name unless that name already holds the same class.

    Raises:
        RegistrationError: the name is taken by a different object.
    """
    name = obj.__name__
    if name in registry:
        existing = registry.get(name)
        if _same_definition(existing, obj):
            return
        raise RegistrationError(
            f"BasicSR's {registry._name} registry already holds {existing.__module__}.{existing.__qualname__} "
            f'under the name {name!r}; lesrcnn_plugin cannot register {obj.__module__}.{obj.__qualname__} there. '
            'Rename or unregister the other one.')
    registry.register(obj)


def register_all() -> None:
    """Register the LESRCNN networks, model and dataset into BasicSR's registries. Idempotent."""
    for arch in ARCHS.values():
        register(ARCH_REGISTRY, arch)
    register(MODEL_REGISTRY, LESRCNNModel)
    register(DATASET_REGISTRY, MultiScalePairedImageDataset)
    register(DATASET_REGISTRY, RawLMDBPairedImageDataset)
    register(DATASET_REGISTRY, RawLMDBMultiScalePairedImageDataset)


def registry_names() -> list[str]:
    """Every architecture name in BasicSR's ``ARCH_REGISTRY`` (BasicSR's own and the family's)."""
    return sorted(ARCH_REGISTRY._obj_map)


def build_network(name: str, kwargs: dict) -> nn.Module:
    """The architecture ``name`` of ``ARCH_REGISTRY``, built with ``kwargs``."""
    return ARCH_REGISTRY.get(name)(**kwargs)


register_all()
_THIS_MODULE = sys.modules[__name__]
register_integration('basicsr', lambda: _THIS_MODULE)

__all__ = ['LESRCNNModel', 'MultiScalePairedImageDataset', 'RawLMDBMultiScalePairedImageDataset',
           'RawLMDBPairedImageDataset', 'RegistrationError', 'build_network', 'register', 'register_all',
           'registry_names']
