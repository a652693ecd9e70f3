"""MMagic integration: the LESRCNN family in ``mmagic.registry.MODELS``, plus the small glue configs need.

Importing this module (configs do it through ``custom_imports = dict(imports=['lesrcnn_plugin.mmagic'])``)
registers every network of ``lesrcnn_plugin.archs.ARCHS`` under its class name, so that a config can say
``generator=dict(type='LESRCNN', upscale=2)`` inside MMagic's own ``BaseEditModel``. It also registers:

* ``CropGTToInput`` (``mmagic.registry.TRANSFORMS``): crops the ground truth to ``scale`` times the
  input, for benchmark folders whose HR images were not cropped (MMagic's metrics do not crop them);
* ``LoadImageFromSharedFile`` (``TRANSFORMS``): ``LoadImageFromFile`` sharing one LMDB handle between
  the per-scale datasets of multi-scale training;
* ``LoadImageFromRawLMDB`` (``TRANSFORMS``): the same image from a raw-pixel LMDB, without decoding;
* ``ChannelsLastHook`` (``HOOKS``): trains in channels_last memory format;
* ``MultiScaleEditModel`` (``MODELS``): ``BaseEditModel`` that tells LESRCNN-S which upsampler to use
  from each batch's ``scale`` metainfo;
* ``GroupByDatasetBatchSampler`` (``DATA_SAMPLERS``): batches drawn from one sub-dataset of a
  ``ConcatDataset`` at a time, so that a multi-scale batch never mixes scales.

It offers ``MODELS`` to the package's tools (``registry_names``, ``build_network``): after this import,
``networks.resolve_network('mmagic:SRCNNNet')`` builds MMagic's networks. And it makes mmengine read
local checkpoint files as inert data, and registered weights names as
``lesrcnn://lesrcnn_x2`` (``checkpoints.install_checkpoint_loaders``).

The networks take RGB in [0, 1], which is what ``DataPreprocessor(mean=[0, 0, 0], std=[255, 255, 255])``
feeds a generator.
"""
from __future__ import annotations

import sys

from mmagic.registry import MODELS
from mmagic.utils import register_all_modules
from torch import nn

from ..archs import ARCHS
from ..networks import register_integration
from ._registry import register_once
from .checkpoints import install_checkpoint_loaders
from .models import MultiScaleEditModel
from .hooks import ChannelsLastHook
from .samplers import GroupByDatasetBatchSampler
from .transforms import CropGTToInput, LoadImageFromRawLMDB, LoadImageFromSharedFile


def register_archs() -> None:
    """Register every network of ``ARCHS`` in MMagic's model registry; idempotent.

    A name already registered to the same class is left alone (re-imports, or this module imported
    through two paths); a name taken by a different class raises ``KeyError`` from the registry.
    """
    for name, cls in ARCHS.items():
        register_once(MODELS, cls, name)


def registry_names() -> list[str]:
    """Every name in MMagic's ``MODELS``, with all of MMagic's modules registered."""
    register_all_modules()
    return sorted(MODELS.module_dict)


def build_network(name: str, kwargs: dict) -> nn.Module:
    """The module ``name`` of ``MODELS``, built with ``kwargs``."""
    register_all_modules()
    return MODELS.build(dict(type=name, **kwargs))


register_archs()
install_checkpoint_loaders()
_THIS_MODULE = sys.modules[__name__]
register_integration('mmagic', lambda: _THIS_MODULE)

__all__ = ['ChannelsLastHook', 'CropGTToInput', 'GroupByDatasetBatchSampler', 'LoadImageFromRawLMDB',
           'LoadImageFromSharedFile', 'MultiScaleEditModel', 'build_network', 'register_archs', 'registry_names']
