"""Replay: a run trained without the callback, analysed afterwards from its checkpoints,
gives the callback's numbers at the same steps, in TensorBoard event files read back."""

from __future__ import annotations

import json

import pytest
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger

import lightning_liegg as lg
from tests.conftest import ROOT

from .helpers import read_events, scalar_steps, trainer
from .models import TinyDataModule, TinyImageModel

pytestmark = pytest.mark.slow


def _callback(**kwargs) -> lg.LieGGCallback:
    return lg.LieGGCallback(
        lg.ImageAction(), reference="rotation2d", num_samples=16, media_budget=None, **kwargs
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same training twice: saving a checkpoint per epoch, and with the callback."""
    tmp_path = tmp_path_factory.mktemp("runs")
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpts", save_top_k=-1, every_n_epochs=1)
    t = trainer(tmp_path / "plain", max_epochs=3, logger=False, callbacks=[ckpt])
    torch.manual_seed(0)
    t.fit(TinyImageModel(), TinyDataModule(shuffle=False))
    live = _callback()
    logger = TensorBoardLogger(tmp_path / "live", name="tb", version=0)
    t = trainer(tmp_path / "live", max_epochs=3, logger=logger, callbacks=[live])
    torch.manual_seed(0)
    t.fit(TinyImageModel(), TinyDataModule(shuffle=False))
    return tmp_path / "ckpts", live


def test_replay_matches_the_callback(tmp_path, runs, capfd):
    ckpts, live = runs
    cb = _callback()
    records = lg.replay(
        TinyImageModel, ckpts, TinyDataModule(shuffle=False), cb, log_dir=tmp_path / "replay"
    )
    assert [r.step for r in records] == [6, 12, 18] and {r.stage for r in records} == {"replay"}
    for record in records:
        (same,) = [e for e in live.history if e.step == record.step]
        for key in ("symmetry_variance", "relative_variance", "symmetry_bias"):
            assert record.scalars[key] == pytest.approx(same.scalars[key], rel=1e-5), key
    acc = read_events(tmp_path / "replay")
    assert scalar_steps(acc, "liegg/symmetry_bias") == [6, 12, 18]
    assert scalar_steps(acc, "liegg/spectrum/0") == [6, 12, 18]
    assert [e.step for e in acc.Images("liegg/generators")] == [6, 12, 18]
    assert [e.step for e in acc.Images("liegg/filmstrip")] == [6, 12, 18]
    assert "liegg/log10_relative_spectrum" in acc.Tags()["histograms"]
    (last,) = [e.value for e in acc.Scalars("liegg/symmetry_bias") if e.step == 18]
    assert last == pytest.approx(records[-1].scalars["symmetry_bias"], rel=1e-6)
    assert "LieGG replay" in capfd.readouterr().out


def test_replay_command_line(tmp_path, runs, run_script):
    ckpts, live = runs
    data = {
        "class_path": "tests.integration.models.TinyDataModule",
        "init_args": {"shuffle": False},
    }
    run_script(
        "-m",
        "lightning_liegg.replay",
        "--model",
        "tests.integration.models.TinyImageModel",
        "--checkpoints",
        str(ckpts),
        "--data",
        json.dumps(data),
        "--callback.action",
        "lightning_liegg.ImageAction",
        "--callback.reference",
        "rotation2d",
        "--callback.num_samples",
        "16",
        "--log_dir",
        str(tmp_path / "cli"),
        env={"PYTHONPATH": str(ROOT)},
    )
    acc = read_events(tmp_path / "cli")
    assert scalar_steps(acc, "liegg/symmetry_bias") == [6, 12, 18]
    (last,) = [e.value for e in acc.Scalars("liegg/symmetry_bias") if e.step == 18]
    assert last == pytest.approx(live.history[-1].scalars["symmetry_bias"], rel=1e-5)


def test_replay_errors(tmp_path):
    cb = _callback()
    with pytest.raises(lg.LieGGError, match=r"checkpoint files \(\*\.ckpt\).*none"):
        lg.replay(TinyImageModel, tmp_path, TinyDataModule(), cb)
    with pytest.raises(lg.LieGGError, match="importable class path"):
        lg.replay("tests.integration.models.Nope", tmp_path, TinyDataModule(), cb)
    with pytest.raises(lg.LieGGError, match="callback to be a LieGGCallback"):
        lg.replay(TinyImageModel, tmp_path, TinyDataModule(), object())
