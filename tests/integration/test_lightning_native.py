"""Lightning-native use: the ``lightning.pytorch`` namespace (fit, validate, DDP, CLI) and the
liegg scalars in ``trainer.callback_metrics`` for ModelCheckpoint, EarlyStopping and the
progress bar."""

from __future__ import annotations

import json

import lightning.pytorch as L
import pytest
import pytorch_lightning as pl
import torch

import lightning_liegg as lg

from .helpers import read_events, scalar_steps, trainer
from .models import TinyDataModule, TinyImageModel
from .models_lightning import LNoValModel, LTinyDataModule, LTinyImageModel


def l_trainer(tmp_path, **kwargs) -> L.Trainer:
    """A tiny ``lightning.pytorch`` Trainer, like ``helpers.trainer``."""
    return trainer(tmp_path, trainer_cls=L.Trainer, **kwargs)


def _callback(**kwargs) -> lg.LieGGCallback:
    options = dict(reference="rotation2d", num_samples=16, media_budget=None)
    options.update(kwargs)
    return lg.LieGGCallback(lg.ImageAction(), **options)


def test_callback_is_a_callback_of_both_namespaces():
    cb = _callback()
    assert isinstance(cb, pl.Callback) and isinstance(cb, L.Callback)


@pytest.mark.parametrize("model_cls", [LTinyImageModel, LNoValModel], ids=["val", "no-val"])
def test_lightning_namespace_fit(tmp_path, model_cls):
    cb = _callback()
    logger = L.loggers.TensorBoardLogger(tmp_path, name="tb", version=0)
    t = l_trainer(tmp_path, logger=logger, callbacks=[cb], enable_checkpointing=False)
    with pytest.warns() as record:  # Lightning's own warnings are fine; no LieGG warning
        t.fit(model_cls(), LTinyDataModule())
    assert not [w for w in record if issubclass(w.category, lg.LieGGWarning)]
    assert [e.step for e in cb.history] == [0, 6, 12]
    acc = read_events(logger.log_dir)
    assert scalar_steps(acc, "liegg/symmetry_bias") == [0, 6, 12]
    assert [e.step for e in acc.Images("liegg/generators")] == [0, 6, 12]
    assert "liegg/log10_relative_spectrum" in acc.Tags()["histograms"]
    value = t.callback_metrics["liegg/symmetry_bias"]
    assert isinstance(value, torch.Tensor)
    assert float(value) == pytest.approx(cb.history[-1].scalars["symmetry_bias"], rel=1e-6)


def test_lightning_namespace_validate(tmp_path):
    cb = _callback()
    logger = L.loggers.TensorBoardLogger(tmp_path, name="tb", version=0)
    t = l_trainer(tmp_path, logger=logger, callbacks=[cb])
    t.validate(LTinyImageModel(), LTinyDataModule(), verbose=False)
    assert [(e.step, e.stage) for e in cb.history] == [(0, "validate")]
    acc = read_events(logger.log_dir)
    assert scalar_steps(acc, "liegg/symmetry_variance") == [0]
    assert [e.step for e in acc.Images("liegg/generators")] == [0]
    assert "liegg/relative_variance" in t.callback_metrics


class _RankMetrics(pl.Callback, L.Callback):
    """Writes this rank's liegg callback metrics to a JSON file at every validation end."""

    def __init__(self, folder):
        self.folder = folder
        self.seen: list[dict[str, float]] = []

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        metrics = {
            k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("liegg/")
        }
        self.seen.append(metrics)
        path = self.folder / f"rank{trainer.global_rank}.json"
        path.write_text(json.dumps(self.seen))


@pytest.mark.slow
def test_lightning_namespace_ddp_same_metrics_on_every_rank(tmp_path):
    torch.manual_seed(3)
    cb = _callback(num_samples=48)
    logger = L.loggers.TensorBoardLogger(tmp_path, name="tb", version=0)
    t = l_trainer(
        tmp_path,
        max_epochs=1,
        logger=logger,
        callbacks=[_RankMetrics(tmp_path), cb],
        enable_checkpointing=False,
        strategy="ddp_spawn",
        devices=2,
    )
    t.fit(LTinyImageModel(), LTinyDataModule())
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert len(ranks[0]) == 1 and ranks[0][0]["liegg/symmetry_bias"] >= 0
    assert "liegg/spectrum/3" in ranks[0][0]
    for metrics in (r[0] for r in ranks):
        del metrics["liegg/seconds"]  # this rank's own wall time
    assert ranks[0] == ranks[1]  # every rank holds the same (all-reduced) values
    acc = read_events(logger.log_dir)
    assert scalar_steps(acc, "liegg/symmetry_variance") == [0, 3]
    (last,) = [e.value for e in acc.Scalars("liegg/symmetry_bias") if e.step == 3]
    assert last == pytest.approx(ranks[0][0]["liegg/symmetry_bias"], rel=1e-6)


