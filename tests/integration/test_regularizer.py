"""``lg.SymmetryRegularizer`` in a training loop: alone, and in real Trainers (both namespaces)."""

from __future__ import annotations

import importlib

import lightning.pytorch
import pytest
import pytorch_lightning
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightning_liegg as lg

from .helpers import read_events, single_and_ddp, trainer

PAIRS = lg.VectorAction(dim=3, channels=2)


def pairs_data(n: int = 96, seed: int = 0) -> TensorDataset:
    """Two 3-vectors per sample; an O(3)-invariant target."""
    x = torch.randn(n, 6, generator=torch.Generator().manual_seed(seed))
    v = x.reshape(n, 2, 3)
    y = (v[:, 0] * v[:, 1]).sum(1, keepdim=True) + v[:, 0].norm(dim=1, keepdim=True)
    return TensorDataset(x, y)


def net() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 1))


class RegressionBody:
    """A regression LightningModule body with the penalty in its training_step."""

    def __init__(self, **options) -> None:
        super().__init__()
        self.net = net()
        self.symmetry = lg.SymmetryRegularizer(PAIRS, "so(3)", **options)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        return loss + self.symmetry(self, x)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


class Regression(RegressionBody, pytorch_lightning.LightningModule):
    """The module under ``pytorch_lightning`` (module level: DDP spawn pickles it)."""


class RegressionL(RegressionBody, lightning.pytorch.LightningModule):
    """The module under ``lightning.pytorch``."""


def make_module(namespace: str, **options):
    """The regression module of ``namespace`` with ``SymmetryRegularizer(**options)``."""
    return (Regression if namespace == "pytorch_lightning" else RegressionL)(**options)


class DDPRegression(Regression):
    """relative=False, all samples, weight 5: a penalty that is a mean over samples.

    Each of two ranks trains on every second sample (rank r: r, r + 2, ...), in batches of 8;
    one process on all of them in batches of 16: the same samples in every step.
    """

    def __init__(self) -> None:
        super().__init__(weight=5.0, num_samples=None, relative=False)

    def train_dataloader(self):
        world, rank = self.trainer.world_size, self.global_rank
        data = pairs_data(64)
        mine = torch.utils.data.Subset(data, range(rank, len(data), world))
        return DataLoader(mine, batch_size=16 // world, shuffle=False)


# -- the module alone ------------------------------------------------------------------------
def test_value_subsampling_and_skipped_steps():
    model = net()
    x = pairs_data(40).tensors[0]
    reg = lg.SymmetryRegularizer(PAIRS, "so(3)", weight=3.0, num_samples=16, every_n_steps=3)
    expected = 3.0 * lg.symmetry_loss(model, x[:16], PAIRS, "so(3)")
    values = [reg(model, x) for _ in range(4)]
    assert torch.equal(values[0], expected) and torch.equal(values[3], expected)
    for skipped in values[1:3]:  # calls 1 and 2: a zero without a graph, adds to any loss
        assert skipped.item() == 0.0 and skipped.grad_fn is None and skipped.dtype == x.dtype
    assert values[0].requires_grad and reg.calls == 4
    rng = torch.get_rng_state()
    reg(model, x)
    assert torch.equal(torch.get_rng_state(), rng)
    assert list(reg.parameters()) == [] and reg.state_dict() == {}


def test_mixed_precision_computes_in_float32():
    model = net()
    x = pairs_data(32).tensors[0]
    reg = lg.SymmetryRegularizer(PAIRS, "so(3)", num_samples=None)
    plain = reg.penalty(model, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = reg.penalty(model, x)
        half = reg.penalty(model, x.to(torch.bfloat16))
    assert auto.dtype == torch.float32 and torch.equal(auto, plain)
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(plain.item(), rel=0.05)  # bf16 inputs: 3 digits


def test_the_penalty_lowers_what_the_monitor_shows():
    torch.manual_seed(0)
    model = net()
    x = pairs_data(64).tensors[0]
    reg = lg.SymmetryRegularizer(PAIRS, "so(3)", weight=1.0, num_samples=None)
    before = lg.liegg(model, x, PAIRS, reference="so(3)").reference_variance(True).mean()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        opt.zero_grad()
        reg(model, x).backward()
        opt.step()
    after = lg.liegg(model, x, PAIRS, reference="so(3)").reference_variance(True).mean()
    assert float(after) < 0.1 * float(before)


def test_errors():
    with pytest.raises(lg.LieGGError, match="Expected num_samples to be a positive integer"):
        lg.SymmetryRegularizer(PAIRS, "so(3)", num_samples=0)
    with pytest.raises(lg.LieGGError, match="Expected every_n_steps to be a positive integer"):
        lg.SymmetryRegularizer(PAIRS, "so(3)", every_n_steps=1.5)
    with pytest.raises(lg.LieGGError, match="Expected weight to be a finite number >= 0"):
        lg.SymmetryRegularizer(PAIRS, "so(3)", weight=-1.0)
    with pytest.raises(lg.LieGGError, match=r"Expected k to be an integer in \[1, 8\]"):
        lg.SymmetryRegularizer(PAIRS, k=9)
    with pytest.raises(lg.LieGGError, match="Expected a reference algebra name"):
        lg.SymmetryRegularizer(PAIRS, "so3x")
    with pytest.raises(lg.LieGGError, match="Expected action to be an Action"):
        lg.SymmetryRegularizer("pairs", "so(3)")


# -- in a Trainer ----------------------------------------------------------------------------
@pytest.mark.integration
@pytest.mark.parametrize("namespace", ["pytorch_lightning", "lightning.pytorch"])
def test_fit_logs_the_penalty(tmp_path, namespace):
    pl = importlib.import_module(namespace)
    torch.manual_seed(0)
    module = make_module(namespace, weight=2.0, num_samples=8, every_n_steps=2)
    data = pairs_data(96)
    first = lg.symmetry_loss(module.net, data.tensors[0][:8], PAIRS, "so(3)").item()
    logger = pl.loggers.TensorBoardLogger(tmp_path, name="tb", version=0)
    t = trainer(tmp_path, pl.Trainer, max_epochs=1, logger=logger, enable_checkpointing=False)
    t.fit(module, DataLoader(data, batch_size=16))
    events = read_events(logger.log_dir).Scalars("liegg/penalty")
    # 6 steps, computed on every second one; Lightning repeats a step-logged value on the
    # steps in between (its result collection keeps the last value within the epoch)
    assert [e.step for e in events] == [0, 1, 2, 3, 4, 5]
    values = [e.value for e in events]
    assert values[1] == values[0] and values[3] == values[2] and values[5] == values[4]
    assert len({values[0], values[2], values[4]}) == 3
    assert values[0] == pytest.approx(first, rel=1e-5)  # unweighted, the first 8 samples
    assert all(0.0 <= v <= 1.0 for v in values)


@pytest.mark.slow
@pytest.mark.integration
def test_ddp_gradients_synchronise(tmp_path):
    # relative=False is a mean over samples: two ranks of 8 average to one process on 16
    weights = {}
    for name, kwargs, model in single_and_ddp(DDPRegression, seed=0):
        options = dict(max_steps=2, logger=False, enable_checkpointing=False)
        t = trainer(tmp_path / name, use_distributed_sampler=False, **options, **kwargs)
        t.fit(model)
        weights[name] = {k: v.clone() for k, v in model.state_dict().items()}
    for key, value in weights["single"].items():
        torch.testing.assert_close(weights["ddp"][key], value, rtol=1e-5, atol=1e-6)
