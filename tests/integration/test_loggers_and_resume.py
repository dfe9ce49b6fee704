"""Other loggers, no logger, checkpoints and LightningCLI."""

import csv
import warnings
from pathlib import Path

import pytest
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger

import lightning_liegg as lg

from .helpers import read_events, scalar_steps, trainer
from .models import TinyDataModule, TinyImageModel


class DictLogger(Logger):
    """A real (minimal) logger that can only take scalars."""

    def __init__(self):
        super().__init__()
        self.metrics: list[tuple[int, dict]] = []

    @property
    def name(self):
        return "dict"

    @property
    def version(self):
        return 0

    def log_hyperparams(self, params, *args, **kwargs):
        pass

    def log_metrics(self, metrics, step=None):
        self.metrics.append((step, dict(metrics)))


class ImageLogger(DictLogger):
    """A logger with a W&B-style log_image(key, images, step)."""

    def __init__(self):
        super().__init__()
        self.images: list[tuple[str, int, tuple]] = []

    def log_image(self, key, images, step=None, **kwargs):
        self.images.append((key, step, tuple(images[0].shape)))


def _liegg_warnings(caught):
    return [str(w.message) for w in caught if issubclass(w.category, lg.LieGGWarning)]


def test_csv_logger_gets_scalars_without_media_warning(tmp_path):
    cb = lg.LieGGCallback(lg.ImageAction(), reference="rotation2d", num_samples=16)
    csv_logger = CSVLogger(tmp_path, name="csv")
    t = trainer(tmp_path, max_epochs=2, logger=csv_logger, callbacks=[cb])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t.fit(TinyImageModel(), TinyDataModule())
    assert _liegg_warnings(caught) == []
    rows = list(csv.DictReader(open(Path(csv_logger.log_dir) / "metrics.csv")))
    liegg_rows = [r for r in rows if r.get("liegg/symmetry_variance")]
    assert [int(r["step"]) for r in liegg_rows] == [0, 6, 12]
    for key in [
        "liegg/symmetry_bias",
        "liegg/subspace_distance",
        "liegg/spectrum/3",
        "liegg/symmetry_dim",
        "liegg/seconds",
    ]:
        assert all(r[key] != "" for r in liegg_rows), key


def test_scalar_only_logger_warns_once_about_media(tmp_path):
    cb = lg.LieGGCallback(lg.ImageAction(), num_samples=16)
    logger = DictLogger()
    t = trainer(tmp_path, max_epochs=2, logger=logger, callbacks=[cb])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t.fit(TinyImageModel(), TinyDataModule())
    media = [m for m in _liegg_warnings(caught) if "cannot show LieGG figures" in m]
    assert len(media) == 1 and "DictLogger" in media[0]
    steps = [step for step, metrics in logger.metrics if "liegg/symmetry_variance" in metrics]
    assert steps == [0, 6, 12]


@pytest.mark.parametrize("background", [True, False], ids=["process", "in-place"])
def test_log_image_logger_gets_images(tmp_path, background):
    cb = lg.LieGGCallback(
        lg.ImageAction(),
        reference="rotation2d",
        num_samples=16,
        background_rendering=background,
        media_budget=None,
    )
    logger = ImageLogger()
    t = trainer(tmp_path, max_epochs=1, logger=logger, callbacks=[cb])
    t.fit(TinyImageModel(), TinyDataModule())
    keys = {(key, step) for key, step, _ in logger.images}
    for name in ["generators", "spectrum", "bias", "evolution", "filmstrip"]:
        assert (f"liegg/{name}", 0) in keys and (f"liegg/{name}", 6) in keys, name
    assert all(len(shape) == 3 and shape[2] == 3 for _, _, shape in logger.images)


