"""Bases of reference Lie algebras, as float64 tensors of shape ``(k, p, q)``.

Every basis is orthonormal in the Frobenius inner product, so that projections onto its span
are simple. Any ``(k, p, q)`` tensor is a valid ``reference`` too; it is orthonormalised when
used.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._checks import LieGGError

__all__ = ["so", "lorentz", "rotation2d", "scaling2d", "translation2d", "gl", "from_name"]


def _check_n(n: int, name: str, minimum: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < minimum:
        raise LieGGError(f"Expected {name}(n) with an integer n >= {minimum}, but got {n!r}.")


def so(n: int) -> Tensor:
    """Antisymmetric matrices: the rotations of R^n.

    Args:
        n: dimension, n >= 2.

    Returns:
        ``(n(n-1)/2, n, n)`` float64: (E_ij - E_ji) / sqrt(2) for i < j.
    """
    _check_n(n, "so", 2)
    out = []
    for i in range(n):
        for j in range(i + 1, n):
            g = torch.zeros(n, n, dtype=torch.float64)
            g[i, j], g[j, i] = -1.0, 1.0
            out.append(g / math.sqrt(2.0))
    return torch.stack(out)


def gl(n: int) -> Tensor:
    """All n x n matrices (the general linear algebra): the matrix units E_ij, row-major.

    Returns:
        ``(n*n, n, n)`` float64.
    """
    _check_n(n, "gl", 1)
    return torch.eye(n * n, dtype=torch.float64).reshape(n * n, n, n)


def lorentz() -> Tensor:
    """so(1,3): generators of the Lorentz group for the metric diag(+1, -1, -1, -1).

    h is in so(1,3) when h^T eta + eta h = 0, i.e. h = eta A with A antisymmetric: three boosts
    (symmetric, mixing time and space) and three rotations.

    Returns:
        ``(6, 4, 4)`` float64, orthonormal.
    """
    eta = torch.diag(torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=torch.float64))
    return eta @ so(4)


def _embed(linear: Tensor, affine: bool) -> Tensor:
    if not affine:
        return linear
    out = torch.zeros(linear.shape[0], 2, 3, dtype=torch.float64)
    out[:, :, :2] = linear
    return out


def rotation2d(affine: bool = False) -> Tensor:
    """Rotations of the image plane about its centre.

    Args:
        affine: return 2x3 generators ``[A | 0]`` for ``ImageAction(affine=True)``.

    Returns:
        ``(1, 2, 2)`` or ``(1, 2, 3)`` float64: [[0, -1], [1, 0]] / sqrt(2).
    """
    return _embed(so(2), affine)


def scaling2d(affine: bool = False) -> Tensor:
    """Isotropic scaling of the image plane about its centre.

    Returns:
        ``(1, 2, 2)`` or ``(1, 2, 3)`` float64: identity / sqrt(2).
    """
    return _embed(torch.eye(2, dtype=torch.float64).unsqueeze(0) / math.sqrt(2.0), affine)


def translation2d() -> Tensor:
    """Translations along x (width) and y (height); only for ``ImageAction(affine=True)``.

    Returns:
        ``(2, 2, 3)`` float64: [0 | e_x] and [0 | e_y].
    """
    out = torch.zeros(2, 2, 3, dtype=torch.float64)
    out[0, 0, 2] = 1.0
    out[1, 1, 2] = 1.0
    return out


_NAMED = {
    "lorentz": lambda n, affine: lorentz(),
    "rotation2d": lambda n, affine: rotation2d(affine),
    "scaling2d": lambda n, affine: scaling2d(affine),
    "translation2d": lambda n, affine: translation2d(),
}


def from_name(name: str, n: int | None = None, affine: bool = False) -> Tensor:
    """A reference algebra by name, for configuration files (LightningCLI YAML).

    Args:
        name: ``"so(N)"``, ``"gl(N)"``, ``"lorentz"``, ``"rotation2d"``, ``"scaling2d"``,
            ``"translation2d"``, or ``"so"``/``"gl"`` for the dimension ``n``.
        n: the vector dimension used by a bare ``"so"`` or ``"gl"``.
        affine: return the 2x3 versions of the 2-D algebras.

    Returns:
        ``(k, p, q)`` float64 basis.

    Raises:
        LieGGError: on an unknown name.
    """
    key = name.strip().lower().replace(" ", "")
    if key in _NAMED:
        return _NAMED[key](n, affine)
    for prefix, make in (("so", so), ("gl", gl)):
        if key == prefix and n is not None:
            return make(n)
        if (
            key.startswith(prefix + "(")
            and key.endswith(")")
            and key[len(prefix) + 1 : -1].isdigit()
        ):
            return make(int(key[len(prefix) + 1 : -1]))
    raise LieGGError(
        "Expected a reference algebra name such as 'so(3)', 'gl(2)', 'lorentz', 'rotation2d', "
        f"'scaling2d' or 'translation2d', but got {name!r}."
    )
