"""Actions for equivariant outputs: rank-2 tensors, invariant features and direct sums.

Each is an :class:`Action`, so it serves as ``output_action=`` (the same generator h acting on
the model's outputs) and, where that makes sense, as the input action too.

* :class:`TensorAction`: h . T = h T + T h^T on rank-2 tensors (stress, inertia, covariance);
* :class:`TrivialAction`: h . y = 0 on ``size`` invariant features (scalars);
* :class:`DirectSum`: flat outputs split in order, each part with its own action, e.g. the
  e3nn irreps "2x0e + 1x1o" are ``DirectSum(TrivialAction(2), VectorAction(dim=3))``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._checks import LieGGError, describe
from .actions import Action, VectorAction, _times

__all__ = ["TensorAction", "TrivialAction", "DirectSum", "flat_size"]


def _positive(owner: str, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LieGGError(f"Expected {owner} {name} to be a positive integer, but got {value!r}.")
    return value


def flat_size(action: Action) -> int | None:
    """Features per sample that ``action`` acts on in a flat ``(N, size)`` layout, or None.

    None for actions without a fixed size (images: any H x W).
    """
    if isinstance(action, VectorAction):
        return action.channels * action.n
    size = getattr(action, "size", None)
    return size if isinstance(size, int) else None


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
        g = torch.linalg.matrix_exp(times[:, None, None] * h.to(torch.float64).cpu())  # (T,n,n)
        g = g.to(dtype=x.dtype, device=x.device)
        out = torch.einsum("tij,bcjl,tml->tbcim", g, tc, g).reshape(len(times), *x.shape)
        return out if batched else out[0]


class TrivialAction(Action):
    """``size`` invariant features: h . y = 0, so exp(t h) . y = y.

    As an output action it says "these outputs should not change" (scalars, class scores,
    energies); ``output_action=TrivialAction(K)`` gives exactly the invariance analysis.

    Args:
        size: number of features per sample; inputs or outputs are ``(N, size)`` (``(N,)``
            too when ``size`` is 1).
        generator_shape: the ``(p, q)`` generator shape. ``None`` (default) adopts the shape
            of whatever it is paired with (the input action, or the other parts of a
            :class:`DirectSum`); give it to use a TrivialAction as an input action.

    Example:
        >>> import lightning_liegg as lg
        >>> lg.DirectSum(lg.TrivialAction(2), lg.VectorAction(dim=3)).generator_shape
        (3, 3)
    """

    def __init__(self, size: int, generator_shape: tuple[int, int] | None = None) -> None:
        self.size = _positive("TrivialAction", "size", size)
        if generator_shape is None:
            self.generator_shape = None  # type: ignore[assignment]
            self._full_basis = True
            self.basis = torch.zeros(0, 0, 0, dtype=torch.float64)
            return
        shape = tuple(generator_shape)
        if len(shape) != 2 or not all(isinstance(v, int) and v >= 1 for v in shape):
            raise LieGGError(
                "Expected TrivialAction generator_shape to be None or two positive integers "
                f"(p, q), but got {generator_shape!r}."
            )
        self.generator_shape = (int(shape[0]), int(shape[1]))
        super().__init__(None)

    def __repr__(self) -> str:
        extra = "" if self.generator_shape is None else f", generator_shape={self.generator_shape}"
        return f"TrivialAction({self.size}{extra})"

    def _canonical(self, x: Tensor) -> Tensor:
        if x.ndim == 2 and x.shape[1] == self.size:
            return x
        if x.ndim == 1 and self.size == 1:
            return x.unsqueeze(1)
        raise LieGGError(
            f"Expected features of shape (N, {self.size}) for {self!r}, but got shape "
            f"{tuple(x.shape)}."
        )

    def tangent(self, x: Tensor, generators: Tensor) -> Tensor:
        """Zeros: ``(k, *x.shape)``."""
        self._canonical(x)
        return x.new_zeros(generators.shape[0], *x.shape)

    def contract(self, grads: Tensor, x: Tensor) -> Tensor:
        """Zeros: ``(N, K, p*q)``."""
        p, q = self._shape()
        return grads.new_zeros(grads.shape[0], grads.shape[1], p * q)

    def transform(self, x: Tensor, generator: Tensor, t: float | Tensor = 1.0) -> Tensor:
        """``x`` unchanged (a copy); ``(T, *x.shape)`` for a 1-D tensor of times."""
        self.check_input(x)
        if self.generator_shape is not None:
            self.check_single_generator(generator)
        times, batched = _times(t, x)
        out = x.detach().clone().expand(len(times), *x.shape).clone()
        return out if batched else out[0]

    def _shape(self) -> tuple[int, int]:
        if self.generator_shape is None:
            raise LieGGError(
                f"Expected {self!r} to know its generator shape here, but it adopts its "
                "partner's: pass TrivialAction(size, generator_shape=(p, q)) to use it on inputs."
            )
        return self.generator_shape


class DirectSum(Action):
    """Flat features ``(N, sum of sizes)`` split in order, each part with its own action.

    Every part needs a fixed size (``VectorAction``, ``TensorAction``, ``TrivialAction`` or a
    nested ``DirectSum``; not ``ImageAction``) and all parts act with generators of one shape
    (a ``TrivialAction`` without ``generator_shape`` adopts it).

    Args:
        actions: the parts, in the order of the features.

    Example:
        >>> import lightning_liegg as lg
        >>> irreps = lg.DirectSum(lg.TrivialAction(2), lg.VectorAction(dim=3))  # "2x0e + 1x1o"
        >>> irreps.size, irreps.generator_shape
        (5, (3, 3))
    """

    def __init__(self, *actions: Action) -> None:
        if not actions:
            raise LieGGError("Expected DirectSum to get at least one action, but got none.")
        sizes = []
        shapes = set()
        for i, a in enumerate(actions):
            if not isinstance(a, Action):
                raise LieGGError(
                    f"Expected DirectSum part {i} to be an Action, but got {describe(a)}."
                )
            size = flat_size(a)
            if size is None:
                raise LieGGError(
                    f"Expected every DirectSum part to act on a fixed number of features, but "
                    f"part {i}, {a!r}, has none (images of any size): use it alone instead."
                )
            sizes.append(size)
            if a.generator_shape is not None:
                shapes.add(tuple(a.generator_shape))
        if len(shapes) > 1:
            raise LieGGError(
                "Expected every DirectSum part to take generators of one shape, but got "
                f"{sorted(shapes)} from {list(actions)!r}."
            )
        self.parts = tuple(actions)
        self.sizes = tuple(sizes)
        self.size = sum(sizes)
        if not shapes:  # trivial parts only: adopt the partner's shape, like TrivialAction
            self.generator_shape = None  # type: ignore[assignment]
            self._full_basis = True
            self.basis = torch.zeros(0, 0, 0, dtype=torch.float64)
            return
        self.generator_shape = shapes.pop()  # type: ignore[assignment]
        super().__init__(None)

    def __repr__(self) -> str:
        return "DirectSum(" + ", ".join(repr(a) for a in self.parts) + ")"

    def _canonical(self, x: Tensor) -> Tensor:
        if x.ndim == 2 and x.shape[1] == self.size:
            return x
        raise LieGGError(
            f"Expected flat features of shape (N, {self.size}) for {self!r} (parts of sizes "
            f"{list(self.sizes)}), but got shape {tuple(x.shape)}."
        )

    def _split(self, x: Tensor) -> tuple[Tensor, ...]:
        return torch.split(self._canonical(x), list(self.sizes), dim=1)

    def tangent(self, x: Tensor, generators: Tensor) -> Tensor:
        """Each part's tangent on its features, concatenated: ``(k, N, size)``."""
        parts = [
            a.tangent(xi, generators) for a, xi in zip(self.parts, self._split(x), strict=True)
        ]
        return torch.cat([p.reshape(p.shape[0], p.shape[1], -1) for p in parts], dim=2)

    def contract(self, grads: Tensor, x: Tensor) -> Tensor:
        """Sum of the parts' contractions: ``(N, K, p*q)``."""
        gs = torch.split(grads.reshape(*grads.shape[:2], -1), list(self.sizes), dim=2)
        total = None
        for a, g, xi in zip(self.parts, gs, self._split(x), strict=True):
            if isinstance(a, TrivialAction):
                continue
            part = a.contract(g, xi)
            total = part if total is None else total + part
        if total is None:
            p, q = self.generator_shape
            return grads.new_zeros(grads.shape[0], grads.shape[1], p * q)
        return total

    def transform(self, x: Tensor, generator: Tensor, t: float | Tensor = 1.0) -> Tensor:
        """Each part transformed on its features; see :meth:`Action.transform`."""
        times, batched = _times(t, x)
        tt = times if batched else float(times[0])
        parts = [
            a.transform(xi, generator, tt).reshape(
                *((len(times),) if batched else ()), x.shape[0], -1
            )
            for a, xi in zip(self.parts, self._split(x), strict=True)
        ]
        return torch.cat(parts, dim=-1)
