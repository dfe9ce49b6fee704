"""The callback's logger side: which logger gets what, under ``liegg/``.

Scalars go to every logger; TensorBoard also gets histograms, a custom-scalars page and the
figures; loggers with ``log_image`` (W&B) get the figures. Loggers that can show none are
named in one warning at ``setup``, as Lightning's ``DeviceStatsMonitor`` checks its logger.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from pytorch_lightning.loggers import Logger

from ._history import Evaluation
from ._lightning import classes
from .functional.report import SymmetryReport

__all__ = ["PREFIX", "LoggerDispatch"]

PREFIX = "liegg/"


def scalar_metrics(record: Evaluation, prefix: str = PREFIX) -> dict[str, float]:
    """``{"liegg/<scalar>": value}`` and ``liegg/spectrum/<i>`` of a record."""
    metrics = {prefix + k: float(v) for k, v in record.scalars.items()}
    for name, data in (record.layers or {}).items():  # liegg/layers/<name>/<scalar>
        for key, value in data.get("scalars", {}).items():
            metrics[f"{prefix}layers/{name}/{key}"] = float(value)
    for i, value in enumerate(record.relative_spectrum):
        metrics[f"{prefix}spectrum/{i}"] = float(value)
    return metrics


def publish_metrics(trainer: Any, record: Evaluation, prog_bar: bool, prefix: str = PREFIX) -> None:
    """Put a record's scalars in ``trainer.callback_metrics`` (as tensors, like Lightning's).

    There ``ModelCheckpoint`` and ``EarlyStopping`` can monitor them. With ``prog_bar``, the
    relative variance (and the bias, with a reference) also go to the progress bar.
    """
    metrics = scalar_metrics(record, prefix)
    trainer.callback_metrics.update({k: torch.tensor(v) for k, v in metrics.items()})
    if prog_bar:
        shown = [prefix + "relative_variance", prefix + "symmetry_bias"]
        trainer.progress_bar_metrics.update({k: metrics[k] for k in shown if k in metrics})


def custom_scalars_layout(reference: bool, prefix: str = PREFIX) -> dict[str, dict[str, list]]:
    """A TensorBoard custom-scalars page with every liegg curve (reference ones if given)."""
    charts: dict[str, list] = {
        "variance": ["Multiline", [prefix + "symmetry_variance", prefix + "relative_variance"]],
        "relative spectrum": ["Multiline", [prefix + "spectrum/.*"]],
        "symmetry dimension": ["Multiline", [prefix + "symmetry_dim", prefix + "closure"]],
        "generator drift": ["Multiline", [prefix + "generator_drift"]],
    }
    if reference:
        charts["reference"] = [
            "Multiline",
            [prefix + "symmetry_bias", prefix + "subspace_distance"],
        ]
    return {"liegg": charts}


class LoggerDispatch:
    """Send one evaluation's scalars, histograms and figures to the right loggers.

    Args:
        reference: whether a reference algebra is given (its charts on the custom page).
        prefix: the tag prefix.
    """

    def __init__(self, reference: bool, prefix: str = PREFIX) -> None:
        self.reference = reference
        self.prefix = prefix
        self._layout_done: set[int] = set()

    @staticmethod
    def media_loggers(loggers: Sequence[Logger]) -> list[Logger]:
        """The loggers that can show figures: TensorBoard and any with ``log_image``."""
        return [
            lg
            for lg in loggers
            if isinstance(lg, classes("loggers.TensorBoardLogger")) or hasattr(lg, "log_image")
        ]

    def check(self, loggers: Sequence[Logger], warn: Callable[[str], None]) -> None:
        """Warn once about loggers that get the scalars only (CSV is expected to)."""
        media = self.media_loggers(loggers)
        blind = [
            type(lg).__name__
            for lg in loggers
            if lg not in media and not isinstance(lg, classes("loggers.CSVLogger"))
        ]
        if blind:
            warn(
                f"{', '.join(blind)} cannot show LieGG figures; it gets the scalars only "
                "(TensorBoardLogger and loggers with log_image, such as WandbLogger, get images)."
            )

    def log_scalars(self, loggers: Sequence[Logger], record: Evaluation) -> None:
        """Every scalar of ``record``, at its step, to every logger."""
        metrics = scalar_metrics(record, self.prefix)
        for logger in loggers:
            logger.log_metrics(metrics, step=record.step)

    def log_tensorboard(self, loggers: Sequence[Logger], report: SymmetryReport, step: int) -> None:
        """The custom-scalars page (once per logger) and the histograms, to TensorBoard."""
        for logger in loggers:
            if not isinstance(logger, classes("loggers.TensorBoardLogger")):
                continue
            writer = logger.experiment
            if id(logger) not in self._layout_done:
                writer.add_custom_scalars(custom_scalars_layout(self.reference, self.prefix))
                self._layout_done.add(id(logger))
            rel = report.relative_spectrum.clamp_min(1e-16).log10()
            writer.add_histogram(
                self.prefix + "log10_relative_spectrum", rel.numpy(), global_step=step
            )
            writer.add_histogram(
                self.prefix + "generator_entries",
                report.generators[0].flatten().numpy(),
                global_step=step,
            )
            writer.flush()

    def log_images(
        self, loggers: Sequence[Logger], step: int, images: Mapping[str, np.ndarray]
    ) -> None:
        """Rendered figures ``{name: (H, W, 3) uint8}`` at ``step`` to the media loggers."""
        for logger in self.media_loggers(loggers):
            if isinstance(logger, classes("loggers.TensorBoardLogger")):
                writer = logger.experiment
                for name, image in images.items():
                    writer.add_image(self.prefix + name, image, global_step=step, dataformats="HWC")
                writer.flush()
            else:
                for name, image in images.items():
                    logger.log_image(key=self.prefix + name, images=[image], step=step)  # type: ignore[attr-defined]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_layout_done"] = set()
        return state
