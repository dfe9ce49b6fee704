"""Shared machinery of the grid actions: signals, images and volumes.

A grid action lets an affine map act on the coordinates of a d-dimensional sampling grid
(d = 1 for signals, 2 for images, 3 for volumes). Coordinate i runs along the i-th axis from the
end: x along the last axis (width, or the length of a signal), y along the one before (height),
z along the one before that (depth); each is ``linspace(-1, 1)`` with the sample centres at the
ends (``align_corners=True``). A transformed input is (g.I)(u) = I(g^-1 u), so the tangent of a
generator h is -grad I(u) . (h u~), with u~ = u, or (u, 1) for the affine action.

Borders: the derivative and the warp agree by construction
------------------------------------------------------------
Near the border, a warp samples outside the grid; ``padding`` says what it finds there, with
``grid_sample``'s names: ``"border"`` (the edge sample continues), ``"zeros"`` (content stops)
or ``"reflection"`` (mirrored about the edge sample). The gradient uses the same rule: central
differences (I[i+1] - I[i-1]) / (2 spacing) everywhere, with the sample beyond each edge
(the ghost I[-1], I[L]) read from the padded input: I[0] for ``"border"``, 0 for ``"zeros"`` and
I[1] for ``"reflection"``. Bilinear (or linear, trilinear) sampling is linear between
samples, so the central difference in t of the warp, (g_t.I - g_-t.I) / 2t, equals exactly
these differences times the velocity once t is small enough to stay within one cell: the
tangent is the derivative of ``transform`` at every sample, edges included. ``SignalAction``
also offers ``"circular"`` (periodic signals; the ghost of I[0] is I[L-1]).
"""

from __future__ import annotations

import math
from abc import abstractmethod

import torch
from torch import Tensor
from torch.nn import functional as F

from ..._checks import LieGGError, is_choice, shown
from .base import Action, _plain, _times, exp_t

__all__ = ["GridAction", "PADDINGS", "DEFAULT_PADDING"]

#: padding modes of every grid action, as ``torch.nn.functional.grid_sample`` names them
PADDINGS = ("border", "zeros", "reflection")
#: the default: the edge sample continues beyond the frame (content does not stop at the frame;
#: for inputs that are zero on their outermost samples it equals "zeros", warps included)
DEFAULT_PADDING = "border"

#: bytes of differences per block of samples in :meth:`GridAction.contract` and
#: :meth:`GridAction.basis_tangents` on CPU: a block's differences stay in cache between the
#: operations that use them (measured best at 1-2 MB on the benchmark MLP; smaller blocks add
#: more parallel regions, which cost most on busy machines)
_BLOCK_BYTES = 1 << 21


def _edges(xc: Tensor, dim: int, padding: str) -> tuple[Tensor | None, Tensor | None]:
    """Unscaled differences at the first and last sample along ``dim`` (size-1 slices).

    ``None`` stands for zeros (reflection: the ghost equals the inner neighbour).
    """
    size = xc.shape[dim]
    first, second = xc.narrow(dim, 0, 1), xc.narrow(dim, 1, 1)
    last, before = xc.narrow(dim, size - 1, 1), xc.narrow(dim, size - 2, 1)
    if padding == "border":
        return second - first, last - before
    if padding == "zeros":
        return second, -before
    if padding == "circular":
        return second - last, first - before
    return None, None  # reflection


#: :func:`torch.nn.functional.pad` modes whose ghost samples are those of each padding
_PAD_MODES = {
    "border": "replicate",
    "zeros": "constant",
    "circular": "circular",
    "reflection": "reflect",
}


