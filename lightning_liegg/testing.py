"""Helpers for testing your own models: invariance errors and assertions.

The exactly invariant toys with a known symmetry algebra (``o5_invariant``,
``lorentz_invariant``, ``shear_invariant`` and the inputs ``bordered_images``) live here: known
answers for your own tests (:mod:`lightning_liegg.datasets` builds its O(5) targets on them).

Example:
    >>> import torch, lightning_liegg as lg
    >>> from lightning_liegg.testing import assert_invariant, assert_symmetry, o5_invariant
    >>> x = torch.randn(64, 10, dtype=torch.float64)
    >>> action = lg.VectorAction(dim=5, channels=2)
    >>> assert_invariant(o5_invariant, x, action, lg.algebras.so(5)[3], t=0.7)
    >>> report = assert_symmetry(o5_invariant, x, action, lg.algebras.so(5))
    >>> report.symmetry_dim
    10
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .functional._autodiff.isolation import isolated
from .functional.actions import Action
from .functional.analysis import liegg
from .functional.report import SymmetryReport

__all__ = [
    "invariance_error",
    "assert_invariant",
    "assert_symmetry",
    "o5_invariant",
    "lorentz_invariant",
    "shear_invariant",
    "bordered_images",
    "equivariance_error",
    "assert_equivariant",
]


def invariance_error(
    model: Callable[[Tensor], Any],
    x: Tensor,
    action: Action,
    generator: Tensor,
    t: float = 0.5,
) -> tuple[float, float]:
    """How much ``model``'s outputs change from x to exp(t h) . x.

    Runs the model in eval mode without gradients and restores its modes afterwards.

    Args:
        model: callable or ``nn.Module``, outputs ``(N, ...)``.
        x: inputs ``(N, ...)`` for ``action``.
        action: how ``generator`` acts on ``x``.
        generator: one generator ``(p, q)``.
        t: the group parameter (how far along the one-parameter group).

    Returns:
        ``(absolute, relative)``: the largest absolute change of an output entry, and the
        largest change relative to that entry's size. Both 0 for an exactly invariant model.

    Example:
        >>> import torch, lightning_liegg as lg
        >>> from lightning_liegg.testing import invariance_error, o5_invariant
        >>> x = torch.randn(8, 10, dtype=torch.float64)
        >>> h = lg.algebras.so(5)[0]
        >>> err, rel = invariance_error(o5_invariant, x, lg.VectorAction(5, 2), h)
        >>> err < 1e-12
        True
    """
    diff, size = _changes(model, x, action, generator, t)
    return float(diff.max()), float((diff / size.clamp_min(1e-300)).max())


def _changes(
    model: Callable[[Tensor], Any],
    x: Tensor,
    action: Action,
    generator: Tensor,
    t: float,
    output_action: Action | None = None,
) -> tuple[Tensor, Tensor]:
    """|F(exp(t h) . x) - exp(t h) . F(x)| and |F(x)|, entry-wise, in float64.

    ``output_action=None``: the outputs do not move (invariance), |F(exp(t h) . x) - F(x)|.
    """
    moved = action.transform(x, generator, t)
    with isolated(model, x.device):
        before = model(x.detach())
        after = model(moved)
    expected = before if output_action is None else output_action.transform(before, generator, t)
    return (after - expected).abs().double(), before.abs().double()


def assert_invariant(
    model: Callable[[Tensor], Any],
    x: Tensor,
    action: Action,
    generator: Tensor,
    t: float = 0.5,
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> None:
    """Assert that ``model`` gives the same outputs on x and on exp(t h) . x.

    Shares :func:`invariance_error`'s measurement: every output entry may change by at most
    ``atol + rtol * |entry|``.

    Args:
        model: callable or ``nn.Module``, outputs ``(N, ...)``.
        x: inputs ``(N, ...)`` for ``action``.
        action: how ``generator`` acts on ``x``.
        generator: one generator ``(p, q)``.
        t: the group parameter (how far along the one-parameter group).
        rtol: relative tolerance on the outputs.
        atol: absolute tolerance on the outputs.

    Raises:
        AssertionError: with the largest absolute and relative deviation.
    """
    diff, size = _changes(model, x, action, generator, t)
    if not bool((diff <= atol + rtol * size).all()):
        worst, rel = float(diff.max()), float((diff / size.clamp_min(1e-300)).max())
        raise AssertionError(
            f"Expected outputs unchanged by exp({t} h) with h = {generator.tolist()} under "
            f"{action!r} (rtol={rtol}, atol={atol}), but the largest change is {worst:.3g} "
            f"(relative {rel:.3g})."
        )


def assert_symmetry(
    model: Callable[[Tensor], Any],
    x: Tensor,
    action: Action,
    reference: Tensor,
    max_distance: float = 1e-6,
    **kwargs: Any,
) -> SymmetryReport:
    """Assert that LieGG finds exactly ``reference`` as the model's most symmetric subspace.

    The span of the k most symmetric generators (k = the reference's dimension) must be within
    ``max_distance`` (Grassmann distance) of span(reference).

    Returns:
        The report, for further checks.

    Raises:
        AssertionError: with the distance and the report.
    """
    report = liegg(model, x, action, reference=reference, **kwargs)
    distance = report.subspace_distance()
    if not distance <= max_distance:
        k = len(report.reference) if report.reference is not None else 0
        raise AssertionError(
            f"Expected the {k} most symmetric generators to span the reference (distance <= "
            f"{max_distance}), but the distance is {distance:.3g}.\n{report!r}"
        )
    return report


# -- equivariance ------------------------------------------------------------------------------
def equivariance_error(
    model: Callable[[Tensor], Any],
    x: Tensor,
    action: Action,
    output_action: Action | None,
    generator: Tensor,
    t: float = 0.5,
) -> float:
    """The largest deviation between F(exp(t h) . x) and exp(t h) . F(x), relative to F(x).

    Both sides are computed by actually transforming (``action.transform`` on the inputs,
    ``output_action.transform`` on the outputs), a check independent of any derivative.
    ``output_action=None`` compares with F(x) itself (invariance).

    Args:
        model: callable or ``nn.Module``, outputs ``(N, ...)`` that ``output_action`` accepts.
        x: inputs ``(N, ...)`` for ``action``.
        action: how ``generator`` acts on ``x``.
        output_action: how the same ``generator`` acts on the outputs, or None.
        generator: one generator ``(p, q)``.
        t: the group parameter.

    Returns:
        max |F(g x) - g F(x)| / max(max |F(x)|, 1e-300) over every sample and output.

    Raises:
        LieGGError: when the actions do not pair (generator shapes) or reject x or F(x).
    """
    from .functional.options import check_output_action

    check_output_action(action, output_action, "none")
    diff, size = _changes(model, x, action, generator, t, output_action)
    return float(diff.max()) / max(float(size.max()), 1e-300)


def assert_equivariant(
    model: Callable[[Tensor], Any],
    x: Tensor,
    action: Action,
    output_action: Action | None,
    generator: Tensor,
    t: float = 0.5,
    tol: float = 1e-6,
) -> None:
    """Assert that F(exp(t h) . x) equals exp(t h) . F(x) up to ``tol`` (relative).

    Built on :func:`equivariance_error`; same arguments.

    Raises:
        AssertionError: naming the generator, both actions and the error found.
    """
    err = equivariance_error(model, x, action, output_action, generator, t)
    if not err <= tol:
        raise AssertionError(
            f"Expected F(exp({t} h) . x) == exp({t} h) . F(x) with h = {generator.tolist()}, "
            f"input action {action!r}, output action {output_action!r} (relative tol {tol}), "
            f"but the relative error is {err:.3g}."
        )


# -- exactly invariant toys ---------------------------------------------------------------------
def o5_invariant(x: Tensor) -> Tensor:
    """EMLP's O(5) regression target on two 5-vectors: ``(N, 10)`` -> ``(N,)``.

    sin|x1| - |x2|^3 / 2 + <x1, x2> / (|x1| |x2|); its symmetry algebra is so(5).
    """
    x1, x2 = x[:, :5], x[:, 5:]
    n1, n2 = x1.norm(dim=1), x2.norm(dim=1)
    return torch.sin(n1) - n2**3 / 2 + (x1 * x2).sum(1) / (n1 * n2)


def lorentz_invariant(x: Tensor) -> Tensor:
    """Two Lorentz invariants of two four-momenta: ``(N, 8)`` -> ``(N, 2)``; algebra so(1,3).

    Uses the Minkowski products p1.p2 and p1.p1 * p2.p2 with metric diag(+1, -1, -1, -1).
    """
    p = x.reshape(-1, 2, 4)
    eta = torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=x.dtype, device=x.device)

    def mink(a: Tensor, b: Tensor) -> Tensor:
        return (a * b * eta).sum(-1)

    return torch.stack(
        [
            torch.tanh(mink(p[:, 0], p[:, 1]) / 4),
            mink(p[:, 0], p[:, 0]) * mink(p[:, 1], p[:, 1]) / 16,
        ],
        1,
    )


def shear_invariant(images: Tensor) -> Tensor:
    """Weighted row sums of images ``(N, C, H, W)`` -> ``(N, 3)``.

    sum_x I(x, y) is unchanged by the shear x -> x + t y (generator [[0, 1], [0, 0]], not
    antisymmetric) when images vanish near their left and right borders (see
    :func:`bordered_images`); every other linear flow changes it.
    """
    h = images.shape[-2]
    y = torch.linspace(-1, 1, h, dtype=images.dtype, device=images.device)
    rows = images.reshape(images.shape[0], -1, h, images.shape[-1]).sum(dim=(1, 3))  # (N, H)
    weights = torch.stack([torch.ones_like(y), y, y**2 + 0.3 * y**3])
    return torch.tanh(rows @ weights.T / h)


def bordered_images(
    n: int,
    height: int,
    width: int,
    dtype: torch.dtype = torch.float64,
    border: int = 4,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Random blurred images ``(n, 1, height, width)``, zero within ``border`` pixels of edges."""
    img = torch.rand(n, 1, height, width, dtype=dtype, generator=generator)
    img = torch.nn.functional.avg_pool2d(img, 3, stride=1, padding=1)
    mask = torch.zeros(height, width, dtype=dtype)
    mask[border:-border, border:-border] = 1
    return img * mask
