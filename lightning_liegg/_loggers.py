"""The callback's logger side: which logger gets what, under ``liegg/``.

Scalars go to every logger; TensorBoard also gets histograms, a custom-scalars page and the
figures; loggers with ``log_image`` (W&B) get the figures. Loggers that can show none are
named in one warning at ``setup``, as Lightning's ``DeviceStatsMonitor`` checks its logger.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from pytorch_lightning.loggers import Logger

from ._lightning import classes
from .functional.report import SymmetryReport
from .history import Evaluation

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


def publish_metrics(
    metrics: dict[str, Any] | None,
    progress_bar: dict[str, Any] | None,
    record: Evaluation,
    prog_bar: bool,
    prefix: str = PREFIX,
) -> None:
    """Put a record's scalars in ``metrics`` (``trainer.callback_metrics``), as tensors.

    There ``ModelCheckpoint`` and ``EarlyStopping`` can monitor them. With ``prog_bar``, the
    relative variance (and the bias, with a reference) also go to ``progress_bar``
    (``trainer.progress_bar_metrics``). None: nowhere (replay has no monitors).
    """
    values = scalar_metrics(record, prefix)
    if metrics is not None:
        metrics.update({k: torch.tensor(v) for k, v in values.items()})
    if prog_bar and progress_bar is not None:
        shown = [prefix + "relative_variance", prefix + "symmetry_bias"]
        progress_bar.update({k: values[k] for k in shown if k in values})


#: custom-scalars charts: (title, tag) with one quantity per chart, so each has its own axis
SINGLE_CHARTS = (
    ("symmetry variance (most symmetric generator; log scale helps)", "symmetry_variance"),
    ("relative variance (most symmetric / largest; log scale helps)", "relative_variance"),
    ("symmetry dimension (generators below the spectrum's gap)", "symmetry_dim"),
    ("closure residual (0: the symmetric generators form an algebra)", "closure"),
    ("generator drift (radians since the previous evaluation)", "generator_drift"),
)
REFERENCE_CHARTS = (
    ("symmetry bias (0: inside the reference algebra, 1: orthogonal)", "symmetry_bias"),
    ("subspace distance to the reference algebra (radians)", "subspace_distance"),
)
SPECTRUM_CHART = "relative spectrum (one line per generator: spectrum/i, i = 0 most symmetric)"


def custom_scalars_layout(
    reference: bool, prefix: str = PREFIX, dim: int | None = None
) -> dict[str, dict[str, list]]:
    """A TensorBoard custom-scalars page: one quantity per chart, titles that say what it is.

    Args:
        reference: add the reference algebra's charts (bias, subspace distance).
        prefix: the tag prefix.
        dim: the number of generator coordinates; the spectrum chart then lists its tags
            ``spectrum/0`` .. ``spectrum/<dim-1>`` explicitly (so its legend names each),
            else by pattern.
    """
    charts: dict[str, list] = {title: ["Multiline", [prefix + tag]] for title, tag in SINGLE_CHARTS}
    spectrum = [f"{prefix}spectrum/{i}" for i in range(dim)] if dim else [prefix + "spectrum/.*"]
    charts[SPECTRUM_CHART] = ["Multiline", spectrum]
    if reference:
        charts.update({title: ["Multiline", [prefix + tag]] for title, tag in REFERENCE_CHARTS})
    return {"liegg": charts}


def add_png(writer: Any, tag: str, image: np.ndarray, step: int) -> None:
    """Write an ``(H, W, 3)`` uint8 image to a TensorBoard ``SummaryWriter`` as a PNG.

    Encoded once with fast compression (``SummaryWriter.add_image`` converts the array to
    floats and back and compresses harder: about 3x the time for these flat-coloured
    figures). Falls back to ``add_image`` if the writer has no file writer to add to.
    """
    file_writer = getattr(writer, "_get_file_writer", None)
    if file_writer is None:
        writer.add_image(tag, image, global_step=step, dataformats="HWC")
        return
    import io

    from PIL import Image
    from tensorboard.compat.proto.summary_pb2 import Summary

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(
        buffer, format="PNG", compress_level=1
    )
    height, width = image.shape[:2]
    encoded = Summary.Image(
        height=height, width=width, colorspace=3, encoded_image_string=buffer.getvalue()
    )
    file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=encoded)]), step)


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
                dim = int(report.relative_spectrum.numel())
                writer.add_custom_scalars(custom_scalars_layout(self.reference, self.prefix, dim))
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

    @staticmethod
    def mark_restart(loggers: Sequence[Logger], step: int) -> None:
        """Tell TensorBoard that a resumed run continues from ``step``.

        Writes a ``SessionLog.START`` event at ``step`` (as ``SummaryWriter(purge_step=...)``
        does), so TensorBoard discards what an earlier, killed process wrote at ``step`` or
        later to the same log directory: the resumed run writes those steps again, and each
        is shown once, with the values the history holds.
        """
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog

        for logger in loggers:
            if not isinstance(logger, classes("loggers.TensorBoardLogger")):
                continue
            file_writer = getattr(logger.experiment, "_get_file_writer", None)
            if file_writer is not None:
                start = Event(step=step, session_log=SessionLog(status=SessionLog.START))
                file_writer().add_event(start)

    def log_images(
        self, loggers: Sequence[Logger], step: int, images: Mapping[str, np.ndarray]
    ) -> None:
        """Rendered figures ``{name: (H, W, 3) uint8}`` at ``step`` to the media loggers."""
        for logger in self.media_loggers(loggers):
            if isinstance(logger, classes("loggers.TensorBoardLogger")):
                writer = logger.experiment
                for name, image in images.items():
                    add_png(writer, self.prefix + name, image, step)
                writer.flush()
            else:
                for name, image in images.items():
                    logger.log_image(key=self.prefix + name, images=[image], step=step)  # type: ignore[attr-defined]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_layout_done"] = set()
        return state
