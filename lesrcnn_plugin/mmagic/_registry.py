"""Idempotent registration into MMagic's registries."""
from __future__ import annotations

from mmengine.registry import Registry


def register_once(registry: Registry, cls: type, name: str | None = None) -> type:
    """Register ``cls`` under ``name`` (default: its class name) unless that name already holds it.

    Re-importing a module, or importing it through two paths, must not fail. A reloaded module makes
    a new class object with the same module and qualified name: that one replaces the old entry. A
    name held by an unrelated class still raises the registry's ``KeyError``, so a clash is never silent.
    """
    name = name or cls.__name__
    held = registry.module_dict.get(name)
    if held is cls:
        return cls
    reloaded = held is not None and (held.__module__, held.__qualname__) == (cls.__module__, cls.__qualname__)
    registry.register_module(name=name, module=cls, force=reloaded)
    return cls
