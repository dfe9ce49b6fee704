"""Datasets with known symmetries, as pure tensor functions and LightningDataModules.

- O(5) regression: EMLP's synthetic task on two 5-vectors (inputs (N, 10), targets (N, 1)).
- Lorentz: a Lorentz-invariant target of two 4-momenta (inputs (N, 8), targets (N, 1)).
- Rotated digits: scikit-learn's bundled 8x8 digits (or MNIST idx files already on disk),
  rotated by random angles and blurred (images (N, 1, size, size), labels (N,)).

Image coordinates follow the LieGG convention: x along the width, y along the height, both
``linspace(-1, 1)`` over the pixel centres (``align_corners=True``); a rotated image is
``(R_a . I)(u) = I(R_{-a} u)``, so with y pointing down a positive angle turns the picture
clockwise on screen. Nothing here downloads anything.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from ._checks import check_choice, check_number, check_positive_int, check_tensor
from ._imports import SKLEARN
from ._lightning import classes
from .exceptions import LieGGError
from .testing import o5_invariant

__all__ = [
    "LorentzDataModule",
    "O5RegressionDataModule",
    "RotatedDigitsDataModule",
    "gaussian_blur",
    "load_digits_images",
    "load_mnist",
    "lorentz_data",
    "invariant_mass",
    "minkowski_dot",
    "o5_regression_data",
    "o5_target",
    "read_idx",
    "rotate_images",
    "rotated_digits",
]

_SPLITS = ("train", "test")
_DIGITS_TEST_FRACTION = 0.2  # fixed held-out part of sklearn's digits, independent of `seed`
_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


# --------------------------------------------------------------------------- O(5) regression
def o5_target(x: Tensor) -> Tensor:
    """EMLP's O(5)-invariant target ``sin|x1| - |x2|^3 / 2 + <x1, x2> / (|x1| |x2|)``.

    Args:
        x: inputs of shape (N, 10), the two 5-vectors ``x1 = x[:, :5]``, ``x2 = x[:, 5:]``.

    Returns:
        Targets of shape (N, 1), in the dtype of ``x``.

    Raises:
        LieGGError: if ``x`` is not of shape (N, 10).
    """
    if x.ndim != 2 or x.shape[1] != 10:
        raise LieGGError(f"Expected x of shape (N, 10), but got {tuple(x.shape)}")
    return o5_invariant(x).unsqueeze(1)


def o5_regression_data(n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Sample EMLP's synthetic O(5) regression task (Finzi et al., 2021).

    Args:
        n: number of samples.
        seed: seed of the ``torch.Generator`` drawing ``x ~ N(0, I)``.

    Returns:
        ``(x, y)``: inputs of shape (n, 10) and targets of shape (n, 1), both float32.
    """
    check_positive_int("n", n)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=generator, dtype=torch.float64)
    return x.float(), o5_target(x).float()


# --------------------------------------------------------------------------- Lorentz
def minkowski_dot(p: Tensor, q: Tensor) -> Tensor:
    """Minkowski product with metric diag(+1, -1, -1, -1).

    Args:
        p: 4-vectors ``(E, px, py, pz)`` of shape (..., 4).
        q: 4-vectors of shape (..., 4), broadcastable with ``p``.

    Returns:
        ``p0 q0 - p1 q1 - p2 q2 - p3 q3`` of shape (...).
    """
    return p[..., 0] * q[..., 0] - (p[..., 1:] * q[..., 1:]).sum(dim=-1)


def invariant_mass(x: Tensor) -> Tensor:
    """Invariant mass of a pair of 4-momenta, ``sqrt((p1 + p2) . (p1 + p2))``.

    A function of the Minkowski products ``p1.p1 + 2 p1.p2 + p2.p2`` only, hence invariant
    under the (orthochronous) Lorentz group acting on both momenta.

    Args:
        x: momenta of shape (N, 8), two channels ``(E, px, py, pz)`` one after the other.

    Returns:
        Targets of shape (N, 1), in the dtype of ``x``.

    Raises:
        LieGGError: if ``x`` is not of shape (N, 8).
    """
    if x.ndim != 2 or x.shape[1] != 8:
        raise LieGGError(f"Expected x of shape (N, 8), but got {tuple(x.shape)}")
    p = x.reshape(-1, 2, 4)
    total = p[:, 0] + p[:, 1]
    return minkowski_dot(total, total).clamp_min(0).sqrt().unsqueeze(1)


