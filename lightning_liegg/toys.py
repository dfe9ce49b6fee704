"""Exactly invariant toy functions and inputs with a known symmetry algebra.

Used by :mod:`lightning_liegg.datasets` (regression targets) and re-exported by
:mod:`lightning_liegg.testing` (known answers for your own tests). Depends on torch only.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["o5_invariant", "lorentz_invariant", "shear_invariant", "bordered_images"]


def o5_invariant(x: Tensor) -> Tensor:
    """EMLP's O(5) regression target on two 5-vectors: ``(N, 10)`` -> ``(N,)``.

    sin|x1| - |x2|^3 / 2 + <x1, x2> / (|x1| |x2|); its symmetry algebra is so(5).
    """
    x1, x2 = x[:, :5], x[:, 5:]
    n1, n2 = x1.norm(dim=1), x2.norm(dim=1)
    return torch.sin(n1) - n2**3 / 2 + (x1 * x2).sum(1) / (n1 * n2)


def lorentz_invariant(x: Tensor) -> Tensor:
    """Two Lorentz invariants of two four-momenta: ``(N, 8)`` -> ``(N, 2)``; algebra so(1,3).

    Uses the Minkowski products p1.p2 and p1.p1 * p2.p2 with metric diag(+1, -1, -1, -1).
    """
    p = x.reshape(-1, 2, 4)
    eta = torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=x.dtype, device=x.device)

    def mink(a: Tensor, b: Tensor) -> Tensor:
        return (a * b * eta).sum(-1)

    return torch.stack(
        [
            torch.tanh(mink(p[:, 0], p[:, 1]) / 4),
            mink(p[:, 0], p[:, 0]) * mink(p[:, 1], p[:, 1]) / 16,
        ],
        1,
    )


def shear_invariant(images: Tensor) -> Tensor:
    """Weighted row sums of images ``(N, C, H, W)`` -> ``(N, 3)``.

    sum_x I(x, y) is unchanged by the shear x -> x + t y (generator [[0, 1], [0, 0]], not
    antisymmetric) when images vanish near their left and right borders (see
    :func:`bordered_images`); every other linear flow changes it.
    """
    h = images.shape[-2]
    y = torch.linspace(-1, 1, h, dtype=images.dtype, device=images.device)
    rows = images.reshape(images.shape[0], -1, h, images.shape[-1]).sum(dim=(1, 3))  # (N, H)
    weights = torch.stack([torch.ones_like(y), y, y**2 + 0.3 * y**3])
    return torch.tanh(rows @ weights.T / h)


def bordered_images(
    n: int,
    height: int,
    width: int,
    dtype: torch.dtype = torch.float64,
    border: int = 4,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Random blurred images ``(n, 1, height, width)``, zero within ``border`` pixels of edges."""
    img = torch.rand(n, 1, height, width, dtype=dtype, generator=generator)
    img = torch.nn.functional.avg_pool2d(img, 3, stride=1, padding=1)
    mask = torch.zeros(height, width, dtype=dtype)
    mask[border:-border, border:-border] = 1
    return img * mask
