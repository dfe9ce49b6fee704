"""Which inputs break a symmetry: the Lie derivative along given generators, per sample.

The report's Gram matrix G = sum_b G_b sums one small matrix per sample, G_b = E_b^T E_b, with
E_b the sample's rows of the polarization matrix (one per output). For a unit generator v with
coordinates c in the action's basis, c^T G_b c = ||L_v F(x_b)||^2 is the sample's squared Lie
derivative along v (summed over outputs). Divided by lambda_max(G / N), the largest symmetry
variance of the whole algebra on the same samples, it is scale free, and its mean over the
samples is c^T G c / lambda_max(G): the report's relative variance of v (its
``relative_spectrum`` entry for one of its own generators, ``reference_variance(relative=True)``
for a reference element).

The per-sample matrices come from the same passes as the Gram matrix
(:func:`_update_per_sample`, a drop-in for ``analysis._update`` that the callback uses), so the
distribution costs no extra pass.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .._checks import DegenerateWarning, LieGGError, check_basis
from .actions import Action
from .analysis import _chunks
from .layers import OUTPUT
from .options import AnalysisOptions
from .polarization import polarization_rows

__all__ = ["symmetry_violation", "scaled_violation", "generator_coordinates"]

_FLOOR = 1e-300


def _update_per_sample(
    model: Callable[[Tensor], Any], x: Tensor, opts: AnalysisOptions
) -> tuple[Tensor, int, Tensor]:
    """Like ``analysis._update`` (same options, no layers), also the per-sample Gram matrices.

    Returns:
        ``(gram, n, sample_grams)``: the float64 Gram matrix ``(m, m)`` on ``device``, the
        sample count, and the float64 per-sample matrices E_b^T E_b ``(n, m, m)`` on CPU, whose
        sum is ``gram`` up to rounding.
    """
    m = opts.action.dim
    where = opts.device if opts.device is not None else x.device
    gram = torch.zeros(m, m, dtype=torch.float64, device=where)
    per_sample = []
    chunks = _chunks(model, x, opts.chunk_size, opts.prepare, opts.forward_fn, opts.extra)
    for start, net, chunk in chunks:
        tangents = None if opts.tangents is None else opts.tangents(start, chunk)
        rows = polarization_rows(net, chunk, opts, tangents)[OUTPUT]  # float64 (n, K, m)
        grams = torch.einsum("nki,nkj->nij", rows, rows)
        gram += grams.sum(dim=0).to(gram.device)
        per_sample.append(grams.cpu())
    sample_grams = (
        torch.cat(per_sample) if per_sample else torch.zeros(0, m, m, dtype=torch.float64)
    )
    return gram, int(x.shape[0]), sample_grams


def generator_coordinates(generators: Any, action: Action) -> Tensor:
    """Coordinates ``(k, m)`` of unit-normalised generators in ``action``'s orthonormal basis.

    Each generator is scaled to unit Frobenius norm, then projected onto the span of the basis
    (the component the analysis can see; the whole generator for ``gl(n)`` and the image
    actions, whose bases span every matrix of their shape).

    Args:
        generators: ``(k, p, q)`` or one ``(p, q)`` generator, ``(p, q)`` =
            ``action.generator_shape``.
        action: the action whose basis the Gram matrices refer to.

    Raises:
        LieGGError: on a wrong shape or dtype, non-finite entries, or a zero generator.
    """
    gens = check_basis(generators, tuple(action.generator_shape), "generators", f"for {action!r}")
    gens = gens.detach().to("cpu", torch.float64)
    k = gens.shape[0]
    flat = gens.reshape(k, -1)
    norms = torch.linalg.vector_norm(flat, dim=1, keepdim=True)
    if bool((norms <= _FLOOR).any()):
        raise LieGGError(
            f"Expected non-zero generators for {action!r}, but generator(s) "
            f"{torch.nonzero(norms[:, 0] <= _FLOOR).flatten().tolist()} are zero."
        )
    basis = action.basis.detach().to("cpu", torch.float64).reshape(action.dim, -1)
    return (flat / norms) @ basis.T


def scaled_violation(sample_grams: Tensor, coords: Tensor, gram: Tensor, total: int) -> Tensor:
    """c^T G_b c divided by lambda_max(``gram`` / ``total``): ``(n, k)`` float64.

    ``gram`` and ``total`` may be those of more samples than ``sample_grams`` holds (all
    processes under DDP), so every rank's values are on the scale of the whole set.
    """
    c = coords.to(torch.float64)
    g = gram.detach().to("cpu", torch.float64)
    top = float(torch.linalg.eigvalsh(0.5 * (g + g.T))[-1])
    quad = torch.einsum("ki,nij,kj->nk", c, sample_grams.to(torch.float64), c).clamp_min(0.0)
    if not top > _FLOOR:
        warnings.warn(
            "The polarization matrix is zero: the model's output does not depend on its input, "
            "so no violation can be scaled; the violations are NaN.",
            DegenerateWarning,
            stacklevel=3,
        )
        return torch.full_like(quad, float("nan"))
    return quad / (top / total)


def symmetry_violation(
    model: Callable[[Tensor], Any],
    x: Tensor,
    action: Action,
    generators: Tensor,
    *,
    output_action: Action | None = None,
    output_transform: Callable[[Any], Tensor] | None = None,
    reduction: str = "none",
    ad_mode: str = "auto",
    chunk_size: int | None = None,
) -> Tensor:
    """Per-sample violation of the symmetries ``generators``: which inputs break them.

    For each sample x_b and generator v (scaled to unit Frobenius norm), the squared Lie
    derivative ||L_v F(x_b)||^2 (summed over outputs), divided by lambda_max(G / N), the largest
    symmetry variance of the whole algebra of ``action`` on the same samples (G the Gram matrix
    of the polarization matrix, as in :func:`lightning_liegg.liegg`). The mean over samples is
    the report's relative variance of v: for ``report.generators[i]`` its
    ``relative_spectrum[i]``, for the elements of an orthonormal reference its
    ``reference_variance(relative=True)``. Near zero: the sample follows the symmetry; of
    order one: it breaks it as much as the least symmetric direction does on average.

    Args:
        model: ``nn.Module`` or callable, as in :func:`lightning_liegg.liegg`.
        x: inputs ``(N, ...)`` for ``action``; not modified.
        action: how generators act on ``x``.
        generators: ``(k, p, q)`` or one ``(p, q)`` generator of ``action.generator_shape``
            (e.g. ``report.generators[:3]`` or ``lg.algebras.so(3)``). Each is scaled to unit
            norm; only its component in the span of ``action.basis`` counts.
        output_action: for equivariant models, how the generators act on the outputs.
        output_transform: applied to the outputs first.
        reduction: ``"none"`` (one row per output) or ``"sum"``, as in ``liegg``.
        ad_mode: ``"auto"``, ``"forward"`` or ``"reverse"``.
        chunk_size: differentiate this many samples at a time.

    Returns:
        float64 ``(N, k)`` on CPU.

    Raises:
        LieGGError: on inputs, generators or options that do not fit the action.
        NonFiniteError: when outputs or gradients are not finite.

    Example:
        >>> import torch, lightning_liegg as lg
        >>> model = lambda x: (x ** 2).sum(dim=1)          # invariant to so(3)
        >>> x = torch.randn(16, 3, dtype=torch.float64)
        >>> v = lg.symmetry_violation(model, x, lg.VectorAction(dim=3), lg.algebras.so(3))
        >>> v.shape, float(v.abs().max()) < 1e-12
        (torch.Size([16, 3]), True)
    """
    opts = AnalysisOptions(action, reduction, output_transform, ad_mode, output_action, chunk_size)
    action.check_input(x)
    coords = generator_coordinates(generators, action)
    gram, n, sample_grams = _update_per_sample(model, x, opts)
    return scaled_violation(sample_grams, coords, gram, n)
