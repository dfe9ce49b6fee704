"""Exactly invariant toy functions with known symmetry algebras."""

from __future__ import annotations

import torch
from torch import Tensor

ETA = torch.tensor([1.0, -1.0, -1.0, -1.0])


def o5_target(x: Tensor) -> Tensor:
    """EMLP's O(5) regression target on two 5-vectors ``(N, 10)`` -> ``(N,)``."""
    x1, x2 = x[:, :5], x[:, 5:]
    n1, n2 = x1.norm(dim=1), x2.norm(dim=1)
    return torch.sin(n1) - n2**3 / 2 + (x1 * x2).sum(1) / (n1 * n2)


def lorentz_target(x: Tensor) -> Tensor:
    """Two Lorentz invariants of two 4-momenta ``(N, 8)`` -> ``(N, 2)``."""
    p = x.reshape(-1, 2, 4)
    eta = ETA.to(x)

    def mink(a: Tensor, b: Tensor) -> Tensor:
        return (a * b * eta).sum(-1)

    return torch.stack(
        [torch.tanh(mink(p[:, 0], p[:, 1]) / 4), mink(p[:, 0], p[:, 0]) * mink(p[:, 1], p[:, 1]) / 16], 1
    )


def row_sum_functional(images: Tensor) -> Tensor:
    """Weighted row sums of images ``(N, 1, H, W)`` -> ``(N, 3)``.

    Sum_x I(x, y) is unchanged by any flow along x that depends on y only (the shear
    x -> x + t y), as long as the image vanishes near the left and right borders; every other
    linear flow changes it. Its only gl(2) symmetry is the shear [[0, 1], [0, 0]], which is
    not antisymmetric: a transposed warp ([[0, 0], [1, 0]]) breaks it.
    """
    h = images.shape[-2]
    y = torch.linspace(-1, 1, h, dtype=images.dtype, device=images.device)
    rows = images.sum(dim=(1, 3))  # (N, H)
    weights = torch.stack([torch.ones_like(y), y, y**2 + 0.3 * y**3])  # (3, H)
    return torch.tanh(rows @ weights.T / h)


def bordered_images(n: int, h: int, w: int, dtype: torch.dtype = torch.float64, border: int = 4) -> Tensor:
    """Random smooth-ish images ``(n, 1, h, w)`` that are zero within ``border`` columns of the
    left and right edges (and rows of the top and bottom)."""
    img = torch.rand(n, 1, h, w, dtype=dtype)
    img = torch.nn.functional.avg_pool2d(img, 3, stride=1, padding=1)
    mask = torch.zeros(h, w, dtype=dtype)
    mask[border:-border, border:-border] = 1
    return img * mask
