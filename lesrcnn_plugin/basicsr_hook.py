"""Startup hook: BasicSR's own scripts find the LESRCNN family without any code of the user's.

The package installs ``lesrcnn_plugin_basicsr_hook.pth`` into site-packages; Python runs its one line
(``install()``) at startup. ``install()`` only appends a finder to ``sys.meta_path``: it imports
nothing else, so an interpreter that never imports ``basicsr`` pays nothing but reading this module.
When ``basicsr`` is first imported (``python -m basicsr.train``, ``python basicsr/train.py`` from a
BasicSR checkout, or any script), the finder wraps BasicSR's loader, and removes itself when that
loader runs:

1. before ``basicsr/__init__.py`` runs, the torchvision alias of ``lesrcnn_plugin.compat`` is
   installed (basicsr 1.4.2 imports a module torchvision >= 0.17 no longer has);
2. after it has run, ``lesrcnn_plugin.basicsr`` is imported, which registers the networks, the model
   and the datasets into BasicSR's registries (BasicSR itself scans only its own folders).

``LESRCNN_NO_BASICSR_HOOK=1`` (any value but empty or ``0``) switches the hook off; then
``import lesrcnn_plugin.basicsr`` in a script of one's own does the same explicitly.
"""
from __future__ import annotations

import importlib
import os
import sys
import warnings

#: Environment variable that switches the hook off.
OPT_OUT_VARIABLE = 'LESRCNN_NO_BASICSR_HOOK'


def enabled() -> bool:
    """False when the user opted out with ``LESRCNN_NO_BASICSR_HOOK``."""
    return os.environ.get(OPT_OUT_VARIABLE, '') in ('', '0')


class _RegisteringLoader:
    """BasicSR's own loader, with the alias installed before and the registration run after it."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        uninstall()  # once: a later import (after a reload, say) is BasicSR's own
        # The module then looks exactly as without the hook (__loader__ is BasicSR's own).
        module.__spec__.loader = module.__loader__ = self._loader
        from lesrcnn_plugin.compat import install_torchvision_alias

        install_torchvision_alias()
        self._loader.exec_module(module)
        try:
            importlib.import_module('lesrcnn_plugin.basicsr')
        except Exception as exc:  # noqa: BLE001 -- BasicSR must stay usable; LESRCNN is then unregistered
            warnings.warn(f'lesrcnn_plugin: LESRCNN not registered into BasicSR ({type(exc).__name__}: {exc}); '
                          f'set {OPT_OUT_VARIABLE}=1 to switch this hook off', RuntimeWarning, stacklevel=2)


class BasicSRImportHook:
    """A ``sys.meta_path`` finder that reacts to the first import of ``basicsr`` only."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != 'basicsr':
            return None
        # The other finders locate BasicSR itself. The hook stays until BasicSR is executed: a mere
        # probe (importlib.util.find_spec('basicsr'), as extras checks do) must not disarm it.
        for finder in sys.meta_path:
            spec = None if finder is self else getattr(finder, 'find_spec', lambda *args: None)(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _RegisteringLoader(spec.loader)
                return spec
        return None


def install() -> None:
    """Add the hook to ``sys.meta_path`` (the ``.pth`` file's line). Idempotent; nothing if opted out,
    or if ``basicsr`` is already imported (then import ``lesrcnn_plugin.basicsr`` yourself)."""
    if not enabled() or 'basicsr' in sys.modules or any(isinstance(f, BasicSRImportHook) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, BasicSRImportHook())


def uninstall() -> None:
    """Remove the hook from ``sys.meta_path`` (a no-op when it is not there)."""
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, BasicSRImportHook)]
