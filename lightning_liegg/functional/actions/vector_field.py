"""Nonlinear symmetries of vector inputs: vector fields over a library of functions.

A generator is a coefficient matrix W (n x m) over a library Theta(x) = (theta_1(x) ..
theta_m(x)) of m scalar functions; the vector field it names is v(x) = W Theta(x), and the
group it generates moves x along the flow dx/dt = W Theta(x). The tangent at x is W Theta(x),
linear in W, so the polarization matrix and everything built on it (the report, the metric,
the callback) work unchanged: row (b, k) has the entries dF_k/dx_i(x_b) theta_j(x_b). With
the linear monomials (``degree=1, constant=False``) this is gl(n), the :class:`VectorAction`;
with higher monomials it finds fields such as the Hamiltonian flow (p, -q^3) of
H = p^2/2 + q^4/4 (LieNLSD, ICML 2025, writes nonlinear generators the same way).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

from ..._checks import LieGGError, describe, shown
from .base import Action, _positive, _times
from .vector import channel_vectors

__all__ = ["VectorFieldAction", "monomial_exponents"]

Library = Mapping[str, Callable[[Tensor], Tensor]]

#: integration steps of :meth:`VectorFieldAction.transform` per unit of time (RK4)
DEFAULT_STEPS_PER_UNIT = 64


def monomial_exponents(dim: int, degree: int, constant: bool) -> list[tuple[int, ...]]:
    """Exponents of the monomials of the default library, in their column order.

    Degree 1 first (x_1 .. x_n, so that W's first n columns are a linear map), then degree 2,
    ... up to ``degree`` (each degree in lexicographic order of the variables: x1^2, x1 x2,
    x2^2), then the constant last (as the translation column of an affine ``[A | b]``).

    Example:
        >>> monomial_exponents(2, 2, constant=True)
        [(1, 0), (0, 1), (2, 0), (1, 1), (0, 2), (0, 0)]
    """
    out: list[tuple[int, ...]] = []
    for d in range(1, degree + 1):
        for combo in itertools.combinations_with_replacement(range(dim), d):
            out.append(tuple(combo.count(i) for i in range(dim)))
    if constant:
        out.append((0,) * dim)
    return out


def _monomial_name(exponents: tuple[int, ...], names: Sequence[str]) -> str:
    parts = [n if e == 1 else f"{n}^{e}" for n, e in zip(names, exponents, strict=True) if e]
    return " ".join(parts) if parts else "1"


def _coefficient(value: float, term: str, first: bool) -> str:
    """One signed term: ``p``, ``- q^3``, ``0.5 x``, ``- 2`` (a constant)."""
    sign = "-" if value < 0 else "+"
    size = abs(value)
    text = f"{size:.2g}"
    if term == "1":
        body = text
    elif text == "1":
        body = term
    else:
        body = f"{text} {term}"
    if first:
        return body if sign == "+" else f"-{body}"
    return f"{sign} {body}"


class VectorFieldAction(Action):
    """Vector fields W Theta(x) over a function library, acting on vectors in R^dim.

    The input is ``(N, channels*dim)`` or ``(N, channels, dim)``, as for
    :class:`VectorAction`: a field acts on each of the ``channels`` vectors alike. Generators
    are ``(dim, m)`` matrices W, one row per component of the field and one column per library
    function; the tangent at x is W Theta(x). The library is either the monomials up to
    ``degree`` (``monomial_exponents`` gives the order: degree 1 first, the constant last) or
    a dict of named functions. ``degree=1, constant=False`` is exactly gl(dim) (the same
    numbers as :class:`VectorAction`); ``degree=1, constant=True`` is aff(dim), ``[A | b]``.

    Args:
        dim: dimension n of each vector.
        degree: highest degree of the monomial library (ignored with ``library``).
        constant: include the constant function 1 in the monomial library.
        library: ``{name: f}`` with ``f`` mapping ``(M, dim)`` vectors to ``(M,)`` values,
            differentiable torch code; replaces the monomials. The names are used when a
            generator is printed.
        channels: number of vectors per sample.
        basis: optional ``(k, dim, m)`` subspace to search.
        names: the coordinates' names for printing (default ``x1 .. xn``), e.g. ``("q", "p")``.
        steps_per_unit: RK4 steps per unit of time in :meth:`transform`.

    Attributes:
        functions: the library functions' names, in column order.

    Example:
        >>> import torch, lightning_liegg as lg
        >>> act = lg.VectorFieldAction(2, degree=3, constant=False, names=("q", "p"))
        >>> act.functions
        ('q', 'p', 'q^2', 'q p', 'p^2', 'q^3', 'q^2 p', 'q p^2', 'p^3')
        >>> w = torch.zeros(2, 9, dtype=torch.float64)
        >>> w[0, 1], w[1, 5] = 1.0, -1.0  # q' = p, p' = -q^3
        >>> act.format_generator(w)
        'p ∂q - q^3 ∂p'
    """

    def __init__(
        self,
        dim: int,
        degree: int = 1,
        constant: bool = True,
        library: Library | None = None,
        channels: int = 1,
        basis: Tensor | None = None,
        names: Sequence[str] | None = None,
        steps_per_unit: int = DEFAULT_STEPS_PER_UNIT,
    ) -> None:
        for label, value in (
            ("dim", dim),
            ("degree", degree),
            ("channels", channels),
            ("steps_per_unit", steps_per_unit),
        ):
            _positive("VectorFieldAction", label, value)
        if not isinstance(constant, bool):
            raise LieGGError(
                f"Expected VectorFieldAction constant to be a bool, but got {shown(constant)}."
            )
        if names is None:
            names = tuple(f"x{i + 1}" for i in range(dim))
        names = tuple(names)
        if len(names) != dim or not all(isinstance(n, str) and n for n in names):
            raise LieGGError(
                f"Expected VectorFieldAction names to be {dim} non-empty strings, but got "
                f"{describe(names)}."
            )
        self.n = dim
        self.channels = channels
        self.size = channels * dim  # features per sample, flat (for DirectSum)
        self.degree = degree
        self.constant = constant
        self.names = names
        self.steps_per_unit = steps_per_unit
        self.library: dict[str, Callable[[Tensor], Tensor]] | None = None
        self._exponents: Tensor | None = None
        if library is None:
            exps = monomial_exponents(dim, degree, constant)
            self._exponents = torch.tensor(exps, dtype=torch.int64)  # (m, n)
            self._top = max(max(e) for e in exps)
            self.functions = tuple(_monomial_name(e, names) for e in exps)
        else:
            if not isinstance(library, Mapping) or not library:
                raise LieGGError(
                    "Expected VectorFieldAction library to be a non-empty dict {name: callable}, "
                    f"but got {describe(library)}."
                )
            for key, fn in library.items():
                if not isinstance(key, str) or not callable(fn):
                    raise LieGGError(
                        "Expected VectorFieldAction library entries name (str) -> callable, but "
                        f"got {key!r} -> {type(fn).__name__}."
                    )
            self.library = dict(library)
            self.functions = tuple(self.library)
        self.generator_shape = (dim, len(self.functions))
        super().__init__(basis)

    def __repr__(self) -> str:
        if self.library is not None:
            lib = f"library={list(self.functions)!r}"
        else:
            lib = f"degree={self.degree}, constant={self.constant}"
        extra = "" if self.channels == 1 else f", channels={self.channels}"
        return f"VectorFieldAction(dim={self.n}, {lib}{extra})"

    # -- the library ----------------------------------------------------------------------
    def features(self, x: Tensor) -> Tensor:
        """Theta at every vector: ``(N, channels, m)`` for inputs of any accepted shape."""
        xv = self._canonical(x)
        return self._features(xv)

    def _features(self, xv: Tensor) -> Tensor:
        n, c, d = xv.shape
        if self._exponents is not None:
            exps = self._exponents.to(xv.device)
            powers = [xv[..., None, :] ** 0]  # (N, c, 1, n) ones, kept differentiable
            for _ in range(self._top):
                powers.append(powers[-1] * xv[..., None, :])
            table = torch.cat(powers, dim=-2)  # (N, c, top+1, n): x_i^e
            picked = table[..., exps, torch.arange(d, device=xv.device)]  # (N, c, m, n)
            return picked.prod(dim=-1)
        flat = xv.reshape(n * c, d)
        cols = []
        assert self.library is not None
        for name, fn in self.library.items():
            try:
                value = fn(flat)
            except Exception as err:  # noqa: BLE001 - user code: keep the cause
                raise LieGGError(
                    f"Expected library function {name!r} of {self!r} to map vectors of shape "
                    f"(M, {d}) to values of shape (M,), but calling it failed: "
                    f"{type(err).__name__}: {err}"
                ) from err
            if not isinstance(value, Tensor) or tuple(value.shape) != (n * c,):
                raise LieGGError(
                    f"Expected library function {name!r} of {self!r} to return a tensor of "
                    f"shape ({n * c},) for inputs of shape ({n * c}, {d}), but got "
                    f"{describe(value)}."
                )
            cols.append(value.to(xv.dtype))
        return torch.stack(cols, dim=-1).reshape(n, c, len(cols))

    def field(self, x: Tensor, generator: Tensor) -> Tensor:
        """The vector field W Theta(x) of one generator, in the layout of ``x``."""
        h = self.check_single_generator(generator)
        return self.tangent(x, h.to(dtype=x.dtype, device=x.device))[0]

    # -- the protocol ---------------------------------------------------------------------
    def _canonical(self, x: Tensor) -> Tensor:
        return channel_vectors(x, self.channels, self.n, self)

    def tangent(self, x: Tensor, generators: Tensor) -> Tensor:
        """W Theta(x_c) for every generator and vector: ``(k, *x.shape)``."""
        theta = self._features(self._canonical(x))  # (N, c, m)
        out = torch.einsum("kim,bcm->kbci", generators.to(theta.dtype), theta)
        return out.reshape(generators.shape[0], *x.shape)

    def contract(self, grads: Tensor, x: Tensor) -> Tensor:
        """sum_c vec(dF_k/dx_c Theta(x_c)^T), row-major: ``(N, K, dim*m)``."""
        theta = self._features(self._canonical(x))  # (N, c, m)
        g = grads.reshape(grads.shape[0], grads.shape[1], self.channels, self.n)
        return torch.einsum("bkci,bcm->bkim", g, theta.to(g.dtype)).flatten(2)

    def transform(self, x: Tensor, generator: Tensor, t: float | Tensor = 1.0) -> Tensor:
        """Move ``x`` along the flow of W Theta for time t (classical RK4).

        ``ceil(|t| * steps_per_unit)`` steps from 0 to each t; a 1-D tensor of times gives a
        filmstrip ``(T, *x.shape)``. Computed in float64 (float32 and lower inputs are cast
        back).
        """
        xv = self.check_input(x)
        h = self.check_single_generator(generator)[0].detach().to(torch.float64)
        times, batched = _times(t, x)
        w = h.to(xv.device)
        start = xv.detach().to(torch.float64)

        def velocity(z: Tensor) -> Tensor:
            return torch.einsum("im,bcm->bci", w, self._features(z))

        frames = []
        for tt in times.tolist():
            steps = max(1, math.ceil(abs(tt) * self.steps_per_unit))
            dt = tt / steps
            z = start
            for _ in range(steps):
                k1 = velocity(z)
                k2 = velocity(z + 0.5 * dt * k1)
                k3 = velocity(z + 0.5 * dt * k2)
                k4 = velocity(z + dt * k3)
                z = z + (dt / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)
            frames.append(z)
        out = torch.stack(frames).to(x.dtype).reshape(len(times), *x.shape)
        return out if batched else out[0]

    # -- references and printing ------------------------------------------------------------
    def embed_reference(self, reference: Tensor) -> Tensor:
        """Linear (``(k, n, n)``) or affine (``(k, n, n+1)``) generators as fields ``(k, n, m)``.

        The matrix entries go to the columns of the linear monomials x_j (and of the constant
        for the affine column), so ``lg.algebras.so(2)`` names the rotation field. Any other
        shape is returned as is.

        Raises:
            LieGGError: when the library lacks the monomials (or the constant) needed.
        """
        ref = torch.as_tensor(reference, dtype=torch.float64)
        n, m = self.generator_shape
        if ref.ndim != 3 or ref.shape[1] != n or ref.shape[2] not in (n, n + 1):
            return ref
        if tuple(ref.shape[1:]) == (n, m):
            return ref
        wanted = [tuple(int(i == j) for i in range(n)) for j in range(n)]
        if ref.shape[2] == n + 1:
            wanted.append((0,) * n)
        exps = [] if self._exponents is None else [tuple(e) for e in self._exponents.tolist()]
        missing = [w for w in wanted if w not in exps]
        also = " and the constant" if ref.shape[2] == n + 1 else ""
        if missing:
            raise LieGGError(
                f"Expected a library with the linear monomials{also} "
                f"to embed a reference of shape {tuple(ref.shape)} into {self!r}, but they are "
                "missing: pass a (k, n, m) reference over this library instead."
            )
        out = torch.zeros(ref.shape[0], n, m, dtype=torch.float64)
        for j, w in enumerate(wanted):
            out[:, :, exps.index(w)] = ref[:, :, j]
        return out

    def format_generator(self, generator: Tensor, threshold: float = 0.05) -> str:
        """A generator as readable vector-field text, e.g. ``'p ∂q - q^3 ∂p'``.

        Coefficients are scaled so the largest is 1 in magnitude (a generator's scale is
        arbitrary), those below ``threshold`` are dropped and the rest shown to two
        significant digits; a generator's overall sign is not meaningful either.

        Args:
            generator: ``(dim, m)``.
            threshold: smallest coefficient shown, relative to the largest.
        """
        w = self.check_single_generator(torch.as_tensor(generator))[0].detach()
        w = w.to(device="cpu", dtype=torch.float64)
        top = float(w.abs().max())
        if not math.isfinite(top):
            return "nan"
        if top == 0.0:
            return "0"
        w = w / top
        parts = []
        for i, var in enumerate(self.names):
            terms = [
                (float(c), f)
                for c, f in zip(w[i].tolist(), self.functions, strict=True)
                if abs(c) >= threshold
            ]
            if not terms:
                continue
            if len(terms) == 1:
                value, fn = terms[0]
                parts.append((value < 0, _coefficient(abs(value), fn, True) + f" ∂{var}"))
            else:
                inner = " ".join(_coefficient(v, f, j == 0) for j, (v, f) in enumerate(terms))
                parts.append((False, f"({inner}) ∂{var}"))
        text = ""
        for j, (negative, body) in enumerate(parts):
            if j == 0:
                text = f"-{body}" if negative else body
            else:
                text += f" {'-' if negative else '+'} {body}"
        return text
