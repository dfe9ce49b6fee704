"""gl(n) acting on tuples of vectors: O(n), SO(3) on point clouds, the Lorentz group."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..._checks import LieGGError
from .base import Action, _positive, _times, exp_t

__all__ = ["VectorAction"]


def channel_vectors(x: Tensor, c: int, n: int, action: Any) -> Tensor:
    """``x`` as ``(N, c, n)``: c vectors of dimension n per sample, from ``(N, c*n)`` or itself.

    Raises:
        LieGGError: for another shape (the message names ``action``).
    """
    if x.ndim == 2 and x.shape[1] == c * n:
        return x.reshape(x.shape[0], c, n)
    if x.ndim == 3 and tuple(x.shape[1:]) == (c, n):
        return x
    raise LieGGError(
        f"Expected inputs of shape (N, {c * n}) or (N, {c}, {n}) for {action!r} "
        f"({c} vector(s) of dimension {n}), but got shape {tuple(x.shape)}."
    )


class VectorAction(Action):
    """gl(dim) acting on each of ``channels`` vectors in R^dim.

    The input is ``(N, channels*dim)`` or ``(N, channels, dim)``; h acts as x_c -> h x_c on
    every vector. O(n) on tuples of vectors, SO(3) on point clouds and the Lorentz group on
    four-momenta are all this action.

    Args:
        dim: dimension n of each vector (generators are n x n).
        channels: number of vectors per sample.
        basis: optional ``(k, dim, dim)`` subspace to search.

    Example:
        >>> import lightning_liegg as lg
        >>> lg.VectorAction(dim=5, channels=2).dim
        25
    """

    def __init__(self, dim: int, channels: int = 1, basis: Tensor | None = None) -> None:
        self.n = _positive("VectorAction", "dim", dim)
        self.channels = _positive("VectorAction", "channels", channels)
        self.generator_shape = (dim, dim)
        super().__init__(basis)

    def __repr__(self) -> str:
        return f"VectorAction(dim={self.n}, channels={self.channels})"

    def _canonical(self, x: Tensor) -> Tensor:
        return channel_vectors(x, self.channels, self.n, self)

    def tangent(self, x: Tensor, generators: Tensor) -> Tensor:
        """(h x_c) for every generator and vector: ``(k, *x.shape)``."""
        xv = self._canonical(x)
        out = torch.einsum("kij,bcj->kbci", generators, xv)
        return out.reshape(generators.shape[0], *x.shape)

    def contract(self, grads: Tensor, x: Tensor) -> Tensor:
        """sum_c vec(dF_k/dx_c x_c^T), row-major: ``(N, K, dim*dim)``."""
        xv = self._canonical(x)
        g = grads.reshape(grads.shape[0], grads.shape[1], self.channels, self.n)
        if self.channels > 4:  # e.g. point clouds: a bmm over samples, summing the channels
            return torch.einsum("bkci,bcj->bkij", g, xv).flatten(2)
        # few vectors (O(5): 2, Lorentz: a few): outer products summed by hand; einsum would
        # run a bmm of tiny (n x c) @ (c x n) products per sample, several times slower
        out = g[:, :, 0, :, None] * xv[:, None, 0, None, :]
        for c in range(1, self.channels):
            out = out.addcmul_(g[:, :, c, :, None], xv[:, None, c, None, :])
        return out.flatten(2)

    def transform(self, x: Tensor, generator: Tensor, t: float | Tensor = 1.0) -> Tensor:
        """exp(t h) applied to every vector; see :meth:`Action.transform`."""
        xv = self.check_input(x)
        h = self.check_single_generator(generator)
        times, batched = _times(t, x)
        g = exp_t(h[0], times).to(dtype=x.dtype, device=x.device)  # (T, n, n)
        out = torch.einsum("tij,bcj->tbci", g, xv).reshape(len(times), *x.shape)
        return out if batched else out[0]

    def subtract_output_term(self, rows: Tensor, y: Tensor, action: Action) -> None:
        """(E_ae y_c)_k = delta_ka y_ce: for the full basis, written onto diagonals of the rows.

        O(N K n) instead of O(N K n^2); see :meth:`Action.subtract_output_term`.
        """
        if not getattr(action, "_full_basis", False):
            super().subtract_output_term(rows, y, action)
            return
        n, c, d = rows.shape[0], self.channels, self.n
        yv = y.reshape(n, c, d).to(torch.float64)
        view = rows.unflatten(2, (d, d)).unflatten(1, (c, d))  # (N, c, k, a, e)
        torch.diagonal(view, dim1=2, dim2=3).sub_(yv[..., None])  # k = a: (N, c, e, diag)
