"""Argument checks shared by the whole package (exception classes: :mod:`.exceptions`).

Every user-facing error is raised from here, worded "Expected ..., but got ...", so that
messages look alike across the package.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .exceptions import DegenerateWarning, LieGGError, LieGGWarning, NonFiniteError

__all__ = [
    "LieGGError",
    "NonFiniteError",
    "DegenerateWarning",
    "LieGGWarning",
    "check_tensor",
    "check_basis",
    "check_positive_int",
    "check_fraction",
    "check_number",
    "check_choice",
    "is_choice",
    "check_callable",
    "describe",
    "shown",
    "orthonormal_rows",
]


def _part(x: Any) -> str:
    if isinstance(x, Tensor):
        return f"tensor {tuple(x.shape)} {str(x.dtype).replace('torch.', '')}"
    if _is_array(x):
        return f"{type(x).__name__} {tuple(x.shape)} {x.dtype}"
    return type(x).__name__


def _is_array(x: Any) -> bool:
    """An array-like with a shape and a dtype (NumPy, JAX, ...): described, never printed."""
    return hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, type)


_SCALARS = (type(None), bool, int, float, complex, str, bytes)


def describe(x: Any) -> str:
    """A short description of a value for error messages: shape and dtype for tensors.

    Dicts name their keys and tuples/lists their length and items' types (tensors their
    shapes), never their values: a list of numbers given where a tensor goes does not print
    its numbers. Scalars and other objects (an action, a module) show their ``repr``.

    Example:
        >>> describe({"logits": torch.zeros(2, 3), "aux": 1})
        "a dict with keys ['logits', 'aux'] (logits: tensor (2, 3) float32, aux: int)"
        >>> describe([0.5, 1.5, 2.5])
        'a list of shape (3,)'
    """
    if isinstance(x, Tensor):
        return f"a tensor of shape {tuple(x.shape)} and dtype {x.dtype}"
    if _is_array(x):
        return f"a {type(x).__name__} of shape {tuple(x.shape)} and dtype {x.dtype}"
    if isinstance(x, Mapping):
        parts = ", ".join(f"{k}: {_part(v)}" for k, v in list(x.items())[:8])
        return f"a {type(x).__name__} with keys {list(x)[:8]!r} ({parts})"[:300]
    if isinstance(x, (tuple, list)) and any(isinstance(v, (Tensor, Mapping)) for v in x):
        parts = ", ".join(_part(v) for v in x[:8])
        return f"a {type(x).__name__} of {len(x)} ({parts})"[:300]
    if isinstance(x, (tuple, list)):  # numbers: the nesting shape, never the values
        return f"a {type(x).__name__} of shape {_nested_shape(x)}"
    shape, dtype = getattr(x, "shape", None), getattr(x, "dtype", None)
    if shape is not None and dtype is not None:  # numpy arrays and the like
        return f"a {type(x).__name__} of shape {tuple(shape)} and dtype {dtype}"
    return f"{type(x).__name__} {x!r}"[:200]


def _nested_shape(x: Any) -> tuple[int, ...]:
    """The shape of nested lists/tuples as far as it is rectangular: ``[[1, 2]]`` -> (1, 2)."""
    shape: list[int] = []
    while isinstance(x, (tuple, list)):
        shape.append(len(x))
        if not x or not all(isinstance(v, (tuple, list)) and len(v) == len(x[0]) for v in x):
            break
        x = x[0]
    return tuple(shape)


def shown(value: Any) -> str:
    """An option's value for a message: ``repr`` of a plain scalar, else :func:`describe`."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)[:200]
    return describe(value)


def output_transform_hint(out: Any) -> str:
    """How to pick one tensor from a dict or tuple output, as an ``output_transform`` example."""
    if isinstance(out, Mapping) and out:
        key = next((k for k, v in out.items() if isinstance(v, Tensor)), next(iter(out)))
        return f"Pass output_transform to pick one, e.g. output_transform=lambda out: out[{key!r}]."
    if isinstance(out, (tuple, list)) and out:
        return "Pass output_transform to pick one, e.g. output_transform=lambda out: out[0]."
    return "Pass output_transform to pick one."


def check_positive_int(name: str, value: Any, optional: bool = False, minimum: int = 1) -> Any:
    """Check that ``value`` is an integer ``>= minimum`` (not a bool); ``None`` if ``optional``.

    Returns:
        ``value`` unchanged.
    """
    if optional and value is None:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise LieGGError(
            f"Expected {name} to be {what}{' or None' if optional else ''}, but got {shown(value)}."
        )
    return value


