"""gl(C) acting on the channel axis: which colour (or channel) maps does a network ignore?"""

from __future__ import annotations

import torch
from torch import Tensor

from ..._checks import LieGGError
from .base import Action, _positive, _times, exp_t

__all__ = ["ChannelAction"]


class ChannelAction(Action):
    """gl(C) acting on the channel vector at every position of ``(N, C, ...)`` inputs.

    A C x C generator h maps the channel vector x(u) of every pixel (or time step, voxel) to
    h x(u); the group element exp(t h) mixes channels the same way everywhere. For colour
    images (``ChannelAction(3)``) this asks which colour transformations the network ignores:
    ``algebras.brightness(3)`` (all channels scaled alike), ``algebras.grey_rotations(3)``
    (rotations about the grey axis: a hue shift) and ``algebras.luminance_preserving(3)`` (all
    maps keeping the channel mean) are references to compare with.

    Args:
        channels: C, the size of axis 1 of the inputs.
        basis: optional ``(k, C, C)`` subspace to search.

    Inputs are ``(N, C)`` or ``(N, C, ...)`` with any trailing axes.

    Example:
        >>> import lightning_liegg as lg
        >>> lg.ChannelAction(3).dim
        9
    """

    def __init__(self, channels: int, basis: Tensor | None = None) -> None:
        self.channels = _positive("ChannelAction", "channels", channels)
        self.generator_shape = (channels, channels)
        super().__init__(basis)

    def __repr__(self) -> str:
        return f"ChannelAction(channels={self.channels})"

    def _canonical(self, x: Tensor) -> Tensor:
        """``(N, C, P)``: the channel vectors of the P positions of every sample."""
        c = self.channels
        if x.ndim < 2 or x.shape[1] != c:
            hint = ""
            if x.ndim >= 3 and x.shape[-1] == c:
                hint = " Channels last? Move them to axis 1, e.g. x.permute(0, 3, 1, 2)."
            raise LieGGError(
                f"Expected inputs of shape (N, {c}, ...) with the {c} channels on axis 1 for "
                f"{self!r}, but got shape {tuple(x.shape)}.{hint}"
            )
        return x.reshape(x.shape[0], c, -1)

    def tangent(self, x: Tensor, generators: Tensor) -> Tensor:
        """The channel map h x(u) at every position: ``(k, *x.shape)``."""
        xc = self._canonical(x)
        out = torch.einsum("kij,bjp->kbip", generators, xc)
        return out.reshape(generators.shape[0], *x.shape)

    def contract(self, grads: Tensor, x: Tensor) -> Tensor:
        """sum_u vec(dF_k/dx(u) x(u)^T), row-major: ``(N, K, C*C)``."""
        xc = self._canonical(x)
        n, k = grads.shape[:2]
        g = grads.reshape(n, k, self.channels, -1)
        return torch.einsum("bkip,bjp->bkij", g, xc).flatten(2)

    def transform(self, x: Tensor, generator: Tensor, t: float | Tensor = 1.0) -> Tensor:
        """exp(t h) applied to the channels everywhere; see :meth:`Action.transform`."""
        xc = self.check_input(x)
        h = self.check_single_generator(generator)
        times, batched = _times(t, x)
        g = exp_t(h[0].detach(), times).to(dtype=x.dtype, device=x.device)  # (T, C, C)
        out = torch.einsum("tij,bjp->tbip", g, xc).reshape(len(times), *x.shape)
        return out if batched else out[0]
