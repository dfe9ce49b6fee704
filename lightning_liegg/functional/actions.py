"""How a Lie algebra element acts on inputs: vectors and images.

An :class:`Action` answers three questions for the analysis:

* ``tangent(x, generators)``: the derivative d/dt exp(t h) . x at t = 0 for each generator h,
  the direction in input space that forward-mode differentiation pushes through the model;
* ``contract(grads, x)``: for input gradients dF_k/dx, the coordinates of the Lie derivative
  L_h F_k = dF_k/dx . (h . x) in the matrix units E_ij of the generator space (row-major), which
  is what reverse mode produces; the default contracts with ``tangent`` of every matrix unit,
  subclasses may do it faster;
* ``transform(x, generator, t)``: exp(t h) . x itself, to look at a symmetry or test it.

Writing a new action (1-D signals, 3-D volumes, ...) means subclassing :class:`Action`, setting
``generator_shape`` in ``__init__`` before calling ``super().__init__(basis)``, and implementing
``_canonical`` (shape check), ``tangent`` and ``transform``. See :class:`VectorAction`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor
from torch.nn import functional as F

from ._checks import LieGGError, check_basis, check_tensor, describe, orthonormal_rows

__all__ = ["Action", "VectorAction", "ImageAction"]


#: bytes of image differences per block of samples in :meth:`ImageAction.contract` on CPU:
#: bounds its temporaries for large batches (more, smaller blocks also keep them in cache,
#: but every block adds parallel regions, which cost most on busy machines)
_BLOCK_BYTES = 1 << 24


def _plain(x: Tensor) -> bool:
    """True when ``x`` needs no differentiation: no autograd, forward AD or torch.func wrapper.

    Only then may the fast paths write results into preallocated tensors (``out=``).
    """
    if x.requires_grad or torch._C._functorch.is_functorch_wrapped_tensor(x):
        return False
    return fwAD.unpack_dual(x).tangent is None


def _times(t: float | Tensor, like: Tensor) -> tuple[Tensor, bool]:
    """Return times as a 1-D float64 tensor and whether the caller passed a 1-D tensor."""
    tt = torch.as_tensor(t, dtype=torch.float64)
    if tt.ndim > 1:
        raise LieGGError(
            f"Expected t to be a number or a 1-D tensor of times, but got {describe(t)}."
        )
    return tt.reshape(-1), tt.ndim == 1


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
        for name, value in (("dim", dim), ("channels", channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LieGGError(
                    f"Expected VectorAction {name} to be a positive integer, but got {value!r}."
                )
        self.n = dim
        self.channels = channels
        self.generator_shape = (dim, dim)
        super().__init__(basis)

    def __repr__(self) -> str:
        return f"VectorAction(dim={self.n}, channels={self.channels})"

    def _canonical(self, x: Tensor) -> Tensor:
        c, n = self.channels, self.n
        if x.ndim == 2 and x.shape[1] == c * n:
            return x.reshape(x.shape[0], c, n)
        if x.ndim == 3 and tuple(x.shape[1:]) == (c, n):
            return x
        raise LieGGError(
            f"Expected inputs of shape (N, {c * n}) or (N, {c}, {n}) for {self!r} "
            f"({c} vector(s) of dimension {n}), but got shape {tuple(x.shape)}."
        )

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
        g = torch.linalg.matrix_exp(times[:, None, None] * h.to(torch.float64).cpu())  # (T,n,n)
        g = g.to(dtype=x.dtype, device=x.device)
        out = torch.einsum("tij,bcj->tbci", g, xv).reshape(len(times), *x.shape)
        return out if batched else out[0]


class ImageAction(Action):
    """gl(2) (or aff(2)) acting on the pixel coordinates of images.

    Coordinates: u = (x, y), x along the width and y along the height, both
    ``linspace(-1, 1)`` (pixel centres at the ends, as ``align_corners=True``), for any H and
    W. A transformed image is (g.I)(u) = I(g^-1 u), so the tangent of h is
    -grad I(u) . (h u~) with u~ = (x, y) or (x, y, 1) for ``affine=True``. Image gradients are
    central differences with the true coordinate spacing.

    Args:
        affine: search 2x3 generators [A | b] (with translations) instead of 2x2.
        basis: optional ``(k, 2, 2)`` or ``(k, 2, 3)`` subspace to search.

    Inputs are ``(N, C, H, W)`` or ``(N, H, W)`` with H, W >= 3.
    """

    def __init__(self, affine: bool = False, basis: Tensor | None = None) -> None:
        if not isinstance(affine, bool):
            raise LieGGError(f"Expected ImageAction affine to be a bool, but got {affine!r}.")
        self.affine = affine
        self.generator_shape = (2, 3) if affine else (2, 2)
        super().__init__(basis)

    def __repr__(self) -> str:
        return f"ImageAction(affine={self.affine})"

    def _canonical(self, x: Tensor) -> Tensor:
        if x.ndim == 3:
            x = x.unsqueeze(1)
        if x.ndim != 4 or x.shape[-1] < 3 or x.shape[-2] < 3:
            hint = ""
            if x.ndim == 2:
                side = int(round(x.shape[1] ** 0.5))
                if side * side == x.shape[1]:
                    hint = f" A flat batch? Reshape it to (N, 1, {side}, {side}) first."
            raise LieGGError(
                f"Expected images of shape (N, C, H, W) or (N, H, W) with H, W >= 3 for {self!r}, "
                f"but got shape {tuple(x.shape)}.{hint}"
            )
        return x

    def coords(self, height: int, width: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        """Homogeneous pixel coordinates u~: ``(q, H, W)``, rows x, y (and 1 when affine)."""
        ys = torch.linspace(-1.0, 1.0, height, dtype=dtype, device=device)
        xs = torch.linspace(-1.0, 1.0, width, dtype=dtype, device=device)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        rows = [gx, gy] + ([torch.ones_like(gx)] if self.affine else [])
        return torch.stack(rows)

    def image_gradient(self, x: Tensor) -> Tensor:
        """Central-difference gradient (d/dx, d/dy) of images: ``(N, C, 2, H, W)``."""
        xc = self._canonical(x)
        diff = self._differences(xc)
        scale = self._scale_fields(*xc.shape[-2:], xc.dtype, xc.device)
        return torch.stack([diff[0] * scale[0], diff[1] * scale[1]], dim=2)

    # The analysis works with unscaled differences, (2, N, C, H, W), and puts the spacing into
    # the small per-pixel coordinate fields: few passes over the images (torch.gradient
    # allocates, divides and concatenates), and layouts that broadcast without copies.
    @staticmethod
    def _scale_fields(height: int, width: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        """The gradient over :meth:`_differences`, per pixel: ``(2, H, W)``, x then y.

        1 / (2 spacing) inside (central differences), 1 / spacing on the edges (one-sided).
        """
        sx, sy = (width - 1) / 4.0, (height - 1) / 4.0
        scale = torch.empty(2, height, width, dtype=dtype, device=device)
        scale[0].fill_(sx)[:, [0, -1]] = 2 * sx
        scale[1].fill_(sy)[[0, -1], :] = 2 * sy
        return scale

    @staticmethod
    def _differences(xc: Tensor, out: Tensor | None = None) -> Tensor:
        """Unscaled differences of ``(N, C, H, W)`` images: ``(2, N, C, H, W)``.

        Component 0 is along the width, 1 along the height: I[i+1] - I[i-1] inside, and the
        one-sided I[1] - I[0] and I[-1] - I[-2] on the edges. Times :meth:`_scale_fields` this
        is ``torch.gradient`` with the pixel spacing (``edge_order=1``). ``out``, for plain
        tensors only (see :func:`_plain`), is a ``(2, N, C, H, W)`` tensor to write into.
        """
        if not _plain(xc):  # autograd, forward AD or torch.func: differentiable ops only
            gy, gx = torch.gradient(xc, spacing=(0.5, 0.5), dim=(-2, -1))  # edges doubled
            h, w = xc.shape[-2:]
            half = torch.ones(2, h, w, dtype=xc.dtype, device=xc.device)
            half[0][:, [0, -1]] = 0.5
            half[1][[0, -1], :] = 0.5
            return torch.stack([gx * half[0], gy * half[1]])
        if out is None:
            out = xc.new_empty(2, *xc.shape)
        for comp, dim in ((0, 3), (1, 2)):  # two passes: the inside, then both edges at once
            size = xc.shape[dim]
            o = out[comp]
            inner = o.narrow(dim, 1, size - 2)
            torch.sub(xc.narrow(dim, 2, size - 2), xc.narrow(dim, 0, size - 2), out=inner)
            # I[1] - I[0] and I[-1] - I[-2], written at 0 and size - 1
            hi, lo, at = [slice(None)] * 4, [slice(None)] * 4, [slice(None)] * 4
            hi[dim] = slice(1, size, size - 2)
            lo[dim] = slice(0, size - 1, size - 2)
            at[dim] = slice(0, size, size - 1)
            torch.sub(xc[tuple(hi)], xc[tuple(lo)], out=o[tuple(at)])
        return out

    def _unit_fields(
        self, height: int, width: int, dtype: torch.dtype, device: torch.device
    ) -> Tensor:
        """-u~_j times the gradient scale of component i, per matrix unit E_ij: ``(2, q, H, W)``.

        The tangent of E_ij is this field times component i of :meth:`_differences`.
        """
        scale = self._scale_fields(height, width, dtype, device)
        return -scale[:, None] * self.coords(height, width, dtype, device)[None]

    def tangent(self, x: Tensor, generators: Tensor) -> Tensor:
        """-grad I . (h u~) for every generator: ``(k, *x.shape)``."""
        xc = self._canonical(x)
        units = self._unit_fields(xc.shape[-2], xc.shape[-1], x.dtype, x.device)  # (2, q, H, W)
        # minus the velocity field h u~ of every generator over the spacing: (k, 2, 1, 1, H, W)
        velocity = torch.einsum("kiq,iqhw->kihw", generators, units)[:, :, None, None]
        diff = self._differences(xc)  # (2, N, C, H, W)
        # An elementwise sum over the 2 components: an einsum here becomes a bmm batched over
        # the H*W pixels with 2-long products, orders of magnitude slower.
        out = diff[0] * velocity[:, 0]
        out = out.addcmul_(diff[1], velocity[:, 1])
        return out.reshape(generators.shape[0], *x.shape)

    def basis_tangents(self, x: Tensor) -> Tensor:
        """``tangent`` of every element of ``self.basis``: ``(dim, *x.shape)``.

        For the full basis (the matrix units E_ij) each tangent is one product,
        -d_i I * u~_j / (2 spacing_i), written in one pass.
        """
        if not self._full_basis:
            return super().basis_tangents(x)
        xc = self._canonical(x)
        units = self._unit_fields(xc.shape[-2], xc.shape[-1], x.dtype, x.device)[:, :, None, None]
        q = units.shape[1]
        if not _plain(xc):
            out = self._differences(xc)[:, None] * units  # (2, q, N, C, H, W)
            return out.reshape(self.dim, *x.shape)
        # Written in place: the differences go to the slots of j = 0, the other slots are
        # products of them, then j = 0 is scaled. No temporary the size of the images.
        out = xc.new_empty(2, q, *xc.shape)
        diff = self._differences(xc, out=out[:, 0])
        for j in range(1, q):
            torch.mul(diff, units[:, j], out=out[:, j])
        diff.mul_(units[:, 0])
        return out.reshape(self.dim, *x.shape)

    def contract(self, grads: Tensor, x: Tensor) -> Tensor:
        """-sum_{c,u} dF_k/dI_c(u) grad I_c(u) (x) u~: ``(N, K, 2*q)``."""
        xc = self._canonical(x)
        n, k = grads.shape[:2]
        c, h, w = xc.shape[1:]
        q = self.generator_shape[1]
        size = c * h * w
        g = grads.reshape(n, k, size)
        fields = self._unit_fields(h, w, x.dtype, x.device)  # (2, q, H, W)
        fields = fields[:, :, None].expand(2, q, c, h, w).reshape(2, q, size)
        if not (_plain(xc) and _plain(g)) or xc.device.type != "cpu":
            return self._contract_block(xc, g, fields, None)
        # On CPU, blocks of samples (a bounded temporary, reused), whose differences (<= 16 MB)
        # are written, weighted and contracted before the next block.
        step = max(1, _BLOCK_BYTES // (2 * size * xc.element_size()))
        if step >= n:
            return self._contract_block(xc, g, fields, xc.new_empty(2, *xc.shape))
        buf = xc.new_empty(2, step, c, h, w)
        blocks = [
            self._contract_block(xc[i : i + step], g[i : i + step], fields, buf[:, : n - i])
            for i in range(0, n, step)
        ]
        return torch.cat(blocks)

    def _contract_block(self, xc: Tensor, g: Tensor, fields: Tensor, buf: Tensor | None) -> Tensor:
        """:meth:`contract` of ``(M, C, H, W)`` images and gradients ``(M, K, CHW)``.

        ``buf``: None, or a ``(2, M, C, H, W)`` tensor for the differences (plain tensors only).
        """
        m, k, size = g.shape
        q = fields.shape[1]
        diff = self._differences(xc, out=buf).reshape(2, m, size)
        if k <= q:
            # weight the differences by each output's gradient, (2, M*K, CHW), then one batched
            # matrix product with the fields: (2, MK, CHW) @ (2, CHW, q). One output (reduction
            # "sum"): in place, the differences are a temporary of ours.
            if k == 1 and buf is not None:
                weighted = diff.mul_(g.reshape(1, m, size))
            else:
                weighted = (diff[:, :, None] * g[None]).reshape(2, m * k, size)
            rows = torch.bmm(weighted, fields.transpose(1, 2))  # (2, MK, q)
            return rows.reshape(2, m, k, q).permute(1, 2, 0, 3).reshape(m, k, 2 * q)
        # many outputs: the 2q unit tangents once, (2q, M, CHW), then a batched matrix product
        # (M, K, CHW) @ (M, CHW, 2q)
        units = (diff[:, None] * fields[:, :, None]).reshape(2 * q, m, size)
        return torch.bmm(g, units.permute(1, 2, 0))

    def transform(self, x: Tensor, generator: Tensor, t: float | Tensor = 1.0) -> Tensor:
        """Warp images by exp(t h) (bilinear, zero padding); see :meth:`Action.transform`."""
        xc = self.check_input(x)
        h = self.check_single_generator(generator)
        times, batched = _times(t, x)
        full = torch.zeros(3, 3, dtype=torch.float64)
        full[:2, : self.generator_shape[1]] = h[0].detach().to(dtype=torch.float64, device="cpu")
        group = torch.linalg.matrix_exp(times[:, None, None] * full)  # (T, 3, 3)
        # (g.I)(u) = I(g^-1 u): affine_grid samples the input at theta @ u~.
        theta = torch.linalg.inv(group)[:, :2, :]
        work = xc.float() if xc.dtype in (torch.float16, torch.bfloat16) else xc
        frames = []
        for th in theta.to(dtype=work.dtype, device=work.device):
            theta_n = th.expand(work.shape[0], 2, 3)
            grid = F.affine_grid(theta_n, list(work.shape), align_corners=True)
            frames.append(
                F.grid_sample(work, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
            )
        out = torch.stack(frames).to(x.dtype).reshape(len(times), *x.shape)
        return out if batched else out[0]
