"""Discrete transforms ``x -> g x`` for :func:`lightning_liegg.transform_errors` and the callback.

Each is a callable on a batch ``(N, ...)`` that returns the transformed batch; any other
callable works too. The factories (``rot90(k)``, ``shift(...)``, ``permute(...)``) return small
objects with a readable ``repr`` that pickle (so a callback holding them survives
``ddp_spawn``), as do the plain functions.

Conventions: images are ``(N, C, H, W)`` or ``(N, H, W)`` (the last two dimensions are the
height and the width), signals ``(N, C, T)`` (time last), sets ``(N, n, d)`` (elements on
dimension 1).

Example:
    >>> import torch, lightning_liegg as lg
    >>> x = torch.arange(4.0).reshape(1, 1, 2, 2)
    >>> lg.transforms.hflip(x).flatten().tolist(), lg.transforms.rot90(1)(x).flatten().tolist()
    ([1.0, 0.0, 3.0, 2.0], [1.0, 3.0, 0.0, 2.0])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .exceptions import LieGGError

__all__ = [
    "Compose",
    "Permute",
    "Rot90",
    "Shift",
    "c4",
    "compose",
    "d4",
    "hflip",
    "permute",
    "rot90",
    "shift",
    "time_reversal",
    "transpose",
    "vflip",
]


def _check_ndim(x: Tensor, least: int, what: str) -> None:
    if not isinstance(x, Tensor) or x.ndim < least:
        got = f"shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
        raise LieGGError(f"Expected {what}, but got {got}.")


def _least(dim: int) -> int:
    """The fewest batch dimensions (the batch included) that have dimension ``dim``."""
    return abs(dim) + 1 if dim < 0 else dim + 1


def hflip(x: Tensor) -> Tensor:
    """Mirror images left to right: reverse the last dimension (the width)."""
    _check_ndim(x, 2, "a batch (N, ..., W) to flip horizontally")
    return torch.flip(x, dims=(-1,))


def vflip(x: Tensor) -> Tensor:
    """Mirror images top to bottom: reverse the second-last dimension (the height)."""
    _check_ndim(x, 3, "images (N, H, W) or (N, C, H, W) to flip vertically")
    return torch.flip(x, dims=(-2,))


def transpose(x: Tensor) -> Tensor:
    """Reflect images in their main diagonal: swap the height and width dimensions."""
    _check_ndim(x, 3, "images (N, H, W) or (N, C, H, W) to transpose")
    return x.transpose(-2, -1)


def time_reversal(x: Tensor) -> Tensor:
    """Play signals ``(N, C, T)`` (or ``(N, T)``) backwards: reverse the last dimension."""
    _check_ndim(x, 2, "signals (N, T) or (N, C, T) to reverse in time")
    return torch.flip(x, dims=(-1,))


class Rot90:
    """Rotate images by ``k`` quarter turns, counter-clockwise as displayed (row 0 on top).

    The convention of ``torch.rot90(x, k, dims=(-2, -1))`` and ``numpy.rot90``. Non-square
    images come out with height and width swapped (odd ``k``).
    """

    def __init__(self, k: int = 1) -> None:
        if isinstance(k, bool) or not isinstance(k, int):
            raise LieGGError(f"Expected k to be an integer (quarter turns), but got {k!r}.")
        self.k = k

    def __call__(self, x: Tensor) -> Tensor:
        """The batch ``x`` ``(N, ..., H, W)`` turned by ``k`` quarter turns."""
        _check_ndim(x, 3, "images (N, H, W) or (N, C, H, W) to rotate")
        return torch.rot90(x, self.k, dims=(-2, -1))

    def __repr__(self) -> str:
        return f"rot90({self.k})"


def rot90(k: int = 1) -> Rot90:
    """A rotation by ``k`` quarter turns (see :class:`Rot90`)."""
    return Rot90(k)


class Shift:
    """Shift a batch by whole samples along some dimensions, circularly or with a fill value.

    Args:
        shifts: steps along each dimension of ``dims`` (an int for one dimension); positive
            moves content towards higher indices.
        dims: the dimensions, counted from the end of the sample (negative) or of the batch
            (positive, dimension 0 being the batch, which may not be shifted).
        circular: wrap around (a cyclic shift, ``torch.roll``); otherwise the vacated entries
            take ``fill`` (an integer translation of a finite signal or image).
        fill: the value of vacated entries without ``circular``.
    """

    def __init__(
        self,
        shifts: int | Sequence[int],
        dims: int | Sequence[int] = -1,
        circular: bool = True,
        fill: float = 0.0,
    ) -> None:
        shifts_t = (shifts,) if isinstance(shifts, int) else tuple(shifts)
        dims_t = (dims,) if isinstance(dims, int) else tuple(dims)
        if (
            not shifts_t
            or len(shifts_t) != len(dims_t)
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in shifts_t + dims_t)
        ):
            raise LieGGError(
                "Expected shifts and dims to be integers or equally long sequences of integers, "
                f"but got shifts={shifts!r}, dims={dims!r}."
            )
        if 0 in dims_t:
            raise LieGGError("Expected dims to leave the batch dimension 0 alone, but got 0.")
        self.shifts, self.dims, self.circular, self.fill = shifts_t, dims_t, bool(circular), fill

    def __call__(self, x: Tensor) -> Tensor:
        """The batch ``x`` shifted (same shape)."""
        _check_ndim(x, max(_least(d) for d in self.dims), "a batch to shift")
        if self.circular:
            return torch.roll(x, self.shifts, self.dims)
        out = torch.full_like(x, self.fill)
        src: list[slice] = [slice(None)] * x.ndim
        dst: list[slice] = [slice(None)] * x.ndim
        for s, d in zip(self.shifts, self.dims, strict=True):
            size = x.shape[d]
            if abs(s) >= size:
                return out
            src[d] = slice(0, size - s) if s >= 0 else slice(-s, size)
            dst[d] = slice(s, size) if s >= 0 else slice(0, size + s)
        out[tuple(dst)] = x[tuple(src)]
        return out

    def __repr__(self) -> str:
        return (
            f"shift({list(self.shifts)}, dims={list(self.dims)}, circular={self.circular}"
            + ("" if self.circular else f", fill={self.fill}")
            + ")"
        )


def shift(
    shifts: int | Sequence[int],
    dims: int | Sequence[int] = -1,
    circular: bool = True,
    fill: float = 0.0,
) -> Shift:
    """A cyclic (``circular=True``) or zero-filled integer shift (see :class:`Shift`)."""
    return Shift(shifts, dims, circular, fill)


class Permute:
    """Reorder the entries of one dimension: a set's elements or an image's channels.

    Args:
        perm: the new order (a permutation of ``range(size)``), or None for a fixed random
            permutation drawn from ``seed`` (the size read from the first batch; a private
            generator, the global RNG is not touched).
        dim: the dimension (1: set elements of ``(N, n, d)``, channels of ``(N, C, H, W)``).
        seed: seed of the random permutation when ``perm`` is None.
    """

    def __init__(self, perm: Sequence[int] | Tensor | None = None, dim: int = 1, seed: int = 0):
        if isinstance(dim, bool) or not isinstance(dim, int) or dim == 0:
            raise LieGGError(f"Expected dim to be a non-zero integer, but got {dim!r}.")
        self.dim, self.seed = dim, seed
        self.perm: Tensor | None = None
        if perm is not None:
            p = torch.as_tensor(perm)
            if (
                p.ndim != 1
                or p.dtype.is_floating_point
                or not torch.equal(p.sort().values, torch.arange(len(p)))
            ):
                raise LieGGError(
                    f"Expected perm to be a permutation of range(n), but got {perm!r}."
                )
            self.perm = p.to(torch.int64)

    def _order(self, size: int) -> Tensor:
        if self.perm is None:
            g = torch.Generator().manual_seed(self.seed)
            return torch.randperm(size, generator=g)
        if len(self.perm) != size:
            raise LieGGError(
                f"Expected {len(self.perm)} entries along dimension {self.dim} to permute, but "
                f"got {size}."
            )
        return self.perm

    def __call__(self, x: Tensor) -> Tensor:
        """The batch ``x`` with dimension ``dim`` reordered (same shape)."""
        _check_ndim(x, _least(self.dim), "a batch to permute")
        order = self._order(x.shape[self.dim])
        return x.index_select(self.dim, order.to(x.device))

    def __repr__(self) -> str:
        perm = "random" if self.perm is None else self.perm.tolist()
        return f"permute({perm}, dim={self.dim})"


def permute(perm: Sequence[int] | Tensor | None = None, dim: int = 1, seed: int = 0) -> Permute:
    """Permute a set's elements or channels along ``dim`` (see :class:`Permute`)."""
    return Permute(perm, dim, seed)


