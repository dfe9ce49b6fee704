"""Channels-last images in the callback: flagged (an error under strict), or analysed
properly with ``ImageAction(channels_last=True)``, filmstrip included."""

from __future__ import annotations

import warnings

import pytest
import torch
from pytorch_lightning.loggers import TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightning_liegg as lg

from .helpers import read_events, trainer
from .models import Classifier


class ChannelsLastModel(Classifier):
    """Takes (N, H, W, C) colour images."""

    lr = 0.1

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(12 * 12 * 3, 8), nn.Tanh(), nn.Linear(8, 2)
        )

    def forward(self, x):
        return self.net(x)


def _loaders():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(32, 12, 12, 3, generator=g)
    y = torch.randint(0, 2, (32,), generator=g)
    data = TensorDataset(x, y)
    return DataLoader(data, batch_size=8), DataLoader(data, batch_size=8)


def test_channels_last_samples_raise_under_strict(tmp_path):
    cb = lg.LieGGCallback(lg.ImageAction(), num_samples=8, log_images=False, strict=True)
    t = trainer(tmp_path, max_epochs=1, logger=False, callbacks=[cb])
    with pytest.raises(lg.LieGGError, match=r"look channels-last.*permute\(0, 3, 1, 2\)"):
        t.fit(ChannelsLastModel(), *_loaders())


def test_channels_last_samples_warn_once(tmp_path):
    cb = lg.LieGGCallback(lg.ImageAction(), num_samples=8, log_images=False)
    t = trainer(tmp_path, max_epochs=2, logger=False, callbacks=[cb])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t.fit(ChannelsLastModel(), *_loaders())
    msgs = [str(w.message) for w in caught if "channels-last" in str(w.message)]
    assert len(msgs) == 1 and "ImageAction(channels_last=True)" in msgs[0]


def test_channels_last_action_in_the_callback(tmp_path):
    cb = lg.LieGGCallback(
        lg.ImageAction(channels_last=True),
        reference="rotation2d",
        num_samples=8,
        media_budget=None,
        strict=True,
    )
    logger = TensorBoardLogger(tmp_path, name="tb", version=0)
    t = trainer(tmp_path, max_epochs=1, logger=logger, callbacks=[cb])
    t.fit(ChannelsLastModel(), *_loaders())
    assert [e.step for e in cb.history] == [0, 4]
    acc = read_events(logger.log_dir)
    assert [e.step for e in acc.Images("liegg/filmstrip")] == [0, 4]
