"""How a Lie algebra element acts on inputs: the :class:`Action` protocol and its helpers.

An :class:`Action` answers four questions for the analysis:

* ``tangent(x, generators)``: the derivative d/dt exp(t h) . x at t = 0 for each generator h,
  the direction in input space that forward-mode differentiation pushes through the model;
* ``contract(grads, x)``: for input gradients dF_k/dx, the coordinates of the Lie derivative
  L_h F_k = dF_k/dx . (h . x) in the matrix units E_ij of the generator space (row-major), which
  is what reverse mode produces; the default contracts with ``tangent`` of every matrix unit,
  subclasses may do it faster;
* ``transform(x, generator, t)``: exp(t h) . x itself, to look at a symmetry or test it
  (:func:`exp_t` gives the group elements);
* ``subtract_output_term(rows, y, action)``: as the action on a model's outputs y, the term
  (A_j . y)_k that an equivariance subtracts from the rows.

Writing a new action means subclassing :class:`Action`, setting ``generator_shape`` in
``__init__`` before calling ``super().__init__(basis)``, and implementing ``_canonical`` (shape
check), ``tangent`` and ``transform``. One kind of action per module of this package:
:mod:`.vector`, :mod:`.tensor`, :mod:`.algebraic` (trivial features and direct sums),
:mod:`.grid` (signals, images, volumes, on the machinery of :mod:`._grid`) and :mod:`.channel`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor

from ..._checks import LieGGError, check_basis, check_tensor, describe, orthonormal_rows, shown

__all__ = ["Action", "exp_t"]


def _plain(x: Tensor) -> bool:
    """True when ``x`` needs no differentiation: no autograd, forward AD or torch.func wrapper.

    Only then may the fast paths write results into preallocated tensors (``out=``). Under
    ``torch.compile`` (``compile=True``) never: the compiler fuses the plain expressions.
    """
    if torch.compiler.is_compiling():
        return False
    if x.requires_grad or torch._C._functorch.is_functorch_wrapped_tensor(x):
        return False
    return fwAD.unpack_dual(x).tangent is None


def _times(t: float | Tensor, like: Tensor) -> tuple[Tensor, bool]:
    """Return times as a 1-D float64 tensor and whether the caller passed a 1-D tensor."""
    try:
        tt = torch.as_tensor(t, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise LieGGError(
            f"Expected t to be a number or a 1-D tensor of times, but got {describe(t)}."
        ) from err
    if tt.ndim > 1:
        raise LieGGError(
            f"Expected t to be a number or a 1-D tensor of times, but got {describe(t)}."
        )
    return tt.reshape(-1), tt.ndim == 1


def _positive(owner: str, name: str, value: object) -> int:
    """``value`` if a positive int (not a bool), else a LieGGError naming ``owner`` and ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LieGGError(
            f"Expected {owner} {name} to be a positive integer, but got {shown(value)}."
        )
    return value


def exp_t(h: Tensor, times: Tensor) -> Tensor:
    """The group elements exp(t h) for each time: ``(T, p, p)`` in float64 on CPU.

    Args:
        h: one square generator ``(p, p)`` (differentiable; callers detach it if they wish).
        times: a 1-D float64 tensor of T times, as :func:`_times` returns it.
    """
    return torch.linalg.matrix_exp(times[:, None, None] * h.to(torch.float64).cpu())


