"""A real Trainer with a TensorBoardLogger; the event files are read back."""

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger

import lightning_liegg as lg

from .helpers import custom_scalars_layout, read_events, scalar_steps, trainer
from .models import NoValModel, TinyDataModule, TinyImageModel


def test_scalars_and_images_at_every_evaluation(tmp_path):
    pl_logger = TensorBoardLogger(tmp_path, name="tb")
    cb = lg.LieGGCallback(
        lg.ImageAction(), reference="rotation2d", num_samples=40, media_budget=None
    )
    t = trainer(tmp_path, max_epochs=3, logger=pl_logger, callbacks=[cb])
    t.fit(TinyImageModel(), TinyDataModule())
    steps = [e.step for e in cb.history]
    assert steps == [0, 6, 12, 18]  # step 0 plus one per epoch (6 steps per epoch)
    acc = read_events(pl_logger.log_dir)
    scalars = acc.Tags()["scalars"]
    for tag in [
        "symmetry_variance",
        "relative_variance",
        "symmetry_bias",
        "subspace_distance",
        "symmetry_dim",
        "seconds",
        "spectrum/0",
        "spectrum/3",
        "closure",
    ]:
        assert f"liegg/{tag}" in scalars, tag
        assert scalar_steps(acc, f"liegg/{tag}") == steps, tag
    assert scalar_steps(acc, "liegg/generator_drift") == steps[1:]
    # the values logged are the ones in the history
    logged = [e.value for e in acc.Scalars("liegg/symmetry_variance")]
    assert logged == pytest.approx([e.scalars["symmetry_variance"] for e in cb.history], rel=1e-6)
    images = acc.Tags()["images"]
    for name in ["generators", "spectrum", "bias", "evolution", "filmstrip"]:
        tag = f"liegg/{name}"
        assert tag in images, (tag, images)
        events = acc.Images(tag)
        assert [e.step for e in events] == steps
        assert events[0].width > 50 and events[0].height > 50
    assert "liegg/log10_relative_spectrum" in acc.Tags()["histograms"]
    layout = custom_scalars_layout(acc)
    # one quantity per chart (each on its own axis); the spectrum lists its tags explicitly
    charts = {tuple(tags) for tags in layout.values()}
    for tag in [
        "symmetry_variance",
        "relative_variance",
        "symmetry_dim",
        "closure",
        "generator_drift",
        "symmetry_bias",
        "subspace_distance",
    ]:
        assert (f"liegg/{tag}",) in charts, tag
    assert tuple(f"liegg/spectrum/{i}" for i in range(4)) in charts
    assert len(charts) == len(layout) == 8
    assert all(tag in scalars for tags in charts for tag in tags)


def test_history_entries_and_report(tmp_path):
    cb = lg.LieGGCallback(lg.ImageAction(), num_samples=24, log_images=False)
    t = trainer(tmp_path, max_epochs=1, logger=False, callbacks=[cb])
    t.fit(TinyImageModel(), TinyDataModule())
    entry = cb.history[-1]
    assert set(entry.to_dict()) >= {
        "step",
        "epoch",
        "stage",
        "seconds",
        "scalars",
        "spectrum",
        "relative_spectrum",
        "generators",
        "bias",
    }
    assert entry.bias is None and "symmetry_bias" not in entry.scalars
    assert len(entry.spectrum) == 4 and entry.spectrum == sorted(entry.spectrum)
    assert cb.samples.shape == (24, 1, 8, 8) and cb.samples.device.type == "cpu"
    assert isinstance(cb.last_report, lg.SymmetryReport)
    # the cached samples are the first 24 validation inputs, and the report is liegg() on them
    val = TinyDataModule()
    val.setup()
    assert torch.equal(cb.samples, val.val.tensors[0][:24])
    ref = lg.liegg(t.lightning_module, cb.samples, lg.ImageAction())
    assert ref.spectrum.tolist() == pytest.approx(entry.spectrum, rel=1e-6)


def test_every_n_train_steps(tmp_path):
    cb = lg.LieGGCallback(lg.ImageAction(), every_n_train_steps=4, num_samples=16, log_images=False)
    t = trainer(tmp_path, max_epochs=2, logger=False, callbacks=[cb])
    t.fit(TinyImageModel(), TinyDataModule())
    assert [e.step for e in cb.history] == [0, 4, 8, 12]