def lorentz_data(
    n: int, seed: int = 0, mass_range: tuple[float, float] = (0.5, 1.5)
) -> tuple[Tensor, Tensor]:
    """Sample two on-shell 4-momenta per example and their invariant mass.

    3-momenta are drawn from N(0, I), masses uniformly from ``mass_range``, and the energy is
    ``E = sqrt(|p|^2 + m^2)``, so every momentum lies on its mass shell (``p.p = m^2``).

    Args:
        n: number of samples.
        seed: seed of the ``torch.Generator``.
        mass_range: ``(low, high)`` range of the particle masses, ``0 <= low <= high``.

    Returns:
        ``(x, y)``: momenta of shape (n, 8) (2 channels x ``(E, px, py, pz)``, for
        ``VectorAction(dim=4, channels=2)``) and invariant masses of shape (n, 1), float32.
    """
    check_positive_int("n", n)
    low, high = mass_range
    if not 0 <= low <= high:
        raise LieGGError(f"Expected mass_range with 0 <= low <= high, but got {mass_range!r}")
    generator = torch.Generator().manual_seed(seed)
    momenta = torch.randn(n, 2, 3, generator=generator, dtype=torch.float64)
    masses = low + (high - low) * torch.rand(n, 2, 1, generator=generator, dtype=torch.float64)
    energy = (momenta.square().sum(dim=-1, keepdim=True) + masses.square()).sqrt()
    x = torch.cat([energy, momenta], dim=-1).reshape(n, 8)
    return x.float(), invariant_mass(x).float()


# --------------------------------------------------------------------------- image operations


def rotate_images(images: Tensor, angles: Tensor | float, chunk_size: int = 4096) -> Tensor:
    """Rotate images about their centre: ``out(u) = images(R_{-a} u)``, bilinear, zero fill.

    Coordinates as in LieGG: x along the width, y along the height, both in [-1, 1] at the
    pixel centres. With y pointing down, a positive angle turns the picture clockwise on
    screen; an angle of pi/2 equals ``torch.rot90(images, -1, dims=(-2, -1))`` on square
    images. Equivalent to ``ImageAction().transform(images, [[0, -1], [1, 0]], angle)``.

    Args:
        images: images of shape (N, C, H, W); square images keep their geometry.
        angles: angles in radians, a float or a tensor of shape (N,).
        chunk_size: images warped at once (bounds the memory of the sampling grid).

    Returns:
        Rotated images of shape (N, C, H, W).
    """
    check_tensor(images, "images")
    if images.ndim != 4:
        raise LieGGError(f"Expected images of shape (N, C, H, W), but got {tuple(images.shape)}")
    n = images.shape[0]
    angles = torch.as_tensor(angles, dtype=torch.float64).expand(n)
    cos, sin = angles.cos(), angles.sin()
    # affine_grid maps output coordinates to input coordinates: theta = R(-a).
    theta = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], dim=1)
    theta = torch.cat([theta, theta.new_zeros(n, 2, 1)], dim=2).to(images.dtype)
    out = []
    for start in range(0, n, chunk_size):
        chunk = images[start : start + chunk_size]
        grid = F.affine_grid(theta[start : start + chunk_size], list(chunk.shape), True)
        out.append(F.grid_sample(chunk, grid, "bilinear", "zeros", align_corners=True))
    return torch.cat(out) if out else images.clone()


