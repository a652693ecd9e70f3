"""How mmengine reads checkpoints once the MMagic integration is imported: as data, and by name.

* Local files (``load_from``, ``--resume``, ``mim train ... --resume``, ``mim test ... --checkpoint``)
  are read with ``lesrcnn_plugin.safe_load.load_untrusted``. mmengine 0.10's own local loader is a
  bare ``torch.load``: since torch 2.6 that refuses mmengine's own training checkpoints, and widening
  its allow-list (as the plugin once did, with ``getattr``) let a crafted checkpoint run code.
  Reading as data serves every model, not only the LESRCNN family, so the scheme is replaced for the
  whole process: that is what makes MMagic's own tools safe too.
* ``lesrcnn://NAME`` loads a registered weights name (``lesrcnn_plugin.weights``: the cache, or a
  download with its SHA256 checked) as an MMagic model checkpoint (``generator.*`` keys):
  ``load_from = 'lesrcnn://lesrcnn_x2'``, or for the generator alone
  ``init_cfg=dict(type='Pretrained', checkpoint='lesrcnn://lesrcnn_x2', prefix='generator.')``.
"""
from __future__ import annotations

from pathlib import Path

from mmengine.runner.checkpoint import CheckpointLoader

from ..checkpoint import read_checkpoint, resolve_source, to_plugin_state
from ..safe_load import load_untrusted

#: Prefix of a registered weights name in ``load_from`` / ``init_cfg`` / ``--checkpoint``.
WEIGHTS_SCHEME = 'lesrcnn://'


def load_from_local_as_data(filename: str, map_location=None) -> dict:
    """mmengine's local-path loader (``load_from_local``), reading the file as inert data.

    The name follows mmengine's ``load_from_<backend>`` convention, which its log line quotes.
    """
    return load_untrusted(Path(filename).expanduser(), map_location=map_location)


def load_from_weights_name(filename: str, map_location=None) -> dict:
    """``lesrcnn://NAME`` (or ``lesrcnn://FILE``): the weights as an MMagic checkpoint of the generator."""
    path = resolve_source(filename[len(WEIGHTS_SCHEME):])
    state = to_plugin_state(read_checkpoint(path))
    return {'meta': {'weights': str(path)}, 'state_dict': {f'generator.{k}': v for k, v in state.items()}}


def install_checkpoint_loaders() -> None:
    """Register both loaders in mmengine's ``CheckpointLoader``; idempotent."""
    CheckpointLoader.register_scheme('', load_from_local_as_data, force=True)
    CheckpointLoader.register_scheme(WEIGHTS_SCHEME, load_from_weights_name, force=True)


__all__ = ['WEIGHTS_SCHEME', 'install_checkpoint_loaders', 'load_from_local_as_data', 'load_from_weights_name']
