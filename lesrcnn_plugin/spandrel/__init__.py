"""spandrel integration: importing this module registers the LESRCNN family in ``spandrel.MAIN_REGISTRY``.

spandrel (https://github.com/chaiNNer-org/spandrel) is the model loader of ComfyUI, chaiNNer and
other image tools: ``spandrel.ModelLoader().load_from_file(path)`` recognises a network from the
key names of its weights. After ``import lesrcnn_plugin.spandrel`` it also recognises the LESRCNN
family (``LESRCNN``, ``MultiScaleLESRCNN``, ``DualKernelLESRCNN``) in the authors' released files and
in every format this package writes (plain, BasicSR ``params``/``params_ema``, MMagic
``state_dict`` with ``generator.`` keys).

ComfyUI's "Load Upscale Model" node reads spandrel's ``MAIN_REGISTRY``, so three lines in a custom
node's ``__init__.py`` (``ComfyUI/custom_nodes/lesrcnn/__init__.py``) make LESRCNN weights in
``models/upscale_models`` load there::

    import lesrcnn_plugin.spandrel  # noqa: F401  (registers LESRCNN with spandrel)

    NODE_CLASS_MAPPINGS = {}

``descriptor_from_checkpoint`` is how this package's tools hand spandrel a network outside the family:
as a state dict already read as inert data, never as a file (spandrel opens ``.pt`` files with
``torch.jit.load``, which runs the code a TorchScript archive holds).

Registration is idempotent: importing again, or calling ``install()`` again, changes nothing.
Only this subpackage imports spandrel (install it with the ``spandrel`` extra, from a clone:
``pip install -e '.[spandrel]'``). ``integrations/comfyui/`` is the custom node folder described above.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from spandrel import MAIN_REGISTRY, ArchRegistry, ArchSupport, ModelDescriptor, ModelLoader, UnsupportedModelError

from ..checkpoint import non_finite_keys
from ..errors import CheckpointError
from ..networks import register_integration
from .arch import LESRCNNArch

#: The registry entry. No ``before``: the detection keys overlap with no architecture spandrel
#: knows, so LESRCNN can be tried last without shadowing or being shadowed.
LESRCNN_SUPPORT = ArchSupport.from_architecture(LESRCNNArch())


def install(registry: ArchRegistry = MAIN_REGISTRY) -> list[ArchSupport]:
    """Add LESRCNN to ``registry`` unless an architecture with the id ``'LESRCNN'`` is already there.

    Returns the entries added (empty when it was already registered), as
    ``spandrel_extra_arches.install`` does.
    """
    return registry.add(LESRCNN_SUPPORT, ignore_duplicates=True)


def descriptor_from_checkpoint(checkpoint: Mapping, path: str | os.PathLike) -> ModelDescriptor:
    """spandrel's model for a checkpoint read by ``safe_load.load_untrusted`` from ``path`` (for messages).

    Raises ``CheckpointError`` naming ``path``: no architecture detected, weights that do not fit
    it, or non-finite weights.
    """
    try:
        descriptor = ModelLoader().load_from_state_dict(dict(checkpoint))
    except UnsupportedModelError:
        raise CheckpointError(f'{path}: neither a LESRCNN-family checkpoint nor an architecture spandrel detects '
                              f'(first keys: {", ".join(map(str, list(checkpoint)[:3]))})') from None
    except Exception as exc:  # spandrel's architectures raise many types for weights that do not fit them
        raise CheckpointError(f'{path}: spandrel cannot load it ({type(exc).__name__}: {exc})') from None
    non_finite = non_finite_keys(descriptor.model.state_dict())
    if non_finite:
        raise CheckpointError(f'{path}: non-finite weights (NaN or Inf) in {", ".join(non_finite)}')
    return descriptor


install()
_THIS_MODULE = sys.modules[__name__]
register_integration('spandrel', lambda: _THIS_MODULE)  # the tools read other architectures' weights here

__all__ = ['LESRCNNArch', 'LESRCNN_SUPPORT', 'descriptor_from_checkpoint', 'install']
