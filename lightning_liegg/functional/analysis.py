"""One-call analysis: stream the Gram matrix over batches and build the report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from . import algebras
from ._checks import LieGGError, check_basis
from .actions import Action
from .polarization import check_options, check_output_action, polarization_rows
from .report import SymmetryReport

__all__ = ["liegg", "gram_update", "check_reference"]


def check_reference(reference: Any, action: Action) -> Tensor | None:
    """Check a reference algebra against ``action`` and return its basis.

    ``reference`` may be ``None``, an algebra name (resolved by :func:`algebras.from_name`), or
    a ``(k, p, q)`` basis (a tensor or nested lists) whose generator shape fits the action.
    """
    if reference is None:
        return None
    if isinstance(reference, (list, tuple)):  # nested lists, e.g. from a YAML config
        try:
            reference = torch.tensor(reference, dtype=torch.float64)
        except (TypeError, ValueError) as err:
            raise LieGGError(
                "Expected reference as nested lists of numbers of shape (k, p, q), but got "
                f"{reference!r} ({err})."
            ) from err
    if isinstance(reference, str):
        n = (
            action.generator_shape[0]
            if action.generator_shape[0] == action.generator_shape[1]
            else None
        )
        affine = action.generator_shape == (2, 3)
        reference = algebras.from_name(reference, n=n, affine=affine)
    return check_basis(reference, action.generator_shape, "reference", f"for {action!r}")


def gram_update(rows: Tensor) -> Tensor:
    """E^T E in float64 for rows ``(N, K, m)``: ``(m, m)``."""
    flat = rows.reshape(-1, rows.shape[-1]).to(torch.float64)
    return flat.T @ flat


def liegg(
    model: Callable[[Tensor], Any],
    x: Tensor,
    action: Action,
    reduction: str = "none",
    output_transform: Callable[[Any], Tensor] | None = None,
    reference: Tensor | str | None = None,
    batch_size: int | None = None,
    mode: str = "auto",
    output_action: Action | None = None,
) -> SymmetryReport:
    """Find the symmetries ``model`` has on the inputs ``x``.

    Args:
        model: ``nn.Module`` or callable, outputs ``(N,)``, ``(N, K)`` or ``(N, ...)``.
        x: inputs ``(N, ...)`` for ``action``; not modified.
        action: ``VectorAction``, ``ImageAction`` or another :class:`Action`.
        reduction: ``"none"`` (one row per output) or ``"sum"`` (the paper's behaviour).
        output_transform: applied to the outputs first (e.g. L2-normalised logits).
        reference: optional ``(k, p, q)`` algebra to measure symmetry bias against, or its
            name (``"so(3)"``, ``"rotation2d"``, ...; see ``algebras.from_name``).
        batch_size: analyse ``x`` in chunks of this many samples (memory stays flat); the
            result is the same as in one go.
        mode: ``"auto"``, ``"forward"`` or ``"reverse"`` differentiation.
        output_action: for equivariant models, how the same generators act on the outputs
            (``VectorAction``, ``ImageAction``, ``TensorAction``, ``DirectSum``, ...); see
            :func:`lightning_liegg.polarization_matrix`. ``None`` (default): invariance.

    Returns:
        A :class:`SymmetryReport`.

    Raises:
        LieGGError: on inputs, options or a reference that do not fit the action.
        NonFiniteError: when outputs or gradients are not finite.

    Example:
        >>> import torch, lightning_liegg as lg
        >>> model = lambda x: x.reshape(-1, 2, 3).norm(dim=2)   # rotation invariant
        >>> rep = lg.liegg(model, torch.randn(64, 6, dtype=torch.float64),
        ...                lg.VectorAction(dim=3, channels=2), reference=lg.algebras.so(3))
        >>> rep.symmetry_dim, round(rep.subspace_distance(), 6)
        (3, 0.0)
    """
    check_options(action, reduction, mode)
    check_output_action(action, output_action, reduction)
    ref = check_reference(reference, action)
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise LieGGError(
            f"Expected batch_size to be a positive integer or None, but got {batch_size!r}."
        )
    action.check_input(x)
    step = x.shape[0] if batch_size is None else batch_size
    gram = torch.zeros(action.dim, action.dim, dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], step):
        rows = polarization_rows(
            model, x[start : start + step], action, reduction, output_transform, mode, output_action
        )
        gram += gram_update(rows)
    return SymmetryReport(gram, x.shape[0], action.basis, ref)