class Compose:
    """Apply transforms in order: ``Compose(f, g)(x) == g(f(x))``."""

    def __init__(self, *transforms: Callable[[Tensor], Tensor]) -> None:
        for t in transforms:
            if not callable(t):
                raise LieGGError(f"Expected callables to compose, but got {type(t).__name__}.")
        self.transforms = transforms

    def __call__(self, x: Tensor) -> Tensor:
        """``x`` through every transform, the first one first."""
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        names = [getattr(t, "__name__", None) or repr(t) for t in self.transforms]
        return f"compose({', '.join(names)})"


def compose(*transforms: Callable[[Tensor], Tensor]) -> Compose:
    """The transforms applied one after the other (the first one first)."""
    return Compose(*transforms)


def c4() -> dict[str, Callable[[Tensor], Tensor]]:
    """The rotations of the cyclic group C4 other than the identity, by name."""
    return {"rot90": rot90(1), "rot180": rot90(2), "rot270": rot90(3)}


def d4() -> dict[str, Callable[[Tensor], Tensor]]:
    """The seven non-identity elements of the dihedral group D4 (rotations and reflections)."""
    return {
        **c4(),
        "hflip": hflip,
        "vflip": vflip,
        "transpose": transpose,
        "antitranspose": compose(transpose, rot90(2)),
    }