def test_two_loggers_get_the_same_scalars(tmp_path):
    cb = lg.LieGGCallback(lg.ImageAction(), num_samples=16)
    tb, dl = TensorBoardLogger(tmp_path, name="tb"), DictLogger()
    t = trainer(tmp_path, max_epochs=1, logger=[tb, dl], callbacks=[cb])
    t.fit(TinyImageModel(), TinyDataModule())
    acc = read_events(tb.log_dir)
    assert scalar_steps(acc, "liegg/symmetry_variance") == [0, 6]
    dict_values = [
        m["liegg/symmetry_variance"] for _, m in dl.metrics if "liegg/symmetry_variance" in m
    ]
    assert [e.value for e in acc.Scalars("liegg/symmetry_variance")] == pytest.approx(
        dict_values, rel=1e-6
    )


def test_no_logger_keeps_history(tmp_path):
    cb = lg.LieGGCallback(lg.ImageAction(), num_samples=16)
    t = trainer(tmp_path, max_epochs=1, logger=False, callbacks=[cb])
    t.fit(TinyImageModel(), TinyDataModule())
    assert [e.step for e in cb.history] == [0, 6]


def test_resume_continues_history(tmp_path):
    ckpt_dir = tmp_path / "ckpt"
    cb = lg.LieGGCallback(lg.ImageAction(), reference="rotation2d", num_samples=16)
    t = trainer(
        tmp_path,
        max_epochs=2,
        logger=False,
        callbacks=[cb, ModelCheckpoint(dirpath=ckpt_dir, save_last=True)],
    )
    t.fit(TinyImageModel(), TinyDataModule())
    first = [e.step for e in cb.history]
    assert first == [0, 6, 12]
    saved = torch.load(ckpt_dir / "last.ckpt", weights_only=False)
    assert [e["step"] for e in saved["callbacks"][cb.state_key]["history"]] == first

    resumed = lg.LieGGCallback(
        lg.ImageAction(), reference="rotation2d", num_samples=16, media_budget=None
    )
    pl_logger = TensorBoardLogger(tmp_path, name="resumed")
    t2 = trainer(tmp_path, max_epochs=4, logger=pl_logger, callbacks=[resumed])
    t2.fit(TinyImageModel(), TinyDataModule(), ckpt_path=str(ckpt_dir / "last.ckpt"))
    assert [e.step for e in resumed.history] == [0, 6, 12, 18, 24]
    assert resumed.history[:3] == cb.history
    # the resumed run's first new evaluation measures drift against the restored history
    assert "generator_drift" in resumed.history[3].scalars
    acc = read_events(pl_logger.log_dir)
    assert scalar_steps(acc, "liegg/symmetry_variance") == [18, 24]
    # the evolution figure covers the whole history, restored part included
    assert [e.step for e in acc.Images("liegg/evolution")] == [18, 24]


CONFIG = """
trainer:
  max_epochs: 2
  logger:
    class_path: pytorch_lightning.loggers.TensorBoardLogger
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
          init_args:
            affine: false
        reference: rotation2d
        output_transform: lightning_liegg.l2_normalize
        num_samples: 16
        every_n_epochs: 1
model:
  class_path: tests.integration.models.TinyImageModel
  init_args:
    hidden: 12
data:
  class_path: tests.integration.models.TinyDataModule
  init_args:
    batch_size: 16
"""


@pytest.mark.parametrize(
    "reference", ["rotation2d", "[[[0.0, -1.0], [1.0, 0.0]]]"], ids=["name", "nested-lists"]
)
def test_lightning_cli_yaml(tmp_path, reference):
    from pytorch_lightning.cli import LightningCLI

    config = tmp_path / "config.yaml"
    config.write_text(
        CONFIG.format(root=tmp_path).replace("reference: rotation2d", f"reference: {reference}")
    )
    cli = LightningCLI(
        args=["fit", "--config", str(config)], save_config_kwargs={"overwrite": True}
    )
    (cb,) = [c for c in cli.trainer.callbacks if isinstance(c, lg.LieGGCallback)]
    assert isinstance(cb.action, lg.ImageAction) and cb.output_transform is lg.l2_normalize
    assert cb.reference.shape == (1, 2, 2)
    assert [e.step for e in cb.history] == [0, 6, 12]
    acc = read_events(cli.trainer.logger.log_dir)
    assert scalar_steps(acc, "liegg/symmetry_bias") == [0, 6, 12]
