"""Renamed arguments and functions: the old name keeps working and warns once."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["deprecated_alias", "renamed_argument", "warn_renamed"]

_WARNED: set[str] = set()


def warn_renamed(old: str, new: str, stacklevel: int = 3) -> None:
    """A ``DeprecationWarning`` that ``old`` is now ``new``, the first time only per ``old``."""
    if old in _WARNED:
        return
    _WARNED.add(old)
    warnings.warn(
        f"{old} is deprecated and will be removed; use {new} instead.",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def renamed_argument(
    owner: str, old: str, new: str, old_value: Any, new_value: Any, default: Any
) -> Any:
    """Resolve an argument passed under its old name ``old`` (``None`` = not passed).

    Returns the value to use; raises when both names are given different values.
    """
    if old_value is None:
        return new_value
    from .exceptions import LieGGError

    if new_value != default and new_value != old_value:
        raise LieGGError(
            f"Expected {owner} to get {new} (or its deprecated name {old}), but got both: "
            f"{new}={new_value!r}, {old}={old_value!r}."
        )
    warn_renamed(f"{owner}({old}=...)", f"{new}=", stacklevel=4)
    return old_value


def deprecated_alias(old: str, new: Callable[..., Any]) -> Callable[..., Any]:
    """A function named ``old`` that warns once and calls ``new``."""

    @functools.wraps(new)
    def alias(*args: Any, **kwargs: Any) -> Any:
        warn_renamed(old, new.__qualname__)
        return new(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old.rsplit(".", 1)[-1]
    alias.__doc__ = f"Deprecated alias of :func:`{new.__qualname__}`."
    return alias
