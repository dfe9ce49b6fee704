"""Bases of reference Lie algebras, as float64 tensors of shape ``(k, p, q)``.

Every basis is orthonormal in the Frobenius inner product, so that projections onto its span
are simple. Any ``(k, p, q)`` tensor is a valid ``reference`` too; it is orthonormalised when
used.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._checks import LieGGError, shown

__all__ = [
    "so",
    "lorentz",
    "rotation2d",
    "scaling2d",
    "translation2d",
    "projective",
    "gl",
    "dilation1d",
    "translation1d",
    "rotation3d",
    "translation3d",
    "brightness",
    "grey_rotations",
    "luminance_preserving",
    "from_name",
]


def _check_n(n: int, name: str, minimum: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < minimum:
        raise LieGGError(f"Expected {name}(n) with an integer n >= {minimum}, but got {shown(n)}.")


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


def projective() -> Tensor:
    """The projective algebra of the image plane (perspective maps).

    For ``ImageAction(projective=True)``: 3 x 3 generators [[A, b], [c^T, 0]] acting on
    homogeneous pixel coordinates (x, y, 1), the eight matrix units other than E_33. E_33 adds
    nothing: the identity moves no point, so E_33's field is that of -(E_11 + E_22). The eight
    span a complement of the identity in gl(3), isomorphic to sl(3) as the plane sees it. The
    first six are aff(2)'s [A | b] row-major, the last two the perspective fields
    -(x^2 ∂x + xy ∂y) and -(xy ∂x + y^2 ∂y).

    Returns:
        ``(8, 3, 3)`` float64, orthonormal.
    """
    return torch.eye(9, dtype=torch.float64).reshape(9, 3, 3)[:8].clone()


def dilation1d(affine: bool = False) -> Tensor:
    """Dilation of a signal's time axis about its centre (``SignalAction``).

    Args:
        affine: return the 1x2 generator ``[1 | 0]`` for ``SignalAction(affine=True)``.

    Returns:
        ``(1, 1, 1)`` or ``(1, 1, 2)`` float64.
    """
    out = torch.zeros(1, 1, 2 if affine else 1, dtype=torch.float64)
    out[0, 0, 0] = 1.0
    return out


def translation1d() -> Tensor:
    """The time shift ``[0 | 1]``; only for ``SignalAction(affine=True)``.

    Returns:
        ``(1, 1, 2)`` float64.
    """
    out = torch.zeros(1, 1, 2, dtype=torch.float64)
    out[0, 0, 1] = 1.0
    return out


def rotation3d(affine: bool = False) -> Tensor:
    """Rotations of 3-D space (so(3)), for ``VolumeAction``; 3x4 ``[A | 0]`` when affine.

    Element 0 turns the x-y plane (about z), 1 the x-z plane (about y), 2 the y-z plane
    (about x), as :func:`so`.

    Returns:
        ``(3, 3, 3)`` or ``(3, 3, 4)`` float64.
    """
    rot = so(3)
    if not affine:
        return rot
    out = torch.zeros(3, 3, 4, dtype=torch.float64)
    out[:, :, :3] = rot
    return out


def translation3d() -> Tensor:
    """Translations along x (W), y (H) and z (D); only for ``VolumeAction(affine=True)``.

    Returns:
        ``(3, 3, 4)`` float64: [0 | e_x], [0 | e_y], [0 | e_z].
    """
    out = torch.zeros(3, 3, 4, dtype=torch.float64)
    for i in range(3):
        out[i, i, 3] = 1.0
    return out


def _grey_projector(channels: int) -> Tensor:
    """P = I - 1 1^T / C: removes the grey (all-equal) component of a channel vector."""
    return torch.eye(channels, dtype=torch.float64) - 1.0 / channels


def _span(mats: Tensor) -> Tensor:
    """An orthonormal basis (Frobenius) of the span of ``mats`` ``(k, p, q)``."""
    k, p, q = mats.shape
    _, s, vh = torch.linalg.svd(mats.reshape(k, p * q), full_matrices=False)
    rank = int((s > s[0] * 1e-10).sum())
    return vh[:rank].reshape(rank, p, q).contiguous()


def brightness(channels: int = 3) -> Tensor:
    """Brightness: every channel scaled by the same factor (for ``ChannelAction``).

    exp(t h) multiplies the image by e^(t / sqrt(C)): the identity, normalised.

    Returns:
        ``(1, C, C)`` float64.
    """
    _check_n(channels, "brightness", 1)
    return torch.eye(channels, dtype=torch.float64).unsqueeze(0) / math.sqrt(channels)


def grey_rotations(channels: int = 3) -> Tensor:
    """Rotations of the channel space that keep the grey axis (1, ..., 1) fixed.

    They keep each pixel's grey level (the channel mean) and its distance from grey (a
    saturation) and turn its colour about the grey axis: for RGB (C = 3) this is one
    generator, a hue rotation, ``[n]_x / sqrt 2`` with n = (1, 1, 1) / sqrt 3, so that
    exp(sqrt(2) a h) turns colours by the angle a (R towards G towards B). For C channels,
    the antisymmetric maps with h 1 = 0: (C - 1)(C - 2) / 2 generators.

    Returns:
        ``((C-1)(C-2)/2, C, C)`` float64, orthonormal.
    """
    _check_n(channels, "grey_rotations", 3)
    if channels == 3:
        n = 1.0 / math.sqrt(3.0)
        cross = torch.tensor([[0.0, -n, n], [n, 0.0, -n], [-n, n, 0.0]], dtype=torch.float64)
        return (cross / math.sqrt(2.0)).unsqueeze(0)
    proj = _grey_projector(channels)
    return _span(proj @ so(channels) @ proj)


def luminance_preserving(channels: int = 3) -> Tensor:
    """All channel maps that keep the channel mean (a plain luminance) of every pixel.

    d/dt mean(exp(t h) x) = 1^T h x / C vanishes for every colour x when the column sums of h
    are zero (1^T h = 0): C (C - 1) generators, e.g. 6 for RGB. They include
    :func:`grey_rotations` but not :func:`brightness`. A function of the mean only is
    invariant to all of them.

    Returns:
        ``(C(C-1), C, C)`` float64, orthonormal.
    """
    _check_n(channels, "luminance_preserving", 2)
    return _span(_grey_projector(channels) @ gl(channels))


_NAMED = {
    "lorentz": lambda n, affine: lorentz(),
    "rotation2d": lambda n, affine: rotation2d(affine),
    "scaling2d": lambda n, affine: scaling2d(affine),
    "translation2d": lambda n, affine: translation2d(),
    "projective": lambda n, affine: projective(),
    "dilation1d": lambda n, affine: dilation1d(affine),
    "translation1d": lambda n, affine: translation1d(),
    "rotation3d": lambda n, affine: rotation3d(affine),
    "translation3d": lambda n, affine: translation3d(),
    "brightness": lambda n, affine: brightness(3 if n is None else n),
    "grey_rotations": lambda n, affine: grey_rotations(3 if n is None else n),
    "luminance_preserving": lambda n, affine: luminance_preserving(3 if n is None else n),
}


def from_name(name: str, n: int | None = None, affine: bool = False) -> Tensor:
    """A reference algebra by name, for configuration files (LightningCLI YAML).

    Args:
        name: ``"so(N)"``, ``"gl(N)"``, ``"lorentz"``, ``"rotation2d"``, ``"scaling2d"``,
            ``"translation2d"``, ``"projective"``, ``"dilation1d"``, ``"translation1d"``,
            ``"rotation3d"``, ``"translation3d"``, ``"brightness"``, ``"grey_rotations"``,
            ``"luminance_preserving"``, or ``"so"``/``"gl"`` for the dimension ``n``.
        n: the vector dimension used by a bare ``"so"`` or ``"gl"``; the number of channels
            of the colour algebras (default 3).
        affine: return the affine versions of the 1-D, 2-D and 3-D algebras.

    Returns:
        ``(k, p, q)`` float64 basis.

    Raises:
        LieGGError: on an unknown name.
    """
    if not isinstance(name, str):
        raise LieGGError(
            f"Expected a reference algebra name as a string, but got {type(name).__name__}."
        )
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
        "'scaling2d', 'translation2d', 'projective', 'dilation1d', 'translation1d', 'rotation3d', "
        f"'translation3d', 'brightness', 'grey_rotations' or 'luminance_preserving', but got "
        f"{name!r}."
    )
