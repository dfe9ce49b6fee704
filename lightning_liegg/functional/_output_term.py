"""The output action's term of an equivariance row: subtract (A_j . F(x_b))_k in place.

Row (b, k), column j of the polarization matrix of an equivariance is
dF_k/dx(x_b) . (A_j . x_b) - (A_j . F(x_b))_k. The second term needs the outputs only. For the
input action's full basis (the matrix units E_ad) and vector or tensor outputs it is sparse:
(E_ad y)_k = delta_ka y_d, so it is written onto diagonals of the rows, O(N K n) instead of
O(N K n^2); other actions (images, a restricted basis) go through ``tangent``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .actions import Action, VectorAction
from .algebraic_actions import DirectSum, TensorAction, TrivialAction

__all__ = ["subtract_output_term"]


def subtract_output_term(
    rows: Tensor, out: Tensor, shape: tuple[int, ...], action: Action, output_action: Action
) -> Tensor:
    """Subtract (A_j . F(x_b))_k from ``rows`` in place and return it.

    Args:
        rows: float64 ``(N, K, m)`` (any strides; a tensor the caller owns), m = ``action.dim``.
        out: the model outputs, flattened ``(N, K)``.
        shape: the outputs' shape before flattening, ``(N, ...)``, as ``output_action`` takes it.
        action: the input action; its basis A_j gives the columns.
        output_action: how the generators act on the outputs.
    """
    y = out.detach().reshape(shape)
    _subtract(rows, y, action, output_action)
    return rows


def _subtract(rows: Tensor, y: Tensor, action: Action, output_action: Action) -> None:
    full = getattr(action, "_full_basis", False)
    n = rows.shape[0]
    if isinstance(output_action, TrivialAction):
        return
    if isinstance(output_action, DirectSum):
        flat = y.reshape(n, -1)
        start = 0
        for part, size in zip(output_action.parts, output_action.sizes, strict=True):
            _subtract(rows.narrow(1, start, size), flat[:, start : start + size], action, part)
            start += size
        return
    if full and isinstance(output_action, VectorAction):
        c, d = output_action.channels, output_action.n
        yv = y.reshape(n, c, d).to(torch.float64)
        view = rows.unflatten(2, (d, d)).unflatten(1, (c, d))  # (N, c, k, a, e)
        # (E_ae y_c)_k = delta_ka y_ce: the diagonal k = a, (N, c, e, diag)
        torch.diagonal(view, dim1=2, dim2=3).sub_(yv[..., None])
        return
    if full and isinstance(output_action, TensorAction):
        c, d = output_action.channels, output_action.n
        t = y.reshape(n, c, d, d).to(torch.float64)
        view = rows.unflatten(2, (d, d)).unflatten(1, (c, d, d))  # (N, c, i, l, a, e)
        # (E_ae T + T E_ae^T)_il = delta_ia T_el + T_ie delta_la
        torch.diagonal(view, dim1=2, dim2=4).sub_(t.transpose(2, 3)[..., None])  # (N,c,l,e,i=a)
        torch.diagonal(view, dim1=3, dim2=4).sub_(t[..., None])  # (N, c, i, e, l=a)
        return
    work = y.to(torch.promote_types(y.dtype, torch.float32))
    basis = action.basis.to(dtype=work.dtype, device=work.device)
    if full and output_action._full_basis:
        tangents = output_action.basis_tangents(work)  # the matrix units, fast paths included
    else:
        tangents = output_action.tangent(work, basis)  # (m, N, ...)
    rows.sub_(tangents.reshape(basis.shape[0], n, -1).permute(1, 2, 0))
