"""Compatibility shims installed before a framework is imported.

basicsr 1.4.2 (the only release on PyPI) imports ``torchvision.transforms.functional_tensor``, a
private module removed in torchvision 0.17; ``import basicsr`` then fails. ``install_torchvision_alias``
registers the module's successor, ``torchvision.transforms._functional_tensor``, under the old name
in ``sys.modules``. Nothing on disk is patched. ``lesrcnn_plugin.basicsr`` installs it, and so does the
startup hook (``lesrcnn_plugin.basicsr_hook``) before BasicSR's own scripts import ``basicsr``.
"""
from __future__ import annotations

import importlib
import sys

_OLD = 'torchvision.transforms.functional_tensor'
_NEW = 'torchvision.transforms._functional_tensor'


def install_torchvision_alias() -> None:
    """Make ``import torchvision.transforms.functional_tensor`` work on torchvision >= 0.17. Idempotent."""
    if _OLD in sys.modules:
        return
    try:
        importlib.import_module(_OLD)  # torchvision < 0.17 still has it
    except ImportError:
        sys.modules[_OLD] = importlib.import_module(_NEW)