def check_number(
    name: str,
    value: Any,
    minimum: float = -math.inf,
    below: float | None = None,
) -> float:
    """Check that ``value`` is a finite real number in ``[minimum, below)``; return it as float."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < minimum or (below is not None and value >= below):
        bound = f"in [{minimum}, {below})" if below is not None else f">= {minimum}"
        raise LieGGError(f"Expected {name} to be a finite number {bound}, but got {shown(value)}.")
    return float(value)


def check_fraction(name: str, value: Any, optional: bool = False) -> Any:
    """Check that ``value`` is a number in ``(0, 1]``; ``None`` passes if ``optional``."""
    if optional and value is None:
        return value
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not 0 < value <= 1:
        raise LieGGError(
            f"Expected {name} to be a fraction in (0, 1]{' or None' if optional else ''}, but "
            f"got {shown(value)}."
        )
    return value


def is_choice(value: Any, choices: Sequence[Any]) -> bool:
    """Whether ``value`` is one of ``choices``: a scalar only (an array never compares as one)."""
    return isinstance(value, _SCALARS) and value in choices


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """Check that ``value`` is one of ``choices``."""
    if not is_choice(value, choices):
        raise LieGGError(f"Expected {name} to be one of {list(choices)}, but got {shown(value)}.")
    return value


def check_callable(name: str, value: Any, optional: bool = True) -> Any:
    """Check that ``value`` is callable (or ``None`` if ``optional``)."""
    if value is None and optional:
        return value
    if not callable(value):
        raise LieGGError(
            f"Expected {name} to be callable{' or None' if optional else ''}, but got "
            f"{describe(value)}."
        )
    return value


def check_tensor(x: Any, name: str, context: str = "") -> Tensor:
    """Check that ``x`` is a non-empty floating-point tensor.

    Args:
        x: the value to check.
        name: its name in the message (``"x"``).
        context: where it is used, appended to the message (``"for VectorAction(dim=5)"``).

    Returns:
        ``x`` unchanged.

    Raises:
        LieGGError: when ``x`` is not a tensor, is integer or boolean, or is empty.
    """
    where = f" {context}" if context else ""
    if not isinstance(x, Tensor):
        raise LieGGError(f"Expected {name}{where} to be a torch.Tensor, but got {describe(x)}.")
    if not x.is_floating_point():
        raise LieGGError(
            f"Expected {name}{where} to be a floating-point tensor (float16, bfloat16, float32 or "
            f"float64), but got dtype {x.dtype}. Convert it first, e.g. x.float() / 255."
        )
    if x.ndim == 0 or x.shape[0] == 0 or x.numel() == 0:
        raise LieGGError(
            f"Expected {name}{where} to hold at least one sample (a non-empty batch), but got "
            f"shape {tuple(x.shape)}."
        )
    return x


def check_basis(basis: Any, generator_shape: tuple[int, int], name: str, context: str) -> Tensor:
    """Check a stack of generators ``(k, p, q)`` against an action's generator shape.

    A single generator ``(p, q)`` is accepted and returned as ``(1, p, q)``.

    Raises:
        LieGGError: on a non-tensor, a non-floating dtype, a wrong shape or non-finite values.
    """
    p, q = generator_shape
    if not isinstance(basis, Tensor):
        raise LieGGError(
            f"Expected {name} {context} to be a tensor of shape (k, {p}, {q}), but got "
            f"{describe(basis)}."
        )
    if basis.ndim == 2:
        basis = basis.unsqueeze(0)
    if basis.ndim != 3 or tuple(basis.shape[1:]) != (p, q) or basis.shape[0] == 0:
        raise LieGGError(
            f"Expected {name} {context} to have shape (k, {p}, {q}) with k >= 1, but got shape "
            f"{tuple(basis.shape)}."
        )
    if not basis.is_floating_point():
        raise LieGGError(
            f"Expected {name} {context} to be floating point, but got dtype {basis.dtype}."
        )
    if not torch.isfinite(basis).all():
        raise LieGGError(f"Expected {name} {context} to be finite, but it holds NaN or inf.")
    return basis


def orthonormal_rows(basis: Tensor, name: str, context: str) -> Tensor:
    """Orthonormalise the flattened generators of ``basis`` ``(k, p, q)``, keeping their span.

    Returns:
        float64 tensor ``(r, p, q)``, r = rank of the basis, with unit Frobenius norm and
        mutually orthogonal entries.

    Raises:
        LieGGError: when the basis is (numerically) zero.
    """
    k, p, q = basis.shape
    flat = basis.detach().to(device="cpu", dtype=torch.float64).reshape(k, p * q)
    u, s, vh = torch.linalg.svd(flat, full_matrices=False)
    if s.numel() == 0 or s[0] <= 0:
        raise LieGGError(f"Expected {name} {context} to be non-zero, but all its entries are 0.")
    rank = int((s > s[0] * 1e-10).sum())
    # Keep the original orientation where possible: Q from a QR of the rows spans the same
    # space and keeps the first element's direction, which makes 1-element bases predictable.
    if rank == k:
        qmat, r = torch.linalg.qr(flat.T)
        signs = torch.sign(torch.diagonal(r))
        signs[signs == 0] = 1
        return (qmat * signs).T.reshape(k, p, q).contiguous()
    return vh[:rank].reshape(rank, p, q).contiguous()
