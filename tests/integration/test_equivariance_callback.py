"""The callback with an output action (equivariance): a real Trainer, TensorBoard files read back,
figures titled "equivariance", inputs beside outputs for image outputs, and DDP."""

from __future__ import annotations

import io

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from pytorch_lightning.loggers import TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightning_liegg as lg
from lightning_liegg._engine import Run
from lightning_liegg._media import (
    FigurePayload,
    draw_figures,
    figure_titles,
    filmstrip_frames,
    render_media,
)
from lightning_liegg.exceptions import LieGGError
from lightning_liegg.history import Evaluation

from .helpers import read_events, scalar_steps, single_and_ddp, trainer
from .models import POINTS, PointCloudDataModule, PointCloudModel

CLOUD = lg.VectorAction(dim=3, channels=POINTS)
VECTOR = lg.VectorAction(dim=3)
TAGS = ("symmetry_variance", "relative_variance", "symmetry_dim", "closure")


def _image(acc, tag: str, step: int) -> np.ndarray:
    (event,) = [e for e in acc.Images(tag) if e.step == step]
    return np.asarray(Image.open(io.BytesIO(event.encoded_image_string)).convert("RGB"))


def test_vector_outputs_in_a_trainer(tmp_path):
    torch.manual_seed(0)
    logger = TensorBoardLogger(tmp_path, name="tb")
    cb = lg.LieGGCallback(
        CLOUD, reference="so(3)", num_samples=32, media_budget=None, output_action=VECTOR
    )
    t = trainer(tmp_path, max_epochs=2, logger=logger, callbacks=[cb], limit_train_batches=3)
    model = PointCloudModel()
    t.fit(model, PointCloudDataModule())
    steps = [e.step for e in cb.history]
    assert steps == [0, 3, 6]
    acc = read_events(logger.log_dir)
    for tag in (*TAGS, "symmetry_bias", "subspace_distance"):
        assert scalar_steps(acc, f"liegg/{tag}") == steps, tag
    images = acc.Tags()["images"]
    assert "liegg/generators" in images and "liegg/spectrum" in images
    assert "liegg/filmstrip" not in images  # vectors have no filmstrip
    # the logged numbers are those of the equivariance analysis, not of the invariance one
    samples = cb.samples.to(torch.float64)
    model64 = model.to(torch.float64)
    equi = lg.liegg(model64, samples, CLOUD, output_action=VECTOR, reference="so(3)")
    inv = lg.liegg(model64, samples, CLOUD, reference="so(3)")
    logged = cb.history[-1].scalars
    assert equi.symmetry_variance == pytest.approx(logged["symmetry_variance"], rel=1e-4)
    assert inv.symmetry_variance != pytest.approx(logged["symmetry_variance"], rel=1e-2)
    (event,) = [e for e in acc.Scalars("liegg/subspace_distance") if e.step == 6]
    assert event.value == pytest.approx(equi.subspace_distance(), rel=1e-3, abs=1e-6)
    # the record says which output action; it survives the checkpoint format
    assert all(r.output_action == repr(VECTOR) for r in cb.history)
    assert cb.history[-1].to_dict()["output_action"] == repr(VECTOR)
    restored = lg.LieGGCallback(CLOUD, output_action=VECTOR)
    restored.load_state_dict(cb.state_dict())
    assert restored.history == cb.history and restored.state_key == cb.state_key
    # the logged generator heatmap is the one titled "equivariance"
    payload = FigurePayload.build(
        cb.last_report, cb.history, CLOUD, cb.samples, cb.num_generators, 4, equivariance=True
    )
    assert "equivariance" in figure_titles(payload)["generators"]
    assert np.array_equal(_image(acc, "liegg/generators", 6), render_media(payload)["generators"])


def test_figure_titles_say_what_was_analysed():
    def model(x):  # O(3) equivariant, not gl(3)
        points = x.reshape(-1, POINTS, 3)
        return ((points**2).sum(-1, keepdim=True) * points).sum(1)

    x = torch.randn(16, 3 * POINTS, dtype=torch.float64)
    rep = lg.liegg(model, x, CLOUD, output_action=VECTOR, reference="so(3)")
    assert rep.symmetry_dim == 3
    history = [Evaluation.from_report(rep, 0, 0, "fit", 0.1, 4)]
    for equivariance, word in ((False, "invariance"), (True, "equivariance")):
        payload = FigurePayload.build(rep, history, CLOUD, x, 4, 4, equivariance=equivariance)
        titles = figure_titles(payload)
        expected = {"generators", "spectrum", "evolution", "bias"}
        assert set(titles) == set(draw_figures(payload)) == expected
        for name, title in titles.items():
            assert word in title and title.count("invariance") == (not equivariance), name


class Dense(pl.LightningModule):
    """Grid to grid: two convolutions with zero padding (dense outputs, e.g. denoising)."""

    def __init__(self, conv: type[nn.Module]) -> None:
        super().__init__()
        self.net = nn.Sequential(conv(1, 4, 3, padding=1), nn.Tanh(), conv(4, 2, 3, padding=1))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        (x,) = batch
        return nn.functional.mse_loss(self(x), torch.cat([x, x], 1))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


