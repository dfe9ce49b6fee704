"""Affine maps on the sampling grid of signals (1-D), images (2-D) and volumes (3-D).

All three share :class:`~lightning_liegg.functional.actions._grid.GridAction`: coordinates
``linspace(-1, 1)`` along each axis (x along the last one), central differences with the true
spacing, and one ``padding`` rule for what lies beyond the grid, used by both ``tangent`` and
``transform`` so that the derivative and the warp agree at every sample, edges included.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor
from torch.nn import functional as F

from ..._checks import LieGGError, LieGGWarning, shown
from .. import algebras
from ._grid import DEFAULT_PADDING, PADDINGS, GridAction

__all__ = [
    "SignalAction",
    "ImageAction",
    "VolumeAction",
    "PADDINGS",
    "DEFAULT_PADDING",
]


def _shape_error(action: GridAction, expected: str, x: Tensor, hint: str = "") -> LieGGError:
    return LieGGError(
        f"Expected {expected} for {action!r}, but got shape {tuple(x.shape)} and dtype "
        f"{x.dtype}.{hint}"
    )


def looks_channels_last(x: Tensor) -> bool:
    """Whether 4-D images look ``(N, H, W, C)``.

    That is: the last dimension is 1, 3 or 4 and the two before it are at least 4 times
    larger (and at least 8).
    """
    if x.ndim != 4:
        return False
    c = x.shape[-1]
    return c in (1, 3, 4) and min(x.shape[1], x.shape[2]) >= max(4 * c, 8)


def channels_last_hint(x: Tensor) -> str:
    """How to pass channels-last images: permute them, or ``ImageAction(channels_last=True)``."""
    return (
        "If it is (N, H, W, C), permute it with x.permute(0, 3, 1, 2) (to shape "
        f"{(x.shape[0], x.shape[3], x.shape[1], x.shape[2])}), or pass "
        "ImageAction(channels_last=True)."
    )


class SignalAction(GridAction):
    """gl(1) (or aff(1)) acting on the time coordinate of 1-D signals.

    The coordinate is t = ``linspace(-1, 1)`` along the length L (sample centres at the ends).
    With ``affine=False`` the one generator ``[[a]]`` dilates the signal about its centre; with
    ``affine=True`` the generators are ``[[a, b]]``: dilation a and shift b (``[[0, 1]]`` moves
    the content towards larger t). See :func:`lightning_liegg.algebras.dilation1d` and
    :func:`~lightning_liegg.algebras.translation1d`.

    Args:
        affine: search 1 x 2 generators [a | b] instead of 1 x 1.
        basis: optional ``(k, 1, 1)`` or ``(k, 1, 2)`` subspace to search.
        padding: beyond the ends, for the derivative and the warp alike: ``"border"`` (the
            default: the end samples continue), ``"zeros"``, ``"reflection"`` (mirrored about
            the end samples) or ``"circular"`` (a periodic signal: the sample after the last is
            the first, so shifts are circular shifts of the L samples; period L samples, i.e.
            2L / (L - 1) in t).

    Inputs are ``(N, C, L)`` or ``(N, L)`` with L >= 3.

    Example:
        >>> import lightning_liegg as lg
        >>> lg.SignalAction(affine=True).generator_shape
        (1, 2)
    """

    spatial = 1
    paddings = (*PADDINGS, "circular")

    def _canonical(self, x: Tensor) -> Tensor:
        xc = x.unsqueeze(1) if x.ndim == 2 else x
        if xc.ndim != 3 or xc.shape[-1] < 3:
            hint = " Images? Use ImageAction." if x.ndim == 4 else ""
            raise _shape_error(self, "signals of shape (N, C, L) or (N, L) with L >= 3", x, hint)
        return xc

    def _warp(self, xc: Tensor, theta: Tensor) -> Tensor:
        """Linear interpolation at t' = theta[0, 0] t + theta[0, 1]."""
        length = xc.shape[-1]
        t = torch.linspace(-1.0, 1.0, length, dtype=xc.dtype, device=xc.device)
        src = theta[0, 0] * t + theta[0, 1]
        if self.padding == "circular":
            pos = torch.remainder((src + 1) * (length - 1) / 2, length)  # in samples, [0, L)
            lo = pos.floor()
            w = pos - lo
            i0 = lo.long() % length
            i1 = (i0 + 1) % length
            return xc[..., i0] * (1 - w) + xc[..., i1] * w
        # grid_sample on (N, C, 1, L): y = 0 reads the single row
        grid = torch.stack([src, torch.zeros_like(src)], -1).expand(xc.shape[0], 1, length, 2)
        out = F.grid_sample(
            xc.unsqueeze(2), grid, mode="bilinear", padding_mode=self.padding, align_corners=True
        )
        return out.squeeze(2)