def test_every_n_epochs(tmp_path):
    cb = lg.LieGGCallback(lg.ImageAction(), every_n_epochs=2, num_samples=16, log_images=False)
    t = trainer(tmp_path, max_epochs=4, logger=False, callbacks=[cb])
    t.fit(TinyImageModel(), TinyDataModule())
    assert [(e.step, e.epoch) for e in cb.history] == [(0, 0), (12, 1), (24, 3)]


def test_without_validation_uses_training_batches(tmp_path):
    cb = lg.LieGGCallback(lg.ImageAction(), num_samples=20, log_images=False)
    t = trainer(tmp_path, max_epochs=2, logger=False, callbacks=[cb])
    t.fit(NoValModel(), TinyDataModule(shuffle=False))
    assert [e.step for e in cb.history] == [0, 6, 12]
    data = TinyDataModule()
    data.setup()
    assert torch.equal(cb.samples, data.train.tensors[0][:20])


def test_without_sanity_check(tmp_path):
    cb = lg.LieGGCallback(lg.ImageAction(), num_samples=16, log_images=False)
    t = trainer(tmp_path, max_epochs=1, logger=False, callbacks=[cb], num_sanity_val_steps=0)
    t.fit(TinyImageModel(), TinyDataModule())
    assert [e.step for e in cb.history] == [0, 6]


class _ModeProbe(pl.Callback):
    """Runs after LieGG's hook: what the analysis left for the rest of the validation."""

    def on_validation_epoch_end(self, trainer, pl_module):
        self.modes = {name: m.training for name, m in pl_module.named_modules()}
        self.inference = torch.is_inference_mode_enabled()


def test_validate_under_inference_mode(tmp_path):
    pl_logger = TensorBoardLogger(tmp_path, name="tb")
    cb = lg.LieGGCallback(lg.ImageAction(), reference="rotation2d", num_samples=16)
    probe = _ModeProbe()
    t = trainer(tmp_path, logger=pl_logger, callbacks=[cb, probe], inference_mode=True)
    model = TinyImageModel()
    model.net[0].eval()  # mixed modes: each module's own flag must come back
    before = {name: m.training for name, m in model.named_modules()}
    assert len(set(before.values())) == 2
    t.validate(model, TinyDataModule())
    assert [(e.step, e.stage) for e in cb.history] == [(0, "validate")]
    acc = read_events(pl_logger.log_dir)
    assert scalar_steps(acc, "liegg/symmetry_variance") == [0]
    # right after the analysis: still Lightning's eval mode and inference mode
    assert probe.inference and not any(probe.modes.values()), probe.modes
    # after validate: every module's own mode, as Lightning restores it
    assert {name: m.training for name, m in model.named_modules()} == before


def test_history_export(tmp_path):
    cb = lg.LieGGCallback(
        lg.ImageAction(), reference="rotation2d", num_samples=16, log_images=False
    )
    t = trainer(tmp_path, max_epochs=1, logger=False, callbacks=[cb])
    t.fit(TinyImageModel(), TinyDataModule())
    import csv
    import json

    cb.to_json(tmp_path / "h.json")
    cb.to_csv(tmp_path / "h.csv")
    loaded = json.loads((tmp_path / "h.json").read_text())
    assert [e["step"] for e in loaded] == [0, 6]
    rows = list(csv.DictReader(open(tmp_path / "h.csv")))
    assert [int(r["step"]) for r in rows] == [0, 6]
    assert float(rows[1]["symmetry_bias"]) == pytest.approx(cb.history[1].scalars["symmetry_bias"])


@pytest.mark.parametrize("background", [False, True], ids=["in-place", "process"])
def test_media_budget_keeps_figures_for_the_end(tmp_path, background):
    """A tiny budget: scalars at every evaluation; figures for the first, middle and last."""
    pl_logger = TensorBoardLogger(tmp_path, name="tb")
    cb = lg.LieGGCallback(
        lg.ImageAction(),
        num_samples=16,
        media_budget=1e-6,
        background_rendering=background,
    )
    t = trainer(tmp_path, max_epochs=3, logger=pl_logger, callbacks=[cb])
    t.fit(TinyImageModel(), TinyDataModule())
    acc = read_events(pl_logger.log_dir)
    assert scalar_steps(acc, "liegg/symmetry_variance") == [0, 6, 12, 18]
    # 18 steps: step 0, the first evaluation past step 9, and the last
    assert [e.step for e in acc.Images("liegg/generators")] == [0, 12, 18]
    assert [e.step for e in acc.Images("liegg/evolution")] == [0, 12, 18]


def test_media_budget_validation():
    with pytest.raises(lg.LieGGError, match="media_budget to be a fraction"):
        lg.LieGGCallback(lg.ImageAction(), media_budget=0)