class Action(ABC):
    """A linear action of a matrix Lie algebra on model inputs.

    Args:
        basis: optional ``(k, p, q)`` generators spanning the subspace to search (for
            instance rotations and scalings only). It is orthonormalised (Frobenius) keeping its
            span. ``None`` searches the whole generator space (all p x q matrices).

    Attributes:
        generator_shape: ``(p, q)``, the shape of one generator.
        basis: float64 ``(dim, p, q)`` orthonormal basis of the searched space.
        dim: number of basis elements, the number of columns of the polarization matrix.
    """

    generator_shape: tuple[int, int]

    def __init__(self, basis: Tensor | None = None) -> None:
        p, q = self.generator_shape
        self._full_basis = basis is None
        if basis is None:
            self.basis = torch.eye(p * q, dtype=torch.float64).reshape(p * q, p, q)
        else:
            checked = check_basis(basis, self.generator_shape, "basis", f"for {self!r}")
            self.basis = orthonormal_rows(checked, "basis", f"for {self!r}")

    @property
    def dim(self) -> int:
        """Number of generator coordinates searched (columns of the polarization matrix)."""
        return int(self.basis.shape[0])

    # -- the protocol ---------------------------------------------------------------------
    @abstractmethod
    def _canonical(self, x: Tensor) -> Tensor:
        """Return a view of ``x`` in the action's canonical layout, or raise LieGGError."""

    @abstractmethod
    def tangent(self, x: Tensor, generators: Tensor) -> Tensor:
        """Derivatives d/dt exp(t h) . x at t = 0.

        Args:
            x: inputs, any shape the action accepts, ``(N, ...)``.
            generators: ``(k, p, q)`` generators, same dtype and device as ``x``.

        Returns:
            ``(k, *x.shape)``.
        """

    @abstractmethod
    def transform(self, x: Tensor, generator: Tensor, t: float | Tensor = 1.0) -> Tensor:
        """Apply the group element exp(t h) to ``x``.

        Args:
            x: inputs ``(N, ...)``.
            generator: one generator ``(p, q)``.
            t: a number, or a 1-D tensor of T times (a filmstrip).

        Returns:
            ``x.shape`` for a number; ``(T, *x.shape)`` for a 1-D tensor of times.
        """

    def contract(self, grads: Tensor, x: Tensor) -> Tensor:
        """Lie-derivative coordinates from input gradients, in the matrix units of (p, q).

        Args:
            grads: ``(N, K, *x.shape[1:])``, dF_k/dx for every sample and output.
            x: inputs ``(N, ...)``.

        Returns:
            ``(N, K, p*q)``: entry [b, k, i*q + j] = dF_k/dx(x_b) . (E_ij . x_b).
        """
        p, q = self.generator_shape
        units = torch.eye(p * q, dtype=x.dtype, device=x.device).reshape(p * q, p, q)
        tangents = self.tangent(x, units).flatten(2)  # (pq, N, D)
        return torch.einsum("bkd,mbd->bkm", grads.flatten(2), tangents)

    # -- shared helpers -------------------------------------------------------------------
    def check_input(self, x: Tensor, name: str = "x") -> Tensor:
        """Check ``x`` (a non-empty floating tensor of a shape this action accepts).

        Returns:
            ``x`` in the canonical layout (a view).

        Raises:
            LieGGError: with the expected and the received shape and dtype.
        """
        check_tensor(x, name, f"for {self!r}")
        return self._canonical(x)

    def check_single_generator(self, generator: Tensor) -> Tensor:
        """Check one ``(p, q)`` generator (or a ``(1, p, q)`` stack); returns ``(1, p, q)``."""
        h = self.check_generator(generator)
        if h.shape[0] != 1:
            raise LieGGError(
                f"Expected one generator of shape {self.generator_shape} for {self!r}, but got "
                f"shape {tuple(generator.shape)}."
            )
        return h

    def check_generator(self, generators: Tensor, name: str = "generator") -> Tensor:
        """Check a ``(p, q)`` generator or a ``(k, p, q)`` stack; returns ``(k, p, q)``."""
        return check_basis(generators, self.generator_shape, name, f"for {self!r}")

    def coordinates(self, grads: Tensor, x: Tensor) -> Tensor:
        """Polarization rows in the coordinates of ``self.basis``.

        Args:
            grads: ``(N, K, *x.shape[1:])`` input gradients.
            x: inputs ``(N, ...)``.

        Returns:
            ``(N, K, dim)``.
        """
        full = self.contract(grads, x)
        if self._full_basis:
            return full
        basis = self.basis.to(dtype=full.dtype, device=full.device).flatten(1)
        return full @ basis.T

    def basis_tangents(self, x: Tensor) -> Tensor:
        """``tangent`` of every element of ``self.basis``: ``(dim, *x.shape)``."""
        return self.tangent(x, self.basis.to(dtype=x.dtype, device=x.device))

    def subtract_output_term(self, rows: Tensor, y: Tensor, action: Action) -> None:
        """Subtract (A_j . y_b)_k from ``rows`` in place, this action acting on the outputs y.

        The second term of an equivariance row, dF_k/dx(x_b) . (A_j . x_b) - (A_j . F(x_b))_k;
        it needs the outputs only. Subclasses write it faster where it is sparse.

        Args:
            rows: float64 ``(N, K, m)`` (any strides; a tensor the caller owns), m =
                ``action.dim``.
            y: the model outputs ``(N, ...)`` in a shape this action accepts (detached).
            action: the input action; its basis A_j gives the columns.
        """
        n = rows.shape[0]
        work = y.to(torch.promote_types(y.dtype, torch.float32))
        basis = action.basis.to(dtype=work.dtype, device=work.device)
        if getattr(action, "_full_basis", False) and self._full_basis:
            tangents = self.basis_tangents(work)  # the matrix units, fast paths included
        else:
            tangents = self.tangent(work, basis)  # (m, N, ...)
        rows.sub_(tangents.reshape(basis.shape[0], n, -1).permute(1, 2, 0))
