"""Which Lightning: ``pytorch_lightning`` and ``lightning.pytorch``, one code path for both.

The two namespaces ship the same classes twice (``pytorch_lightning.LightningModule`` is not
``lightning.pytorch.LightningModule``), so every class check here accepts either, and helpers
such as ``is_overridden`` are taken from the namespace the user's module comes from.
``lightning`` is optional: only ``pytorch_lightning`` (a dependency) is always there.
"""

from __future__ import annotations

import importlib
import importlib.util
from functools import cache
from types import ModuleType
from typing import Any

__all__ = ["namespaces", "callback_bases", "classes", "is_overridden", "namespace_of"]


@cache
def namespaces() -> tuple[ModuleType, ...]:
    """The importable Lightning namespaces: ``pytorch_lightning``, then ``lightning.pytorch``."""
    found = [importlib.import_module("pytorch_lightning")]
    try:
        has_lightning = importlib.util.find_spec("lightning") is not None
    except (ImportError, ValueError):
        has_lightning = False
    if has_lightning:
        try:
            found.append(importlib.import_module("lightning.pytorch"))
        except Exception:  # noqa: BLE001 - a broken install: the other namespace still works
            pass
    return tuple(found)


@cache
def classes(path: str) -> tuple[type, ...]:
    """The class at ``path`` (e.g. ``"loggers.TensorBoardLogger"``) in every namespace."""
    module, _, name = path.rpartition(".")
    out = []
    for ns in namespaces():
        mod = importlib.import_module(f"{ns.__name__}.{module}") if module else ns
        out.append(getattr(mod, name))
    return tuple(out)


def callback_bases() -> tuple[type, ...]:
    """The ``Callback`` base class of every namespace (the callback inherits from all)."""
    return classes("callbacks.Callback")


def namespace_of(obj: Any) -> ModuleType:
    """The namespace whose ``LightningModule``, ``Trainer`` or ``LightningDataModule`` ``obj`` is.

    Falls back to ``pytorch_lightning`` for anything else.
    """
    for ns in reversed(namespaces()):
        if isinstance(obj, (ns.LightningModule, ns.Trainer, ns.LightningDataModule)):
            return ns
    return namespaces()[0]


def is_overridden(method_name: str, instance: Any) -> bool:
    """Whether ``instance`` overrides ``method_name`` of its Lightning parent, either namespace."""
    if instance is None:
        return False
    ns = namespace_of(instance)
    helpers = importlib.import_module(f"{ns.__name__}.utilities.model_helpers")
    for parent in (ns.LightningModule, ns.LightningDataModule):
        if isinstance(instance, parent):
            return bool(helpers.is_overridden(method_name, instance, parent=parent))
    return callable(getattr(instance, method_name, None))
