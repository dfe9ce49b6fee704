"""Tiny real Lightning modules and data for the integration tests (importable by LightningCLI)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def image_data(n: int = 96, size: int = 8, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, size, size, generator=g)
    y = (x[:, 0, : size // 2].mean((1, 2)) > x[:, 0, size // 2 :].mean((1, 2))).long()
    return TensorDataset(x, y)


class Classifier(pl.LightningModule):
    """Cross-entropy training and a logged ``val_loss``, plain SGD at ``lr``: subclasses add the
    network and ``forward``."""

    lr = 0.05

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class TinyImageBody:
    """A small MLP on 8x8 images, with dropout (consumes RNG) and BatchNorm (has buffers).

    The body of ``TinyImageModel``, shared with the ``lightning.pytorch`` twin.
    """

    def __init__(
        self, size: int = 8, hidden: int = 16, lr: float = 0.05, nan_from_epoch: int = -1
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(size * size, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.Linear(hidden, 2),
        )
        self.nan_from_epoch = nan_from_epoch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if 0 <= self.nan_from_epoch <= self.current_epoch and not self.training:
            out = out * float("nan")  # broken for analysis (eval mode), training unaffected
        return out

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


class TinyImageModel(TinyImageBody, pl.LightningModule):
    """A small MLP on 8x8 images (``pytorch_lightning``)."""


class NoValModel(TinyImageModel):
    validation_step = None  # type: ignore[assignment]


class TinyDataBody:
    """Random 8x8 images, two classes; the body of ``TinyDataModule`` and its twin."""

    def __init__(
        self, n: int = 96, size: int = 8, batch_size: int = 16, shuffle: bool = True
    ) -> None:
        super().__init__()
        self.n, self.size, self.batch_size, self.shuffle = n, size, batch_size, shuffle

    def setup(self, stage: str | None = None) -> None:
        self.train = image_data(self.n, self.size, seed=0)
        self.val = image_data(self.n // 2, self.size, seed=1)

    def train_dataloader(self):
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=self.shuffle)

    def val_dataloader(self):
        return DataLoader(self.val, batch_size=self.batch_size)


class TinyDataModule(TinyDataBody, pl.LightningDataModule):
    """The tiny data (``pytorch_lightning``)."""


# -- equivariance: point clouds in, one 3-vector out ----------------------------------------------
POINTS = 4


def point_cloud_data(n: int = 96, points: int = POINTS, seed: int = 0) -> TensorDataset:
    """Clouds of ``points`` 3-D points, flat ``(n, 3 * points)``, and the O(3)-equivariant target
    sum_i exp(-|x_i|^2 / 2) x_i ``(n, 3)``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, points, 3, generator=g)
    y = (torch.exp(-0.5 * (x**2).sum(-1, keepdim=True)) * x).sum(1)
    return TensorDataset(x.reshape(n, -1), y)


class PointCloudModel(pl.LightningModule):
    """An MLP from a flat point cloud to a 3-vector (equivariance must be learned)."""

    def __init__(self, points: int = POINTS, hidden: int = 16, lr: float = 0.01) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(3 * points, hidden), nn.Tanh(), nn.Linear(hidden, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


class PointCloudDataModule(pl.LightningDataModule):
    def __init__(self, n: int = 96, batch_size: int = 16) -> None:
        super().__init__()
        self.n, self.batch_size = n, batch_size

    def setup(self, stage: str | None = None) -> None:
        self.train = point_cloud_data(self.n, seed=0)
        self.val = point_cloud_data(self.n // 2, seed=1)

    def train_dataloader(self):
        return DataLoader(self.train, batch_size=self.batch_size)

    def val_dataloader(self):
        return DataLoader(self.val, batch_size=self.batch_size)