def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """Blur with a separable Gaussian of standard deviation ``sigma`` pixels, zero padding.

    Args:
        images: images of shape (N, C, H, W).
        sigma: standard deviation in pixels; 0 returns a copy. The kernel is truncated at
            ``ceil(3 sigma)`` pixels and normalised to sum 1.

    Returns:
        Blurred images of shape (N, C, H, W).
    """
    check_number("sigma", sigma, minimum=0.0)
    check_tensor(images, "images")
    if images.ndim != 4:
        raise LieGGError(f"Expected images of shape (N, C, H, W), but got {tuple(images.shape)}")
    if sigma == 0:
        return images.clone()
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(images.dtype)
    channels = images.shape[1]
    horizontal = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    vertical = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    out = F.conv2d(images, horizontal, padding=(0, radius), groups=channels)
    return F.conv2d(out, vertical, padding=(radius, 0), groups=channels)


# --------------------------------------------------------------------------- image sources
def load_digits_images() -> tuple[Tensor, Tensor]:
    """Scikit-learn's bundled 8x8 digits (1,797 images, shipped with sklearn), scaled to [0, 1].

    Needs scikit-learn (``pip install 'lightning-liegg[datasets]'``).

    Returns:
        ``(images, labels)``: float32 of shape (1797, 1, 8, 8) and int64 of shape (1797,).

    Raises:
        LieGGError: when scikit-learn is not installed (naming the extra to install).
    """
    SKLEARN.require()  # heavy import, only when needed
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
    return images, torch.from_numpy(digits.target.astype(np.int64))


def read_idx(path: str | Path) -> Tensor:
    """Read an idx file (the MNIST format), raw or gzip-compressed.

    Args:
        path: file path; gzip is detected from the content, not the name.

    Returns:
        The array as a tensor of the file's dtype and shape (d1, ..., dk).

    Raises:
        LieGGError: if the header or the data length is malformed.
    """
    with open(path, "rb") as handle:
        raw = handle.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES:
        raise LieGGError(
            f"Expected an idx header (0, 0, dtype, ndim) in {path}, but got {raw[:4]!r}"
        )
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - offset != expected:
        got = len(raw) - offset
        raise LieGGError(
            f"Expected {expected} data bytes for shape {shape} in {path}, but got {got}"
        )
    array = np.frombuffer(raw, dtype, offset=offset).reshape(shape)
    return torch.from_numpy(array.astype(dtype.newbyteorder("="), copy=True))


