"""Per-sample violations and discrete transforms in a real Trainer, read back from TensorBoard."""

import io

import lightning.pytorch as lp
import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightning_liegg as lg
from lightning_liegg._per_sample import quantities, worst_samples_image

from .helpers import read_events, trainer
from .models import TinyDataModule, TinyImageModel


def half_invariant_data(n: int = 32) -> TensorDataset:
    """Pairs of 2-vectors (a, b) ``(n, 4)``, the first half with b = 0, and a target."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    x[:, 2:] *= 0.3
    x[: n // 2, 2:] = 0.0
    return TensorDataset(x, torch.ones(n))


class HalfInvariantBody:
    """scale * (|a|^2 + b_1^2): rotation invariant on the first half of the samples only."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * ((x[:, :2] ** 2).sum(dim=1) + x[:, 2] ** 2)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self):
        return DataLoader(half_invariant_data(), batch_size=8)

    def val_dataloader(self):
        return DataLoader(half_invariant_data(), batch_size=8)


class HalfInvariant(HalfInvariantBody, pl.LightningModule):
    pass


class HalfInvariantLightning(HalfInvariantBody, lp.LightningModule):
    pass


def _png(event) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(event.encoded_image_string)).convert("RGB"))


def test_discrete_scalars_histograms_and_worst_samples_image(tmp_path, capsys):
    logger = pl.loggers.TensorBoardLogger(tmp_path, name="tb")
    transforms = {"hflip": lg.transforms.hflip, "rot90": lg.transforms.rot90(1)}
    cb = lg.LieGGCallback(
        lg.ImageAction(), reference="rotation2d", num_samples=24, transforms=transforms
    )
    t = trainer(tmp_path, max_epochs=2, logger=logger, callbacks=[cb])
    t.fit(TinyImageModel(), TinyDataModule())
    steps = [r.step for r in cb.history]
    acc = read_events(logger.log_dir)
    for name in transforms:
        tag = f"liegg/discrete/{name}"
        assert [e.step for e in acc.Scalars(tag)] == steps
        logged = [e.value for e in acc.Scalars(tag)]
        assert logged == pytest.approx([r.scalars[f"discrete/{name}"] for r in cb.history])
        hist = acc.Histograms(f"liegg/per_sample/discrete/{name}")
        assert [h.step for h in hist] == steps and hist[-1].histogram_value.num == 24
    # the last evaluation's values are the functional API's on the cached samples
    model = t.lightning_module
    errors = lg.transform_errors(model, cb.samples, transforms)
    for name, err in errors.items():
        assert torch.allclose(cb.last_per_sample.errors[name], err, rtol=1e-5)
        assert cb.history[-1].scalars[f"discrete/{name}"] == pytest.approx(float(err.mean()))
    hists = acc.Tags()["histograms"]
    for which in ("most_symmetric", "reference"):
        assert f"liegg/per_sample/violation/{which}" in hists
    # the mean of the per-sample violation along the most symmetric generator is the
    # logged relative variance; along the reference, the mean reference variance
    violation = acc.Histograms("liegg/per_sample/violation/most_symmetric")[-1].histogram_value
    assert violation.sum / violation.num == pytest.approx(
        cb.history[-1].scalars["relative_variance"], rel=1e-4
    )
    image = acc.Images("liegg/worst_samples")
    assert [e.step for e in image] == steps and image[-1].width > 200
    assert "discrete        hflip" in capsys.readouterr().out


@pytest.mark.parametrize(
    "module_cls", [HalfInvariant, HalfInvariantLightning], ids=["pl", "lightning"]
)
def test_worst_samples_are_the_non_invariant_half(tmp_path, module_cls):
    trainer_cls = pl.Trainer if module_cls is HalfInvariant else lp.Trainer
    logger_cls = (
        pl.loggers.TensorBoardLogger
        if module_cls is HalfInvariant
        else lp.loggers.TensorBoardLogger
    )
    logger = logger_cls(tmp_path, name="tb")
    cb = lg.LieGGCallback(
        lg.VectorAction(dim=2, channels=2), reference="so(2)", num_samples=32, media_budget=None
    )
    t = trainer(tmp_path, trainer_cls, max_epochs=1, logger=logger, callbacks=[cb])
    t.fit(module_cls())
    per = cb.last_per_sample
    ref = per.violations["reference"]
    assert float(ref[:16].abs().max()) < 1e-10 < float(ref[16:].min())
    for label in ("violation: most_symmetric", "violation: reference"):
        assert set(per.worst[label]) <= set(range(16, 32)), (label, per.worst[label])
    # the logged image is the one drawn from those samples
    acc = read_events(logger.log_dir)
    logged = _png(acc.Images("liegg/worst_samples")[-1])
    rows = quantities(per)
    expected = worst_samples_image(cb.samples, {k: (rows[k], per.worst[k]) for k in rows})
    assert np.array_equal(logged, expected)
    assert "liegg/per_sample/violation/reference" in acc.Tags()["histograms"]
