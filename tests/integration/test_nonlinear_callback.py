"""VectorFieldAction through the metric, per-layer analysis and a real Trainer with the callback."""

from __future__ import annotations

import lightning.pytorch as L
import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightning_liegg as lg

from ..conftest import rel_err
from .helpers import read_events, trainer


def energy(z: torch.Tensor) -> torch.Tensor:
    return (z[:, 1] ** 2 / 2 + z[:, 0] ** 4 / 4)[:, None]


def states(n: int) -> torch.Tensor:
    return (torch.rand(n, 2) * 2 - 1) * 1.5


def body() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))


def test_metric_and_layers_with_a_vector_field_action() -> None:
    torch.manual_seed(0)
    net = body().double()
    x = states(64).double()
    act = lg.VectorFieldAction(2, degree=2, names=("q", "p"))
    direct = lg.liegg(net, x, act)
    metric = lg.LieGG(act)
    for chunk in x.split(20):
        metric.update(net, chunk)
    synced = metric.compute()
    assert rel_err(synced.spectrum, direct.spectrum) < 1e-10
    assert synced.descriptions == direct.descriptions and "∂q" in direct.descriptions[0]
    layered = lg.liegg(net, x, act, layers=["1"])
    assert set(layered) >= {"1", "output"}
    assert rel_err(layered["output"].spectrum, direct.spectrum) < 1e-10


class EnergyModule(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = body()

    def forward(self, z):
        return self.net(z)

    def training_step(self, batch, batch_idx):
        z, h = batch
        loss = nn.functional.mse_loss(self(z), h)
        self.log("mse", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


class EnergyModuleL(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = body()

    def forward(self, z):
        return self.net(z)

    def training_step(self, batch, batch_idx):
        z, h = batch
        return nn.functional.mse_loss(self(z), h)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


@pytest.mark.parametrize("namespace", ["pytorch_lightning", "lightning.pytorch"])
def test_callback_fit_with_a_vector_field_action(tmp_path, capsys, namespace) -> None:
    torch.manual_seed(0)
    x = states(128)
    data = DataLoader(TensorDataset(x, energy(x)), batch_size=32)
    act = lg.VectorFieldAction(2, degree=3, names=("q", "p"))
    flow = torch.zeros(1, 2, 10, dtype=torch.float64)
    flow[0, 0, act.functions.index("p")], flow[0, 1, act.functions.index("q^3")] = 1.0, -1.0
    cb = lg.LieGGCallback(act, every_n_epochs=1, num_samples=64, reference=flow)
    if namespace == "pytorch_lightning":
        logger = TensorBoardLogger(str(tmp_path), name="tb")
        trainer(tmp_path, logger=logger, callbacks=[cb]).fit(EnergyModule(), data)
        scalars = read_events(logger.log_dir).Tags()["scalars"]
        assert "liegg/symmetry_bias" in scalars and "liegg/relative_variance" in scalars
    else:
        trainer(tmp_path, L.Trainer, logger=False, callbacks=[cb]).fit(EnergyModuleL(), data)
    assert len(cb.history) == 3  # the start, then two epochs
    record = cb.history[-1]
    assert len(record.generators[0]) == 2 and len(record.generators[0][0]) == 10
    assert 0.0 <= record.bias[0] <= 1.0
    summary = capsys.readouterr().out
    text = act.format_generator(torch.tensor(record.generators[0]))
    assert f"top generator   {text}" in summary, summary