def _find_idx(root: Path, stem: str) -> Path:
    for candidate in (root / stem, root / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    expected = ", ".join(f"{a}[.gz]" for pair in _MNIST_FILES.values() for a in pair)
    raise FileNotFoundError(
        f"Expected MNIST file '{stem}' or '{stem}.gz' in '{root}', but found neither. "
        f"An MNIST root holds the standard idx files: {expected} (no download is attempted)."
    )


def load_mnist(root: str | Path, split: str = "train") -> tuple[Tensor, Tensor]:
    """Load MNIST from the standard idx files in ``root`` (raw or ``.gz``), no download.

    Args:
        root: directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
            ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``).
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000 images).

    Returns:
        ``(images, labels)``: float32 in [0, 1] of shape (N, 1, 28, 28) and int64 of shape (N,).

    Raises:
        FileNotFoundError: if a required file is missing, naming the files expected.
        LieGGError: if the files are malformed or their lengths disagree.
    """
    split = check_choice("split", split, _SPLITS)
    image_stem, label_stem = _MNIST_FILES[split]
    images = read_idx(_find_idx(Path(root), image_stem))
    labels = read_idx(_find_idx(Path(root), label_stem))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise LieGGError(
            f"Expected images (N, H, W) and labels (N,), but got {tuple(images.shape)} "
            f"and {tuple(labels.shape)}"
        )
    return (images.float() / 255.0).unsqueeze(1), labels.long()


def _digits_split(split: str) -> Tensor:
    """Indices of the fixed train/test split of sklearn's digits (same for every seed)."""
    permutation = torch.randperm(1797, generator=torch.Generator().manual_seed(0))
    n_test = round(_DIGITS_TEST_FRACTION * 1797)
    return permutation[n_test:] if split == "train" else permutation[:n_test]


def rotated_digits(
    split: str = "train",
    seed: int = 0,
    size: int = 28,
    rotate: bool = True,
    blur_sigma: float = 1.0,
    source: str = "digits",
    mnist_root: str | Path | None = None,
    limit: int | None = None,
    copies: int = 1,
) -> tuple[Tensor, Tensor]:
    """Digit images rotated by uniform random angles in [0, 2 pi), then Gaussian blurred.

    With ``source="digits"`` the 8x8 images are upsampled (bilinear) to
    ``floor((size - 2) / sqrt 2)`` pixels and centred in a zero ``size x size`` canvas, so no
    rotation clips the digit; 20% of them (a fixed choice) form the test split. With
    ``source="mnist"`` the 28x28 images are read from ``mnist_root`` and resized to ``size``
    when it differs.

    Args:
        split: ``"train"`` or ``"test"``.
        seed: seed of the ``torch.Generator`` drawing the angles (train and test draw
            different angles for the same seed).
        size: side of the square output images, at least 8.
        rotate: rotate the images; ``False`` gives the upright control data.
        blur_sigma: Gaussian blur in pixels (0 disables it), applied after rotation.
        source: ``"digits"`` (scikit-learn, bundled) or ``"mnist"`` (idx files on disk).
        mnist_root: directory with the MNIST idx files; required for ``source="mnist"``.
        limit: keep only the first ``limit`` images of the split (before rotation).
        copies: independently rotated copies of every image (data augmentation), stacked
            copy after copy: copy ``c`` of image ``i`` is at index ``c * n + i``. Copy 0 is
            the ``copies=1`` result; without ``rotate`` the copies are identical.

    Returns:
        ``(images, labels)``: float32 of shape (copies * N, 1, size, size) and int64 of shape
        (copies * N,).

    Raises:
        LieGGError: on bad arguments.
        FileNotFoundError: if MNIST files are missing.
    """
    split = check_choice("split", split, _SPLITS)
    source = check_choice("source", source, ("digits", "mnist"))
    check_positive_int("size", size, minimum=8)
    check_number("blur_sigma", blur_sigma, minimum=0.0)
    if limit is not None:
        check_positive_int("limit", limit)
    check_positive_int("copies", copies)
    if source == "digits":
        images, labels = load_digits_images()
        index = _digits_split(split)[:limit]
        images, labels = images[index], labels[index]
        inner = max(8, math.floor((size - 2) / math.sqrt(2)))
        images = F.interpolate(images, size=(inner, inner), mode="bilinear", align_corners=False)
        before = (size - inner) // 2
        images = F.pad(images, (before, size - inner - before, before, size - inner - before))
    else:
        if mnist_root is None:
            raise LieGGError("Expected mnist_root (a directory) for source='mnist', but got None")
        images, labels = load_mnist(mnist_root, split)
        images, labels = images[:limit], labels[:limit]
        if images.shape[-1] != size:
            images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    if copies > 1:
        images, labels = images.repeat(copies, 1, 1, 1), labels.repeat(copies)
    if rotate:
        # One stream for all copies: its first N draws are the angles of copies=1.
        generator = torch.Generator().manual_seed(2 * seed + _SPLITS.index(split))
        angles = 2 * math.pi * torch.rand(len(images), generator=generator, dtype=torch.float64)
        images = rotate_images(images, angles)
    if blur_sigma > 0:
        images = gaussian_blur(images, blur_sigma)
    return images.clamp(0, 1).contiguous(), labels


# --------------------------------------------------------------------------- DataModules
class _TensorDataModule(*classes("LightningDataModule")):  # type: ignore[misc]
    """Holds train/val/test tensors built once in ``setup`` and serves them as DataLoaders."""

    def __init__(self, batch_size: int, num_workers: int) -> None:
        super().__init__()
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.num_workers = check_positive_int("num_workers", num_workers, minimum=0)
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None
        self.test_set: TensorDataset | None = None

    def _build(self) -> tuple[TensorDataset, TensorDataset, TensorDataset]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        """Build the three splits (once; later calls reuse them)."""
        if self.train_set is None:
            self.train_set, self.val_set, self.test_set = self._build()

    def _loader(self, dataset: TensorDataset | None, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError("Expected `setup()` to be called before requesting a DataLoader")
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches."""
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches in a fixed order."""
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """Test batches in a fixed order."""
        return self._loader(self.test_set, shuffle=False)


def _check_split_sizes(n_train: int, n_val: int, n_test: int) -> None:
    check_positive_int("n_train", n_train)
    check_positive_int("n_val", n_val)
    check_positive_int("n_test", n_test)


def _three_splits(
    x: Tensor, y: Tensor, n_train: int, n_val: int
) -> tuple[TensorDataset, TensorDataset, TensorDataset]:
    return (
        TensorDataset(x[:n_train], y[:n_train]),
        TensorDataset(x[n_train : n_train + n_val], y[n_train : n_train + n_val]),
        TensorDataset(x[n_train + n_val :], y[n_train + n_val :]),
    )


class O5RegressionDataModule(_TensorDataModule):
    """EMLP's O(5) regression task: inputs (B, 10) (two 5-vectors), targets (B, 1).

    All splits come from one stream seeded by ``seed``: train first, then val, then test.
    Analyse with ``VectorAction(dim=5, channels=2)`` against ``algebras.so(5)``.

    Args:
        n_train: training samples.
        n_val: validation samples.
        n_test: test samples.
        batch_size: batch size of every DataLoader.
        seed: data seed.
        num_workers: DataLoader workers.
    """

    input_dim = 10
    output_dim = 1

    def __init__(
        self,
        n_train: int = 10_000,
        n_val: int = 1_000,
        n_test: int = 1_000,
        batch_size: int = 500,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        _check_split_sizes(n_train, n_val, n_test)
        self.save_hyperparameters()
        self.n_train, self.n_val, self.n_test, self.seed = n_train, n_val, n_test, seed

    def _build(self) -> tuple[TensorDataset, TensorDataset, TensorDataset]:
        x, y = o5_regression_data(self.n_train + self.n_val + self.n_test, self.seed)
        return _three_splits(x, y, self.n_train, self.n_val)


class LorentzDataModule(_TensorDataModule):
    """Invariant mass of two on-shell 4-momenta: inputs (B, 8), targets (B, 1).

    Analyse with ``VectorAction(dim=4, channels=2)`` against ``algebras.lorentz()``.

    Args:
        n_train: training samples.
        n_val: validation samples.
        n_test: test samples.
        batch_size: batch size of every DataLoader.
        seed: data seed.
        mass_range: ``(low, high)`` range of the particle masses.
        num_workers: DataLoader workers.
    """

    input_dim = 8
    output_dim = 1

    def __init__(
        self,
        n_train: int = 10_000,
        n_val: int = 1_000,
        n_test: int = 1_000,
        batch_size: int = 500,
        seed: int = 0,
        mass_range: tuple[float, float] = (0.5, 1.5),
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        _check_split_sizes(n_train, n_val, n_test)
        low, high = mass_range
        if not 0 <= low <= high:
            raise LieGGError(f"Expected mass_range with 0 <= low <= high, but got {mass_range!r}")
        self.save_hyperparameters()
        self.n_train, self.n_val, self.n_test, self.seed = n_train, n_val, n_test, seed
        self.mass_range = (float(low), float(high))

    def _build(self) -> tuple[TensorDataset, TensorDataset, TensorDataset]:
        n = self.n_train + self.n_val + self.n_test
        x, y = lorentz_data(n, self.seed, self.mass_range)
        return _three_splits(x, y, self.n_train, self.n_val)


class RotatedDigitsDataModule(_TensorDataModule):
    """Rotated, blurred digit images: inputs (B, 1, size, size) or (B, size * size), labels (B,).

    The train split of :func:`rotated_digits` is divided into train and validation by a
    permutation seeded by ``seed``; the test split is the source's own (sklearn digits: a
    fixed 20%; MNIST: ``t10k``). Analyse with ``ImageAction()`` against
    ``algebras.rotation2d()`` (for ``flatten=True``, reshape back to images first).

    Args:
        rotate: rotate every image by a uniform random angle; ``False`` is the control.
        blur_sigma: Gaussian blur in pixels after rotation (the paper uses 1.5 on MNIST).
        size: image side in pixels.
        val_fraction: fraction of the train split held out for validation, in [0, 1).
        batch_size: batch size of every DataLoader.
        seed: seed of the rotation angles and the train/val split.
        source: ``"digits"`` (scikit-learn, bundled) or ``"mnist"`` (idx files on disk).
        mnist_root: directory with the MNIST idx files, for ``source="mnist"``.
        flatten: serve images as vectors of shape (B, size * size), for MLPs.
        limit: keep only the first ``limit`` images of each source split (quick runs).
        num_workers: DataLoader workers.
        copies: independently rotated copies of every training image (augmentation: the
            train split grows ``copies``-fold); validation and test keep one copy, and no
            copy of a validation image enters training.
    """

    num_classes = 10

    def __init__(
        self,
        rotate: bool = True,
        blur_sigma: float = 1.0,
        size: int = 28,
        val_fraction: float = 0.2,
        batch_size: int = 128,
        seed: int = 0,
        source: str = "digits",
        mnist_root: str | None = None,
        flatten: bool = False,
        limit: int | None = None,
        num_workers: int = 0,
        copies: int = 1,
    ) -> None:
        super().__init__(batch_size, num_workers)
        self.blur_sigma = check_number("blur_sigma", blur_sigma, minimum=0.0)
        self.size = check_positive_int("size", size, minimum=8)
        self.val_fraction = check_number("val_fraction", val_fraction, minimum=0.0, below=1.0)
        self.source = check_choice("source", source, ("digits", "mnist"))
        if source == "mnist" and mnist_root is None:
            raise LieGGError("Expected mnist_root (a directory) for source='mnist', but got None")
        if limit is not None:
            check_positive_int("limit", limit)
        self.copies = check_positive_int("copies", copies)
        self.save_hyperparameters()
        self.rotate, self.seed, self.mnist_root = rotate, seed, mnist_root
        self.flatten, self.limit = flatten, limit

    @property
    def input_dim(self) -> int:
        """Number of pixels of one image, ``size * size``."""
        return self.size * self.size

    def _images(self, split: str, copies: int = 1) -> tuple[Tensor, Tensor]:
        images, labels = rotated_digits(
            split, self.seed, self.size, self.rotate, self.blur_sigma,
            self.source, self.mnist_root, self.limit, copies,
        )  # fmt: skip
        return (images.flatten(1) if self.flatten else images), labels

    def _build(self) -> tuple[TensorDataset, TensorDataset, TensorDataset]:
        images, labels = self._images("train", self.copies)
        n = len(images) // self.copies
        permutation = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
        n_val = round(self.val_fraction * n)
        if n - n_val < 1 or (self.val_fraction > 0 and n_val < 1):
            raise LieGGError(
                f"Expected val_fraction={self.val_fraction} to leave non-empty train and val "
                f"splits, but got {n} images"
            )
        val, train = permutation[:n_val], permutation[n_val:]
        # Copy c of image i sits at c * n + i; validation keeps copy 0 only.
        train = torch.cat([train + c * n for c in range(self.copies)])
        test_images, test_labels = self._images("test")
        return (
            TensorDataset(images[train], labels[train]),
            TensorDataset(images[val], labels[val]),
            TensorDataset(test_images, test_labels),
        )