@pytest.mark.parametrize(
    "action,conv,shape",
    [(lg.ImageAction(), nn.Conv2d, (1, 9, 9)), (lg.SignalAction(), nn.Conv1d, (1, 20))],
    ids=["image", "signal"],
)
def test_grid_outputs_filmstrip_shows_inputs_beside_outputs(tmp_path, action, conv, shape):
    torch.manual_seed(1)
    x = torch.rand(24, *shape)
    logger = TensorBoardLogger(tmp_path, name="tb")
    cb = lg.LieGGCallback(
        action, num_samples=12, media_budget=None, filmstrip_samples=3, output_action=action
    )
    t = trainer(tmp_path, max_epochs=1, logger=logger, callbacks=[cb], limit_train_batches=2)
    model = Dense(conv)
    t.fit(model, DataLoader(TensorDataset(x), batch_size=6))
    assert model.training and all(p.grad is not None for p in model.parameters())
    acc = read_events(logger.log_dir)
    logged = _image(acc, "liegg/filmstrip", 2)
    # what was drawn: the inputs moved along the first generator and the model's outputs on them
    moved = filmstrip_frames(cb.action, cb.samples, cb.last_report.generators[0], 3)
    outputs = cb.engine.filmstrip_outputs(t.lightning_module, Run.from_trainer(t), moved)
    frames = action.transform(
        cb.samples[:3], cb.last_report.generators[0].float(), torch.linspace(0, 1, 5)
    )
    with torch.no_grad():
        expected = model.eval()(frames.reshape(15, *shape)).reshape(5, 3, 2, *shape[1:])
    model.train()
    torch.testing.assert_close(outputs, expected)
    payload = FigurePayload.build(
        cb.last_report, cb.history, cb.action, cb.samples, 4, 3, True, outputs
    )
    assert payload.outputs is not None and payload.outputs.shape == (5, 3, 2, *shape[1:])
    assert np.array_equal(logged, render_media(payload)["filmstrip"])
    reused = FigurePayload.build(  # the frames the callback warped once, passed through
        cb.last_report, cb.history, cb.action, cb.samples, 4, 3, True, outputs, moved=moved
    )
    assert np.array_equal(logged, render_media(reused)["filmstrip"])
    plain = render_media(FigurePayload.build(cb.last_report, cb.history, action, cb.samples, 4, 3))
    if isinstance(action, lg.ImageAction):  # two grids side by side
        assert logged.shape[1] > 1.5 * plain["filmstrip"].shape[1]
    else:  # a second row of panels under the inputs
        assert logged.shape[0] > 1.5 * plain["filmstrip"].shape[0]


def test_mismatched_actions_are_clear_errors():
    with pytest.raises(LieGGError, match=r"VectorAction.*ImageAction|ImageAction.*VectorAction"):
        lg.LieGGCallback(CLOUD, output_action=lg.ImageAction())
    with pytest.raises(LieGGError, match="reduction='sum'"):
        lg.LieGGCallback(CLOUD, reduction="sum", output_action=VECTOR)
    with pytest.raises(LieGGError, match="output_action"):
        lg.LieGGCallback(CLOUD, output_action="so(3)")


def test_state_key_has_the_output_action_only_when_set():
    plain = lg.LieGGCallback(CLOUD)
    assert "output_action" not in plain.state_key
    assert plain.state_key == lg.LieGGCallback(CLOUD, output_action=None).state_key
    assert repr(VECTOR) in lg.LieGGCallback(CLOUD, output_action=VECTOR).state_key


def _spectrum(acc, step: int) -> list[float]:
    return [
        next(e.value for e in acc.Scalars(f"liegg/spectrum/{i}") if e.step == step)
        for i in range(9)
    ]


@pytest.mark.slow
def test_ddp_equivariance_spectrum_matches_single_process(tmp_path):
    results = {}
    for name, kwargs, model in single_and_ddp(PointCloudModel, seed=4):
        logger = TensorBoardLogger(tmp_path / name, name="tb", version=0)
        # 48 validation samples: one process caches all, each of two ranks its 24
        cb = lg.LieGGCallback(
            CLOUD, reference="so(3)", num_samples=48, media_budget=None, output_action=VECTOR
        )
        options = dict(max_epochs=1, logger=logger, callbacks=[cb], enable_checkpointing=False)
        options.update(kwargs)
        trainer(tmp_path / name, **options).fit(model, PointCloudDataModule())
        results[name] = read_events(logger.log_dir)
    single, ddp = results["single"], results["ddp"]
    # each of two ranks trains on half the batches; step 0 (same weights) is compared
    assert scalar_steps(ddp, "liegg/symmetry_variance") == [0, 3]
    assert scalar_steps(single, "liegg/symmetry_variance") == [0, 6]
    assert _spectrum(ddp, 0) == pytest.approx(_spectrum(single, 0), rel=1e-4, abs=1e-7)
    for tag in ("symmetry_variance", "subspace_distance"):
        a, b = ddp.Scalars(f"liegg/{tag}")[0].value, single.Scalars(f"liegg/{tag}")[0].value
        assert a == pytest.approx(b, rel=1e-4), tag