CONFIG = """
trainer:
  max_epochs: 2
  logger:
    class_path: lightning.pytorch.loggers.TensorBoardLogger
    init_args:
      save_dir: {root}
      name: cli
  enable_progress_bar: false
  enable_checkpointing: false
  callbacks:
    - class_path: lightning_liegg.LieGGCallback
      init_args:
        action:
          class_path: lightning_liegg.ImageAction
        reference: rotation2d
        num_samples: 16
model:
  class_path: tests.integration.models_lightning.LTinyImageModel
  init_args:
    hidden: 12
data:
  class_path: tests.integration.models_lightning.LTinyDataModule
"""


def test_lightning_namespace_cli(tmp_path):
    from lightning.pytorch.cli import LightningCLI

    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(root=tmp_path))
    cli = LightningCLI(
        args=["fit", "--config", str(config)], save_config_kwargs={"overwrite": True}
    )
    (cb,) = [c for c in cli.trainer.callbacks if isinstance(c, lg.LieGGCallback)]
    assert [e.step for e in cb.history] == [0, 6, 12]
    acc = read_events(cli.trainer.logger.log_dir)
    assert scalar_steps(acc, "liegg/symmetry_bias") == [0, 6, 12]


# -- monitorable scalars ---------------------------------------------------------------------


@pytest.mark.parametrize("liegg_first", [True, False], ids=["liegg-first", "liegg-last"])
def test_model_checkpoint_keeps_lowest_bias(tmp_path, liegg_first):
    cb = _callback()
    ckpt = pl.callbacks.ModelCheckpoint(
        dirpath=tmp_path / "ckpt", monitor="liegg/symmetry_bias", mode="min", save_top_k=1
    )
    stop = pl.callbacks.EarlyStopping(  # checks at on_validation_end, in the user's order
        monitor="liegg/relative_variance", mode="min", patience=10, check_on_train_epoch_end=False
    )
    callbacks = [cb, stop, ckpt] if liegg_first else [stop, ckpt, cb]
    t = pl.Trainer(
        default_root_dir=str(tmp_path),
        max_epochs=4,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        accelerator="cpu",
        callbacks=callbacks,
    )
    t.fit(TinyImageModel(lr=0.2), TinyDataModule())
    fit_evals = {e.step: e.scalars["symmetry_bias"] for e in cb.history if e.step > 0}
    assert len(fit_evals) == 4
    best_step = min(fit_evals, key=fit_evals.get)
    assert float(ckpt.best_model_score) == pytest.approx(fit_evals[best_step], rel=1e-6)
    saved = torch.load(ckpt.best_model_path, weights_only=False)
    assert saved["global_step"] == best_step
    assert len(list((tmp_path / "ckpt").glob("*.ckpt"))) == 1


@pytest.mark.parametrize("liegg_first", [True, False], ids=["liegg-first", "liegg-last"])
def test_early_stopping_on_a_liegg_metric(tmp_path, liegg_first):
    cb = _callback()
    # bias is always below 100: the first check stops training (after epoch 0 of 5)
    stop = L.callbacks.EarlyStopping(
        monitor="liegg/symmetry_bias",
        mode="min",
        stopping_threshold=100.0,
        check_on_train_epoch_end=False,
    )
    callbacks = [cb, stop] if liegg_first else [stop, cb]
    t = l_trainer(tmp_path, max_epochs=5, logger=False, callbacks=callbacks)
    t.fit(LTinyImageModel(), LTinyDataModule())
    assert t.should_stop and stop.stopped_epoch == 0
    assert [e.step for e in cb.history] == [0, 6]


def test_prog_bar_shows_relative_variance_and_bias(tmp_path):
    t = l_trainer(tmp_path, max_epochs=1, logger=False, callbacks=[_callback(prog_bar=True)])
    t.fit(LTinyImageModel(), LTinyDataModule())
    shown = t.progress_bar_metrics
    assert {"liegg/relative_variance", "liegg/symmetry_bias"} <= set(shown)
    assert "liegg/spectrum/0" not in shown
    t = l_trainer(tmp_path, max_epochs=1, logger=False, callbacks=[_callback()])
    t.fit(LTinyImageModel(), LTinyDataModule())
    assert not [k for k in t.progress_bar_metrics if k.startswith("liegg/")]


class _RegressorBody:
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(10, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)
        )

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


class _LRegressor(_RegressorBody, L.LightningModule):
    pass


class _PLRegressor(_RegressorBody, pl.LightningModule):
    pass


@pytest.mark.parametrize("namespace", [pl, L], ids=["pytorch_lightning", "lightning.pytorch"])
def test_package_datamodules_work_in_both_namespaces(tmp_path, namespace):
    data = lg.datasets.O5RegressionDataModule(n_train=64, n_val=32, n_test=8, batch_size=32)
    assert isinstance(data, namespace.LightningDataModule)
    cb = lg.LieGGCallback(
        lg.VectorAction(dim=5, channels=2), reference="so(5)", num_samples=32, log_images=False
    )
    t = namespace.Trainer(
        default_root_dir=str(tmp_path),
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        callbacks=[cb],
    )
    t.fit(_LRegressor() if namespace is L else _PLRegressor(), data)
    assert [e.step for e in cb.history] == [0, 2] and cb.history[-1].num_samples == 32
