"""The tiny modules of ``models.py`` under the ``lightning.pytorch`` namespace."""

from __future__ import annotations

import lightning.pytorch as L

from .models import TinyDataBody, TinyImageBody


class LTinyImageModel(TinyImageBody, L.LightningModule):
    """The tiny image model (``lightning.pytorch``)."""


class LNoValModel(LTinyImageModel):
    validation_step = None  # type: ignore[assignment]


class LTinyDataModule(TinyDataBody, L.LightningDataModule):
    """The tiny data (``lightning.pytorch``)."""