class ImageAction(GridAction):
    """gl(2), aff(2) or the projective algebra acting on the pixel coordinates of images.

    Coordinates: u = (x, y), x along the width and y along the height, both
    ``linspace(-1, 1)`` (pixel centres at the ends, as ``align_corners=True``), for any H and
    W. A transformed image is (g.I)(u) = I(g^-1 u), so the tangent of h is
    -grad I(u) . (h u~) with u~ = (x, y) or (x, y, 1) for ``affine=True``. Image gradients are
    central differences with the true coordinate spacing.

    Args:
        affine: search 2x3 generators [A | b] (with translations) instead of 2x2.
        basis: optional ``(k, 2, 2)`` or ``(k, 2, 3)`` subspace to search.
        padding: beyond the frame, for the gradient and the warp alike (``grid_sample``'s
            names): ``"border"`` (the default: edge pixels continue), ``"zeros"`` or
            ``"reflection"``. For images that are zero on their outermost pixels, ``"border"``
            and ``"zeros"`` give the same numbers.

        channels_last: inputs are ``(N, H, W, C)`` (the layout of PIL, NumPy and TensorFlow)
            instead of ``(N, C, H, W)``; the results equal those of the permuted
            channels-first inputs.
        projective: search the 8-dimensional projective algebra sl(3) of the plane
            (perspective maps, homographies): 3 x 3 generators h = [[A, b], [c^T, 0]] acting
            on u~ = (x, y, 1) as homographies, u -> (e^(th) u~)_{x,y} / (e^(th) u~)_3. The
            velocity at u is A u + b - (c . u) u: aff(2)'s six fields (the same numbers as
            ``affine=True``) and the perspective fields -(x^2 ∂x + xy ∂y) (c = e_x) and
            -(xy ∂x + y^2 ∂y) (c = e_y). Implies ``affine``; the basis is the eight matrix
            units other than E_33 (``algebras.projective()``, reference ``"projective"``);
            (k, 2, 2) and (k, 2, 3) references (``rotation2d``, ...) are embedded. Warps are
            homographies sampled with the same ``padding``.

    Inputs are ``(N, C, H, W)`` or ``(N, H, W)`` with H, W >= 3 (``(N, H, W, C)`` with
    ``channels_last=True``). Channels-first inputs whose last dimension is 1, 3 or 4 and much
    smaller than the others look channels-last: :meth:`check_input` warns (the callback
    raises under ``strict``).

    Example:
        >>> import torch, lightning_liegg as lg
        >>> x = torch.rand(2, 8, 8, 3)  # channels last
        >>> h = lg.algebras.rotation2d().float()
        >>> t = lg.ImageAction(channels_last=True).tangent(x, h)
        >>> t.shape
        torch.Size([1, 2, 8, 8, 3])
    """

    spatial = 2

    def __init__(
        self,
        affine: bool = False,
        basis: Tensor | None = None,
        padding: str = DEFAULT_PADDING,
        channels_last: bool = False,
        projective: bool = False,
    ) -> None:
        for name, value in (("channels_last", channels_last), ("projective", projective)):
            if not isinstance(value, bool):
                raise LieGGError(
                    f"Expected ImageAction {name} to be a bool, but got {shown(value)}."
                )
        self.channels_last = channels_last
        self.projective = projective
        self._warned: set[tuple[int, ...]] = set()
        if projective:
            affine = True  # the projective algebra contains the translations
            if basis is None:
                basis = algebras.projective()
        super().__init__(affine, basis, padding)

    def __repr__(self) -> str:
        text = super().__repr__()
        if self.projective:
            text = text.replace("affine=True", "projective=True")
        return text[:-1] + ", channels_last=True)" if self.channels_last else text

    def embed_reference(self, reference: Tensor) -> Tensor:
        """For the projective action: (k, 2, 2) or (k, 2, 3) generators as 3 x 3; else as is."""
        ref = torch.as_tensor(reference, dtype=torch.float64)
        if not self.projective or ref.ndim != 3 or tuple(ref.shape[1:]) not in ((2, 2), (2, 3)):
            return ref
        out = torch.zeros(ref.shape[0], 3, 3, dtype=torch.float64)
        out[:, :2, : ref.shape[2]] = ref
        return out

    def _velocity(
        self, generators: Tensor, sizes: tuple[int, ...], dtype: torch.dtype, device: torch.device
    ) -> Tensor:
        if not self.projective:
            return super()._velocity(generators, sizes, dtype, device)
        units = self._unit_fields(sizes, dtype, device)  # (2, 3, H, W): -u~_j / (2 spacing_i)
        affine = torch.einsum("kiq,iq...->ki...", generators[:, :2], units)
        # - (c . u~) u_i / (2 spacing_i) enters with the opposite sign: units * -u_i
        coords = self.grid_coords(sizes, dtype, device)  # (3, H, W)
        persp = torch.einsum("kq,iq...->ki...", generators[:, 2], units * -coords[:2, None])
        return affine + persp

    def contract(self, grads: Tensor, x: Tensor) -> Tensor:
        """As :meth:`GridAction.contract`; projective: ``(N, K, 9)`` in the units of 3 x 3."""
        if not self.projective:
            return super().contract(grads, x)
        xc = self._canonical(x)
        sizes = tuple(xc.shape[2:])
        units = self._unit_fields(sizes, x.dtype, x.device)  # (2, 3, H, W)
        coords = self.grid_coords(sizes, x.dtype, x.device)
        fields = torch.cat([units, units * -coords[:2, None]], dim=1)  # (2, 6, H, W)
        rows = self._contract_fields(grads, x, xc, fields).unflatten(2, (2, 2, 3))
        # rows of A | b per component i; the perspective row sums both components
        return torch.cat([rows[:, :, :, 0].flatten(2), rows[:, :, :, 1].sum(2)], dim=2)

    def _canonical(self, x: Tensor) -> Tensor:
        if self.channels_last:
            if x.ndim != 4 or x.shape[1] < 3 or x.shape[2] < 3:
                raise LieGGError(
                    f"Expected images of shape (N, H, W, C) with H, W >= 3 for {self!r}, but "
                    f"got shape {tuple(x.shape)}."
                )
            return x.permute(0, 3, 1, 2)
        if x.ndim == 3:
            x = x.unsqueeze(1)
        if x.ndim != 4 or x.shape[-1] < 3 or x.shape[-2] < 3:
            hint = ""
            if x.ndim == 2:
                side = int(round(x.shape[1] ** 0.5))
                if side * side == x.shape[1]:
                    hint = f" A flat batch? Reshape it to (N, 1, {side}, {side}) first."
            elif x.ndim == 4 and x.shape[-1] in (1, 2) and min(x.shape[1:3]) >= 3:
                hint = " " + channels_last_hint(x)
            raise LieGGError(
                f"Expected images of shape (N, C, H, W) or (N, H, W) with H, W >= 3 for {self!r}, "
                f"but got shape {tuple(x.shape)}.{hint}"
            )
        return x

    def _to_input_layout(self, t: Tensor) -> Tensor:
        return t.movedim(-3, -1) if self.channels_last else t

    def _to_canonical(self, grads: Tensor) -> Tensor:
        return grads.movedim(-1, -3) if self.channels_last else grads

    def check_input(self, x: Tensor, name: str = "x") -> Tensor:
        """Check ``x`` as :meth:`Action.check_input` does; warn if it looks channels-last."""
        xc = super().check_input(x, name)
        shape = tuple(x.shape[1:])
        if not self.channels_last and looks_channels_last(x) and shape not in self._warned:
            self._warned.add(shape)  # once per action and sample shape
            warnings.warn(
                f"Expected images (N, C, H, W) for {self!r}, but {name} of shape "
                f"{tuple(x.shape)} looks channels-last. {channels_last_hint(x)}",
                LieGGWarning,
                stacklevel=3,
            )
        return xc

    def coords(self, height: int, width: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        """Homogeneous pixel coordinates u~: ``(q, H, W)``, rows x, y (and 1 when affine)."""
        return self.grid_coords((height, width), dtype, device)

    def image_gradient(self, x: Tensor) -> Tensor:
        """Central-difference gradient (d/dx, d/dy) of images: ``(N, C, 2, H, W)``."""
        return self.grid_gradient(x)

    def _warp(self, xc: Tensor, theta: Tensor) -> Tensor:
        if theta.shape[0] == 3:  # a homography: read at (theta u~)_{x,y} / (theta u~)_3
            coords = self.grid_coords(tuple(xc.shape[2:]), xc.dtype, xc.device)  # (3, H, W)
            src = torch.einsum("ij,j...->...i", theta, coords)  # (H, W, 3)
            grid = (src[..., :2] / src[..., 2:]).expand(xc.shape[0], *src.shape[:2], 2)
        else:
            grid = F.affine_grid(
                theta.expand(xc.shape[0], 2, 3), list(xc.shape), align_corners=True
            )
        return F.grid_sample(
            xc, grid, mode="bilinear", padding_mode=self.padding, align_corners=True
        )


class VolumeAction(GridAction):
    """gl(3) (or aff(3)) acting on the voxel coordinates of 3-D volumes.

    Coordinates u = (x, y, z): x along W, y along H, z along D, each ``linspace(-1, 1)``
    (voxel centres at the ends), as :class:`ImageAction` in 2-D. Generators are 3 x 3 (or
    3 x 4 ``[A | b]`` with ``affine=True``); ``algebras.so(3)`` holds the rotations, with
    ``so(3)[0]`` the rotation in the x-y plane (about z), ``[1]`` in x-z, ``[2]`` in y-z.
    Warps sample trilinearly (``grid_sample`` on 5-D inputs) in the same convention; gradients
    are central differences with the true spacing.

    Args:
        affine: search 3x4 generators [A | b] instead of 3x3.
        basis: optional ``(k, 3, 3)`` or ``(k, 3, 4)`` subspace to search.
        padding: ``"border"`` (the default), ``"zeros"`` or ``"reflection"``, for the gradient
            and the warp alike.

    Inputs are ``(N, C, D, H, W)`` or ``(N, D, H, W)`` with D, H, W >= 3.
    """

    spatial = 3

    def _canonical(self, x: Tensor) -> Tensor:
        xc = x.unsqueeze(1) if x.ndim == 4 else x
        if xc.ndim != 5 or min(xc.shape[-3:]) < 3:
            raise _shape_error(
                self, "volumes of shape (N, C, D, H, W) or (N, D, H, W) with D, H, W >= 3", x
            )
        return xc

    def _warp(self, xc: Tensor, theta: Tensor) -> Tensor:
        grid = F.affine_grid(theta.expand(xc.shape[0], 3, 4), list(xc.shape), align_corners=True)
        return F.grid_sample(
            xc, grid, mode="bilinear", padding_mode=self.padding, align_corners=True
        )
