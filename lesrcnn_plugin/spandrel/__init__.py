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

Registration is idempotent: importing again, or calling ``install()`` again, changes nothing.
Only this subpackage imports spandrel (install it with ``pip install lesrcnn-plugin[spandrel]``).
"""
from __future__ import annotations

from spandrel import MAIN_REGISTRY, ArchRegistry, ArchSupport

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


install()

__all__ = ['LESRCNNArch', 'LESRCNN_SUPPORT', 'install']