def _write_edges(xc: Tensor, dim: int, padding: str, first_out: Tensor, last_out: Tensor) -> None:
    """:func:`_edges` written into the size-1 slices ``first_out`` and ``last_out``."""
    size = xc.shape[dim]
    first, second = xc.narrow(dim, 0, 1), xc.narrow(dim, 1, 1)
    last, before = xc.narrow(dim, size - 1, 1), xc.narrow(dim, size - 2, 1)
    if padding == "border":
        torch.sub(second, first, out=first_out)
        torch.sub(last, before, out=last_out)
    elif padding == "zeros":
        first_out.copy_(second)
        torch.neg(before, out=last_out)
    elif padding == "circular":
        torch.sub(second, last, out=first_out)
        torch.sub(first, before, out=last_out)
    else:  # reflection: the ghost equals the inner neighbour
        first_out.zero_()
        last_out.zero_()


class GridAction(Action):
    """Affine maps acting on the coordinates of a d-dimensional grid (see the module notes).

    Subclasses set ``spatial`` (d) and ``paddings`` and implement ``_canonical`` (returning an
    ``(N, C, *S)`` view with d grid axes) and ``_warp``.

    Args:
        affine: search d x (d+1) generators [A | b] (with translations) instead of d x d.
        basis: optional ``(k, d, d)`` or ``(k, d, d+1)`` subspace to search.
        padding: what lies beyond the grid, for both the gradient and the warp.
    """

    spatial: int
    paddings: tuple[str, ...] = PADDINGS
    #: generators are (d+1) x (d+1) and act as homographies (set by ImageAction(projective=True))
    projective: bool = False

    def __init__(
        self, affine: bool = False, basis: Tensor | None = None, padding: str = DEFAULT_PADDING
    ) -> None:
        name = type(self).__name__
        if not isinstance(affine, bool):
            raise LieGGError(f"Expected {name} affine to be a bool, but got {shown(affine)}.")
        if not is_choice(padding, self.paddings):
            raise LieGGError(
                f"Expected {name} padding to be one of {self.paddings}, but got {shown(padding)}."
            )
        self.affine = affine
        self.padding = padding
        d = self.spatial
        self.generator_shape = (d, d + 1) if affine else (d, d)
        if self.projective:  # (d+1) x (d+1) matrices acting on homogeneous coordinates
            self.generator_shape = (d + 1, d + 1)
        super().__init__(basis)

    def __repr__(self) -> str:
        extra = "" if self.padding == DEFAULT_PADDING else f", padding={self.padding!r}"
        return f"{type(self).__name__}(affine={self.affine}{extra})"

    # -- layout: the canonical (N, C, *S) view and back ------------------------------------
    def _to_input_layout(self, t: Tensor) -> Tensor:
        """A canonical-layout result ``(..., N, C, *S)`` in the inputs' own layout."""
        return t

    def _to_canonical(self, grads: Tensor) -> Tensor:
        """Gradients ``(N, K, ...)`` in the inputs' layout as ``(N, K, C, *S)`` (or as given)."""
        return grads

    # -- coordinates and differences ---------------------------------------------------------
    def grid_coords(
        self, sizes: tuple[int, ...], dtype: torch.dtype, device: torch.device
    ) -> Tensor:
        """Homogeneous coordinates u~ of the grid ``sizes`` (..., H, W): ``(q, *sizes)``.

        Rows x (last axis), y, z, ... and a row of ones when affine.
        """
        axes = [torch.linspace(-1.0, 1.0, s, dtype=dtype, device=device) for s in sizes]
        mesh = torch.meshgrid(*axes, indexing="ij") if len(axes) > 1 else (axes[0],)
        rows = list(reversed(mesh)) + ([torch.ones_like(mesh[0])] if self.affine else [])
        return torch.stack(rows)

    @staticmethod
    def _scales(sizes: tuple[int, ...]) -> list[float]:
        """1 / (2 spacing) per coordinate (x first): what turns differences into derivatives."""
        return [(s - 1) / 4.0 for s in reversed(sizes)]

    def _differences(self, xc: Tensor, out: Tensor | None = None) -> Tensor:
        """Unscaled central differences of ``(N, C, *S)`` inputs: ``(d, N, C, *S)``.

        Component i is along coordinate i (0: the last axis). I[i+1] - I[i-1] inside; at the
        edges the ghost samples of ``padding`` (see the module notes). ``out``, for plain
        tensors only (see :func:`_plain`), is a ``(d, N, C, *S)`` tensor to write into.
        """
        d = self.spatial
        if torch.compiler.is_compiling():  # padded shifts: pointwise, inductor fuses them
            comps = []
            for i in range(d):
                dim = xc.ndim - 1 - i
                mode = _PAD_MODES[self.padding]
                pad = [0, 0] * i + [1, 1] + [0, 0] * (d - 1 - i)  # every spatial axis
                padded = F.pad(xc, pad, mode=mode)
                size = xc.shape[dim]
                comps.append(padded.narrow(dim, 2, size) - padded.narrow(dim, 0, size))
            return torch.stack(comps)
        if not _plain(xc):  # autograd, forward AD or torch.func: differentiable ops only
            comps = []
            for i in range(d):
                dim = xc.ndim - 1 - i
                size = xc.shape[dim]
                inner = xc.narrow(dim, 2, size - 2) - xc.narrow(dim, 0, size - 2)
                lo, hi = _edges(xc, dim, self.padding)
                zero = torch.zeros_like(xc.narrow(dim, 0, 1))
                comps.append(
                    torch.cat([zero if lo is None else lo, inner, zero if hi is None else hi], dim)
                )
            return torch.stack(comps)
        if out is None:
            out = xc.new_empty(d, *xc.shape)
        flat = xc.contiguous().reshape(-1)
        for i in range(d):
            dim = xc.ndim - 1 - i
            size = xc.shape[dim]
            o = out[i]
            if o.is_contiguous() and size > 2:
                # One contiguous op over the flattened inputs (a shift by the axis' stride);
                # what it writes across rows or samples lies on the edges, rewritten below.
                # Much faster than the same difference on strided views (short inner rows).
                stride = math.prod(xc.shape[dim + 1 :])
                torch.sub(flat[2 * stride :], flat[: -2 * stride], out=o.view(-1)[stride:-stride])
            else:
                torch.sub(
                    xc.narrow(dim, 2, size - 2),
                    xc.narrow(dim, 0, size - 2),
                    out=o.narrow(dim, 1, size - 2),
                )
            if self.padding == "border" and size > 2:
                # both edges in one op (slices 0 and size-1, 1 and size-1, 0 and size-2): on the
                # last axis these are strided ops, whose cost is per call as much as per element
                ends = [slice(None)] * xc.ndim
                ends[dim] = slice(None, None, size - 1)
                after, before = list(ends), list(ends)
                after[dim], before[dim] = slice(1, None, size - 2), slice(0, size - 1, size - 2)
                torch.sub(xc[tuple(after)], xc[tuple(before)], out=o[tuple(ends)])
            else:
                first_out, last_out = o.narrow(dim, 0, 1), o.narrow(dim, size - 1, 1)
                _write_edges(xc, dim, self.padding, first_out, last_out)
        return out

    def _unit_fields(
        self, sizes: tuple[int, ...], dtype: torch.dtype, device: torch.device
    ) -> Tensor:
        """-u~_j / (2 spacing_i) per matrix unit E_ij: ``(d, q, *S)``.

        The tangent of E_ij is this field times component i of :meth:`_differences`.
        """
        coords = self.grid_coords(sizes, dtype, device)
        scale = torch.tensor(self._scales(sizes), dtype=dtype, device=device)
        return -scale.reshape(-1, *[1] * (coords.ndim)) * coords[None]

    def grid_gradient(self, x: Tensor) -> Tensor:
        """Gradient of the inputs along each coordinate: ``(N, C, d, *S)`` (x first).

        Central differences with the true spacing; the edges use ``padding`` (module notes).
        """
        xc = self._canonical(x)
        diff = self._differences(xc)
        scales = self._scales(tuple(xc.shape[2:]))
        return torch.stack([diff[i] * scales[i] for i in range(self.spatial)], dim=2)

    # -- the protocol -------------------------------------------------------------------------
    def tangent(self, x: Tensor, generators: Tensor) -> Tensor:
        """-grad I . (h u~) for every generator: ``(k, *x.shape)``."""
        xc = self._canonical(x)
        velocity = self._velocity(generators, tuple(xc.shape[2:]), x.dtype, x.device)
        velocity = velocity.unsqueeze(2).unsqueeze(2)  # (k, d, 1, 1, *S)
        diff = self._differences(xc)  # (d, N, C, *S)
        # an elementwise sum over the d components: an einsum here becomes a bmm batched over
        # the samples with d-long products, orders of magnitude slower
        out = diff[0] * velocity[:, 0]
        for i in range(1, self.spatial):
            out = out.addcmul_(diff[i], velocity[:, i])
        return self._to_input_layout(out).reshape(generators.shape[0], *x.shape)

    def _velocity(
        self, generators: Tensor, sizes: tuple[int, ...], dtype: torch.dtype, device: torch.device
    ) -> Tensor:
        """-(h u~)_i / (2 spacing_i) for every generator: ``(k, d, *S)``.

        The tangent of h is the sum over i of this times component i of :meth:`_differences`.
        """
        units = self._unit_fields(sizes, dtype, device)  # (d, q, *S)
        return torch.einsum("kiq,iq...->ki...", generators, units)

    def basis_tangents(self, x: Tensor) -> Tensor:
        """``tangent`` of every element of ``self.basis``: ``(dim, *x.shape)``.

        For the full basis (the matrix units E_ij) each tangent is one product,
        -d_i I * u~_j / (2 spacing_i), written in one pass.
        """
        if not self._full_basis:
            return super().basis_tangents(x)
        xc = self._canonical(x)
        units = self._unit_fields(tuple(xc.shape[2:]), x.dtype, x.device).unsqueeze(2).unsqueeze(2)
        d, q = units.shape[:2]
        if not _plain(xc):
            out = self._differences(xc)[:, None] * units  # (d, q, N, C, *S)
            return self._to_input_layout(out).reshape(self.dim, *x.shape)
        # Per block of samples: the differences go to a small buffer (it stays in cache), and
        # each slot is written once as their product with a field. No temporary the size of
        # the inputs.
        out = xc.new_empty(d, q, *xc.shape)
        n = xc.shape[0]
        step = n
        if xc.device.type == "cpu":
            step = max(1, _BLOCK_BYTES // (d * xc[0].numel() * xc.element_size()))
        buf = xc.new_empty(d, min(step, n), *xc.shape[1:])
        for i in range(0, n, step):
            m = min(step, n - i)
            diff = self._differences(xc[i : i + m], out=buf[:, :m])
            for j in range(q):
                torch.mul(diff, units[:, j], out=out[:, j, i : i + m])
        return self._to_input_layout(out).reshape(self.dim, *x.shape)

    def contract(self, grads: Tensor, x: Tensor) -> Tensor:
        """-sum_{c,u} dF_k/dI_c(u) grad I_c(u) (x) u~: ``(N, K, d*q)``."""
        xc = self._canonical(x)
        fields = self._unit_fields(tuple(xc.shape[2:]), x.dtype, x.device)  # (d, q, *S)
        return self._contract_fields(grads, x, xc, fields)

    def _contract_fields(self, grads: Tensor, x: Tensor, xc: Tensor, fields: Tensor) -> Tensor:
        """sum_{c,u,i} dF_k/dI_c(u) diff_i I_c(u) fields[i, j](u): ``(N, K, d*q)``.

        ``diff_i`` are the unscaled :meth:`_differences`; ``fields`` ``(d, q, *S)`` carry the
        scale, one weight per component i and column j (:meth:`_unit_fields` for the matrix
        units of the affine maps).
        """
        n, k = grads.shape[:2]
        c, sizes = xc.shape[1], tuple(xc.shape[2:])
        d, q = fields.shape[:2]
        size = c * math.prod(sizes)
        g = self._to_canonical(grads.reshape(n, k, *x.shape[1:])).reshape(n, k, size)
        fields = fields[:, :, None].expand(d, q, c, *sizes).reshape(d, q, size)
        if not (_plain(xc) and _plain(g)) or xc.device.type != "cpu":
            return self._contract_block(xc, g, fields, None)
        # On CPU, blocks of samples (a bounded temporary, reused), whose differences (<= 16 MB)
        # are written, weighted and contracted before the next block.
        step = max(1, _BLOCK_BYTES // (d * size * xc.element_size()))
        if step >= n:
            return self._contract_block(xc, g, fields, xc.new_empty(d, *xc.shape))
        buf = xc.new_empty(d, step, *xc.shape[1:])
        blocks = [
            self._contract_block(xc[i : i + step], g[i : i + step], fields, buf[:, : n - i])
            for i in range(0, n, step)
        ]
        return torch.cat(blocks)

    def _contract_block(self, xc: Tensor, g: Tensor, fields: Tensor, buf: Tensor | None) -> Tensor:
        """:meth:`contract` of ``(M, C, *S)`` inputs and gradients ``(M, K, C*prod(S))``.

        ``buf``: None, or a ``(d, M, C, *S)`` tensor for the differences (plain tensors only).
        """
        m, k, size = g.shape
        d, q = fields.shape[:2]
        diff = self._differences(xc, out=buf).reshape(d, m, size)
        if k <= q:
            # weight the differences by each output's gradient, (d, M*K, size), then one batched
            # matrix product with the fields: (d, MK, size) @ (d, size, q). One output
            # (reduction "sum"): in place, the differences are a temporary of ours.
            if k == 1 and buf is not None:
                weighted = diff.mul_(g.reshape(1, m, size))
            else:
                weighted = (diff[:, :, None] * g[None]).reshape(d, m * k, size)
            rows = torch.bmm(weighted, fields.transpose(1, 2))  # (d, MK, q)
            return rows.reshape(d, m, k, q).permute(1, 2, 0, 3).reshape(m, k, d * q)
        # many outputs: the d*q unit tangents once, (dq, M, size), then a batched matrix product
        # (M, K, size) @ (M, size, dq)
        units = (diff[:, None] * fields[:, :, None]).reshape(d * q, m, size)
        return torch.bmm(g, units.permute(1, 2, 0))

    def transform(self, x: Tensor, generator: Tensor, t: float | Tensor = 1.0) -> Tensor:
        """Warp by exp(t h), reading ``padding`` beyond the grid; see :meth:`Action.transform`."""
        xc = self.check_input(x)
        h = self.check_single_generator(generator)
        times, batched = _times(t, x)
        d, q = self.generator_shape
        full = torch.zeros(self.spatial + 1, self.spatial + 1, dtype=torch.float64)
        full[:d, :q] = h[0].detach().to(dtype=torch.float64, device="cpu")
        group = exp_t(full, times)  # (T, d+1, d+1)
        # (g.I)(u) = I(g^-1 u): the samplers read the input at theta @ u~ (projective: at
        # (theta @ u~) divided by its last entry, all d+1 rows kept).
        theta = torch.linalg.inv(group)
        if not self.projective:
            theta = theta[:, :d, :]
        work = xc.float() if xc.dtype in (torch.float16, torch.bfloat16) else xc
        frames = [self._warp(work, th) for th in theta.to(dtype=work.dtype, device=work.device)]
        out = self._to_input_layout(torch.stack(frames).to(x.dtype)).reshape(len(times), *x.shape)
        return out if batched else out[0]

    @abstractmethod
    def _warp(self, xc: Tensor, theta: Tensor) -> Tensor:
        """Sample ``(N, C, *S)`` inputs at theta @ u~ (``theta``: ``(d, d+1)``), same shape.

        For a projective action ``theta`` is ``(d+1, d+1)`` (a homography).
        """
