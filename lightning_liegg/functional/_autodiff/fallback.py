"""auto mode's fall-back from forward to reverse differentiation, remembered per model.

Forward mode needs a forward-AD rule for every op; fused kernels and custom autograd Functions
without ``jvp`` (or in the old style, without ``setup_context``) have none. In ``ad_mode="auto"``
the first such error switches the model to reverse mode for good (one ``LieGGWarning`` naming
the op; a ``WeakKeyDictionary``, so nothing is set on the model); ``ad_mode="forward"`` raises a
``LieGGError`` naming it instead.
"""

from __future__ import annotations

import contextlib
import re
import warnings
import weakref
from typing import Any

from ..._checks import LieGGError, LieGGWarning

__all__ = ["fall_back_to_reverse"]


_REVERSE_ONLY: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
_FORWARD_AD_MESSAGES = ("forward ad", "forward-mode ad", "forward mode ad", "jvp function")
_OLD_STYLE = "a custom torch.autograd.Function without setup_context (torch.func cannot use it)"


def _missing_forward_rule(err: BaseException) -> str | None:
    """The op named by a "no forward-AD rule" error, or None for any other error."""
    text = str(err)
    if _old_style_function(err):
        return _OLD_STYLE
    if not any(key in text.lower() for key in _FORWARD_AD_MESSAGES):
        return None
    found = re.search(r"forward AD with (\S+)", text)
    if found:
        return found.group(1)
    if "autograd.Function" in text:
        return "a custom torch.autograd.Function without a jvp staticmethod"
    return "an op"


def _old_style_function(err: BaseException) -> bool:
    """Whether ``err`` says a custom autograd.Function lacks ``setup_context`` (torch.func)."""
    return "autograd.Function" in str(err) and "setup_context" in str(err)


def _reverse_only(model: Any) -> str | None:
    """The op that made ``ad_mode="auto"`` fall back to reverse mode for ``model``, if any."""
    model = getattr(model, "_liegg_key", model)  # a wrapper (BoundForward): its model
    try:
        return _REVERSE_ONLY.get(model)
    except TypeError:  # not weak-referenceable: nothing was remembered
        return None


def _remember_reverse(model: Any, op: str) -> None:
    """Warn once and use reverse mode for ``model`` from now on (no attribute set on it)."""
    model = getattr(model, "_liegg_key", model)  # a wrapper (BoundForward): its model
    name = type(model).__name__
    warnings.warn(
        f"Forward-mode differentiation is not available for {name}: {op} has no forward-AD "
        'rule. ad_mode="auto" uses reverse mode for this model from now on (same numbers); pass '
        'ad_mode="reverse" to skip the forward attempt and this warning.',
        LieGGWarning,
        stacklevel=4,
    )
    with contextlib.suppress(TypeError):  # not weak-referenceable: warn again next time
        _REVERSE_ONLY[model] = op


def fall_back_to_reverse(err: RuntimeError, model: Any, mode: str) -> None:
    """Decide what a failed forward-mode pass means; return when reverse mode should take over.

    Re-raises ``err`` when it is not about a missing forward-AD rule; raises a
    :class:`LieGGError` naming the op for ``ad_mode="forward"``; for ``ad_mode="auto"`` warns once
    and remembers reverse mode for ``model`` (:func:`_remember_reverse`), then returns.
    """
    op = _missing_forward_rule(err)
    if op is None:
        raise err
    if mode == "forward":
        raise LieGGError(
            f"Expected every op of the model to have a forward-mode AD rule for "
            f'ad_mode="forward", but {op} has none ({err}). Pass ad_mode="reverse" '
            '(or ad_mode="auto", which falls back to it); it gives the same numbers.'
        ) from err
    _remember_reverse(model, op)
