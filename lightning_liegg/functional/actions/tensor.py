"""gl(n) acting on rank-2 tensors: h . T = h T + T h^T (stress, inertia, covariance)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..._checks import LieGGError
from .base import Action, _positive, _times, exp_t

__all__ = ["TensorAction"]


class TensorAction(Action):
    """gl(dim) acting on ``channels`` rank-2 tensors: h . T = h T + T h^T.

    The group element exp(t h) maps T to exp(t h) T exp(t h)^T, as a stress, inertia or
    covariance tensor transforms under a linear change of coordinates. Inputs or outputs are
    ``(N, channels, dim, dim)`` or ``(N, channels*dim*dim)`` (row-major tensors).

    Args:
        dim: dimension n of the space (tensors are n x n, generators n x n).
        channels: number of tensors per sample.
        basis: optional ``(k, dim, dim)`` subspace to search.

    Example:
        >>> import lightning_liegg as lg
        >>> lg.TensorAction(dim=3).size
        9
    """

    def __init__(self, dim: int, channels: int = 1, basis: Tensor | None = None) -> None:
        self.n = _positive("TensorAction", "dim", dim)
        self.channels = _positive("TensorAction", "channels", channels)
        self.size = self.channels * self.n * self.n
        self.generator_shape = (dim, dim)
        super().__init__(basis)

    def __repr__(self) -> str:
        return f"TensorAction(dim={self.n}, channels={self.channels})"

    def _canonical(self, x: Tensor) -> Tensor:
        c, n = self.channels, self.n
        if x.ndim == 2 and x.shape[1] == c * n * n:
            return x.reshape(x.shape[0], c, n, n)
        if x.ndim == 4 and tuple(x.shape[1:]) == (c, n, n):
            return x
        if c == 1 and x.ndim == 3 and tuple(x.shape[1:]) == (n, n):
            return x.unsqueeze(1)
        raise LieGGError(
            f"Expected tensors of shape (N, {c}, {n}, {n}) or (N, {c * n * n}) for {self!r} "
            f"({c} tensor(s) of shape {n} x {n}), but got shape {tuple(x.shape)}."
        )

    def tangent(self, x: Tensor, generators: Tensor) -> Tensor:
        """The tangent h T + T h^T for every generator and tensor: ``(k, *x.shape)``."""
        t = self._canonical(x)
        out = torch.einsum("kij,bcjl->kbcil", generators, t) + torch.einsum(
            "bcij,klj->kbcil", t, generators
        )
        return out.reshape(generators.shape[0], *x.shape)

    def contract(self, grads: Tensor, x: Tensor) -> Tensor:
        """sum_c vec(G_c T_c^T + G_c^T T_c), row-major, G = dF_k/dT: ``(N, K, dim*dim)``."""
        t = self._canonical(x)
        n, k = grads.shape[:2]
        g = grads.reshape(n, k, self.channels, self.n, self.n)
        out = torch.einsum("bkcil,bcjl->bkij", g, t) + torch.einsum("bkcli,bclj->bkij", g, t)
        return out.flatten(2)

    def transform(self, x: Tensor, generator: Tensor, t: float | Tensor = 1.0) -> Tensor:
        """exp(t h) T exp(t h)^T for every tensor; see :meth:`Action.transform`."""
        tc = self.check_input(x)
        h = self.check_single_generator(generator)
        times, batched = _times(t, x)
        g = exp_t(h[0], times).to(dtype=x.dtype, device=x.device)  # (T, n, n)
        out = torch.einsum("tij,bcjl,tml->tbcim", g, tc, g).reshape(len(times), *x.shape)
        return out if batched else out[0]

    def subtract_output_term(self, rows: Tensor, y: Tensor, action: Action) -> None:
        """(E_ae T + T E_ae^T)_il = delta_ia T_el + T_ie delta_la, onto diagonals of the rows.

        For the input action's full basis; see :meth:`Action.subtract_output_term`.
        """
        if not getattr(action, "_full_basis", False):
            super().subtract_output_term(rows, y, action)
            return
        n, c, d = rows.shape[0], self.channels, self.n
        t = y.reshape(n, c, d, d).to(torch.float64)
        view = rows.unflatten(2, (d, d)).unflatten(1, (c, d, d))  # (N, c, i, l, a, e)
        torch.diagonal(view, dim1=2, dim2=4).sub_(t.transpose(2, 3)[..., None])  # (N,c,l,e,i=a)
        torch.diagonal(view, dim1=3, dim2=4).sub_(t[..., None])  # (N, c, i, e, l=a)
