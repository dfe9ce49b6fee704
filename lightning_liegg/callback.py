"""LieGGCallback: watch a network's learned symmetries evolve during training.

The Lightning glue only: the math is in :mod:`lightning_liegg.functional`, the figures in
:mod:`lightning_liegg.plotting`. Every rank analyses its own share of a fixed sample set, the
Gram matrix and sample count are summed across ranks (every rank joins the same single
collective), and rank zero renders and logs.
"""

from __future__ import annotations

import csv
import json
import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger
from pytorch_lightning.utilities.model_helpers import is_overridden
from torch import Tensor

from ._media import MediaRenderer
from .exceptions import LieGGError, LieGGWarning
from .functional._checks import describe
from .functional.actions import Action, ImageAction
from .functional.analysis import check_reference, gram_update
from .functional.polarization import check_options, polarization_rows
from .functional.report import SymmetryReport, principal_angles

__all__ = ["LieGGCallback", "LieGGWarning", "default_input_fn"]

PREFIX = "liegg/"
_DICT_KEYS = ("x", "input", "inputs", "image", "images")


def default_input_fn(batch: Any) -> Tensor:
    """The model input in a batch.

    The batch itself if a tensor, ``batch[0]`` for tuples and lists, for dicts the ``"x"``,
    ``"input"``, ``"inputs"``, ``"image"`` or ``"images"`` entry, else the first tensor value.

    Raises:
        LieGGError: when no tensor can be found.
    """
    if isinstance(batch, Tensor):
        return batch
    if isinstance(batch, (tuple, list)) and batch:
        return default_input_fn(batch[0])
    if isinstance(batch, Mapping):
        for key in _DICT_KEYS:
            if key in batch and isinstance(batch[key], Tensor):
                return batch[key]
        for value in batch.values():
            if isinstance(value, Tensor):
                return value
    raise LieGGError(
        "Expected a batch that is a tensor, a tuple/list starting with the input tensor, or a "
        f"dict with an 'x'/'input'/'image' tensor, but got {describe(batch)}. Pass input_fn."
    )


def _first_loader(loaders: Any) -> Any:
    if loaders is None:
        return None
    if isinstance(loaders, Mapping):
        return next(iter(loaders.values()), None)
    if isinstance(loaders, (list, tuple)):
        return loaders[0] if loaders else None
    return loaders


class LieGGCallback(Callback):
    """Analyse the model's learned symmetries with LieGG and log them while it trains.

    A fixed set of inputs (the first ``num_samples`` of the validation data, or of the training
    data when there is no validation loop) is cached on CPU and analysed at every evaluation,
    so curves compare like with like. Evaluations happen once when fit starts (step 0, the
    untrained baseline), after validation every ``every_n_epochs`` epochs (or every
    ``every_n_train_steps`` training steps), and at the end of ``trainer.validate()``. Never
    during the sanity check.

    Logged under ``liegg/`` at ``trainer.global_step``, to every logger: ``symmetry_variance``,
    ``relative_variance``, ``symmetry_dim``, ``closure``, ``spectrum/<i>`` (relative spectrum),
    ``generator_drift`` (principal angle, radians, between this and the previous evaluation's
    most symmetric generator), ``seconds`` and, with a reference, ``symmetry_bias`` and
    ``subspace_distance``. TensorBoard also gets generator heatmaps, the spectrum, bias bars,
    a filmstrip (images), the spectrum's evolution, histograms and a custom-scalars page;
    loggers with ``log_image`` (W&B) get the images.

    Args:
        action: how generators act on the inputs (``ImageAction()``, ``VectorAction(...)``).
        every_n_epochs: evaluate after validation every this many epochs; 1 when neither
            trigger is given. Mutually exclusive with ``every_n_train_steps``.
        every_n_train_steps: evaluate every this many optimizer steps instead.
        num_samples: size of the cached sample set (per process under DDP).
        reduction: ``"none"`` (one row per output) or ``"sum"`` (the paper's behaviour).
        output_transform: applied to the model outputs first, e.g.
            :func:`lightning_liegg.l2_normalize`.
        reference: a ``(k, p, q)`` algebra (a tensor, or nested lists in a YAML file) or its
            name (``"so(3)"``, ``"rotation2d"``) for the symmetry bias and subspace distance.
        input_fn: maps a batch to the model input; :func:`default_input_fn` by default.
        log_images: log figures (rank zero only).
        num_generators: how many of the most symmetric generators the figures show.
        strict: raise on a failed analysis instead of warning and skipping it.
        batch_size: samples per differentiation chunk (memory bound).
        on_train_start: evaluate the untrained model at the start of fit (step 0).
        filmstrip_samples: images shown in the filmstrip.
        mode: ``"auto"``, ``"forward"`` or ``"reverse"`` differentiation.
        media_budget: the share of training time the figures may cost (drawing a set takes
            about a second). An evaluation whose figures would exceed it logs scalars only,
            and the figures of the last evaluation are always drawn when fit ends; in long
            runs that is every evaluation. ``None``: figures at every evaluation.
        background_rendering: draw the figures in a worker process, off the training path
            (logged at their own step when ready, at the latest when fit or validate ends).
            Worth it where CPU cores sit idle (GPU training); drawing still costs CPU time,
            which counts against ``media_budget``.

    Attributes:
        history: one dict per evaluation (``step``, ``epoch``, ``stage``, ``seconds``,
            ``scalars``, ``spectrum``, ``relative_spectrum``, ``generators``, ``bias``); saved in
            checkpoints, so a resumed run continues its curves.

    Example:
        >>> import lightning_liegg as lg
        >>> cb = lg.LieGGCallback(lg.ImageAction(), reference="rotation2d")
        >>> # trainer = pytorch_lightning.Trainer(callbacks=[cb]); trainer.fit(model, data)
    """

    def __init__(
        self,
        action: Action,
        every_n_epochs: int | None = None,
        every_n_train_steps: int | None = None,
        num_samples: int = 512,
        reduction: str = "none",
        output_transform: Callable[[Tensor], Tensor] | None = None,
        reference: Tensor | str | list | None = None,
        input_fn: Callable[[Any], Tensor] | None = None,
        log_images: bool = True,
        num_generators: int = 4,
        strict: bool = False,
        batch_size: int = 256,
        on_train_start: bool = True,
        filmstrip_samples: int = 4,
        mode: str = "auto",
        media_budget: float | None = 0.05,
        background_rendering: bool = False,
    ) -> None:
        super().__init__()
        check_options(action, reduction, mode)
        if every_n_epochs is not None and every_n_train_steps is not None:
            raise LieGGError(
                "Expected one trigger, every_n_epochs or every_n_train_steps, but got both "
                f"(every_n_epochs={every_n_epochs}, every_n_train_steps={every_n_train_steps})."
            )
        for name, value in (
            ("every_n_epochs", every_n_epochs),
            ("every_n_train_steps", every_n_train_steps),
        ):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise LieGGError(
                    f"Expected {name} to be a positive integer or None, but got {value!r}."
                )
        for name, value in (
            ("num_samples", num_samples),
            ("num_generators", num_generators),
            ("batch_size", batch_size),
            ("filmstrip_samples", filmstrip_samples),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LieGGError(
                    f"Expected {name} to be a positive integer (>= 1), but got {value!r}."
                )
        for name, fn in (("output_transform", output_transform), ("input_fn", input_fn)):
            if fn is not None and not callable(fn):
                raise LieGGError(f"Expected {name} to be callable or None, but got {describe(fn)}.")
        self.action = action
        self.every_n_train_steps = every_n_train_steps
        if every_n_epochs is None and every_n_train_steps is None:
            every_n_epochs = 1
        self.every_n_epochs = every_n_epochs
        self.num_samples = num_samples
        self.reduction = reduction
        self.output_transform = output_transform
        self.reference = check_reference(reference, action)
        self.input_fn = input_fn if input_fn is not None else default_input_fn
        self.log_images = log_images
        self.num_generators = num_generators
        self.strict = strict
        self.batch_size = batch_size
        self.evaluate_on_train_start = on_train_start
        self.filmstrip_samples = filmstrip_samples
        self.mode = mode
        self.background_rendering = background_rendering
        if media_budget is not None and (
            isinstance(media_budget, bool)
            or not isinstance(media_budget, (int, float))
            or not 0 < media_budget <= 1
        ):
            raise LieGGError(
                "Expected media_budget to be a fraction in (0, 1] or None, but got "
                f"{media_budget!r}."
            )
        self.media_budget = media_budget
        self._fit_start: float | None = None
        self._deferred: tuple[int, SymmetryReport] | None = None

        self.history: list[dict[str, Any]] = []
        self.last_report: SymmetryReport | None = None
        self._samples: Tensor | None = None
        self._warned: set[str] = set()
        self._layout_done = False
        self._renderer: MediaRenderer | None = None

    def __getstate__(self) -> dict[str, Any]:
        # ddp_spawn pickles callbacks into its workers: a process pool does not travel.
        state = dict(self.__dict__)
        state["_renderer"] = None
        return state

    # -- Lightning plumbing -----------------------------------------------------------------
    @property
    def state_key(self) -> str:
        """Checkpoint key: class name, action and triggers (several callbacks may coexist)."""
        return self._generate_state_key(
            action=repr(self.action),
            every_n_epochs=self.every_n_epochs,
            every_n_train_steps=self.every_n_train_steps,
        )

    def state_dict(self) -> dict[str, Any]:
        """The evaluation history (plain lists and floats)."""
        return {"history": [dict(entry) for entry in self.history]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the history so that a resumed run continues its curves."""
        self.history = [dict(entry) for entry in state_dict.get("history", [])]

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Cache the samples and evaluate the untrained (or resumed) model."""
        self._start_renderer(trainer)
        self._fit_start = time.perf_counter()
        self._deferred = None
        self._ensure_samples(trainer, pl_module)
        if self.evaluate_on_train_start:
            self._evaluate(trainer, pl_module, stage="fit")

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Under ``trainer.validate()``, cache samples from its dataloader if not done yet."""
        if not trainer.sanity_checking and trainer.state.fn == "validate":
            self._ensure_samples(trainer, pl_module)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Evaluate after validation (every ``every_n_epochs``) and at the end of validate()."""
        if trainer.sanity_checking:
            return
        if trainer.state.fn == "validate":
            self._evaluate(trainer, pl_module, stage="validate")
            self._flush_media(trainer, wait=True)
        elif trainer.state.fn == "fit" and self._epoch_due(trainer):
            self._evaluate(trainer, pl_module, stage="fit")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Without a validation loop, evaluate at the end of training epochs instead."""
        if not self._has_validation(trainer, pl_module) and self._epoch_due(trainer):
            self._evaluate(trainer, pl_module, stage="fit")

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Evaluate every ``every_n_train_steps`` optimizer steps."""
        n = self.every_n_train_steps
        if n is not None and trainer.global_step > 0 and trainer.global_step % n == 0:
            self._evaluate(trainer, pl_module, stage="fit")
        if self._renderer is not None and self._renderer.pending:
            self._flush_media(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Draw the last evaluation's figures if the budget held them back; log all pending."""
        if self._deferred is not None and self._renderer is not None:
            step, report = self._deferred
            self._renderer.submit(step, self._media_payload(report))
            self._deferred = None
        self._fit_start = None
        self._flush_media(trainer, wait=True)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Log what is left and stop the rendering process at the end of fit/validate."""
        try:
            self._flush_media(trainer, wait=True)
        finally:
            if self._renderer is not None:
                self._renderer.close()
                self._renderer = None

    # -- when -------------------------------------------------------------------------------
    def _epoch_due(self, trainer: pl.Trainer) -> bool:
        return (
            self.every_n_epochs is not None
            and (trainer.current_epoch + 1) % self.every_n_epochs == 0
        )

    @staticmethod
    def _has_validation(trainer: pl.Trainer, pl_module: pl.LightningModule) -> bool:
        return trainer.limit_val_batches != 0 and is_overridden("validation_step", pl_module)

    # -- samples ----------------------------------------------------------------------------
    def _loader(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> Iterable | None:
        if trainer.state.fn == "fit" and self._has_validation(trainer, pl_module):
            if trainer.val_dataloaders is None:  # no sanity check ran: set the loader up now
                trainer.fit_loop.epoch_loop.val_loop.setup_data()
            loader = _first_loader(trainer.val_dataloaders)
            if loader is not None:
                return loader
        if trainer.state.fn == "validate":
            return _first_loader(trainer.val_dataloaders)
        return _first_loader(trainer.train_dataloader)

    def _ensure_samples(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._samples is not None:
            return
        try:
            loader = self._loader(trainer, pl_module)
            chunks: list[Tensor] = []
            count = 0
            if loader is not None:
                # Iterating a loader draws a seed from the global RNG: fork it, so training
                # sees the same random numbers as without the callback.
                with torch.random.fork_rng(devices=[]), torch.inference_mode(False):
                    for batch in loader:
                        x = self.input_fn(batch)
                        if not isinstance(x, Tensor):
                            raise LieGGError(
                                f"Expected input_fn to return a tensor, but got {describe(x)}."
                            )
                        x = x.detach().to("cpu").clone()
                        chunks.append(x[: self.num_samples - count])
                        count += chunks[-1].shape[0]
                        if count >= self.num_samples:
                            break
            self._samples = torch.cat(chunks) if chunks else None
        except Exception as err:  # noqa: BLE001 - never stop training unless strict
            if self.strict:
                raise
            self._warn(
                f"LieGG could not collect samples ({type(err).__name__}: {err}); "
                "evaluations are skipped."
            )
            self._samples = None

    @property
    def samples(self) -> Tensor | None:
        """The cached inputs ``(n, ...)`` on CPU (this process's share under DDP), or None."""
        return self._samples

    # -- the analysis -----------------------------------------------------------------------
    def _local_gram(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> tuple[Tensor, int]:
        m = self.action.dim
        gram = torch.zeros(m, m, dtype=torch.float64, device=pl_module.device)
        samples = self._samples
        if samples is None:
            return gram, 0
        precision = trainer.precision_plugin
        with precision.forward_context():
            for chunk in samples.split(self.batch_size):
                x = precision.convert_input(chunk.to(pl_module.device))
                rows = polarization_rows(
                    pl_module, x, self.action, self.reduction, self.output_transform, self.mode
                )
                gram += gram_update(rows)
        return gram, int(samples.shape[0])

    def analyse(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> SymmetryReport | None:
        """Run the analysis on every rank and return the all-reduced report (None if skipped).

        Every rank joins exactly one collective (a sum of [Gram, N, failures]), also when its
        own analysis failed, so a failure can never hang a distributed job.
        """
        m = self.action.dim
        error: BaseException | None = None
        try:
            gram, n = self._local_gram(trainer, pl_module)
        except Exception as err:  # noqa: BLE001
            error = err
            gram, n = torch.zeros(m, m, dtype=torch.float64, device=pl_module.device), 0
        packed = torch.cat(
            [
                gram.reshape(-1),
                torch.tensor(
                    [float(n), float(error is not None)], dtype=torch.float64, device=gram.device
                ),
            ]
        )
        if trainer.world_size > 1:
            packed = trainer.strategy.reduce(packed.clone(), reduce_op="sum")
        failures = int(packed[-1].item())
        total = int(round(packed[-2].item()))
        if failures:
            reason = (
                f"{type(error).__name__}: {error}"
                if error is not None
                else "it failed on another process"
            )
            if self.strict:
                if error is not None:
                    raise error
                raise RuntimeError(f"LieGG analysis failed on {failures} process(es).")
            if error is not None or trainer.is_global_zero:  # one warning per cause, not per rank
                self._warn(
                    f"LieGG analysis skipped at step {trainer.global_step}: {reason}", once=False
                )
            return None
        if total == 0:
            if trainer.is_global_zero:
                self._warn(
                    "LieGG has no samples to analyse (empty dataloader?); evaluations are skipped."
                )
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a degenerate report is handled just below
            report = SymmetryReport(
                packed[: m * m].reshape(m, m),
                total,
                self.action.basis,
                self.reference,
                self.num_generators,
            )
        if report.degenerate or not bool(torch.isfinite(report.spectrum).all()):
            message = (
                f"LieGG analysis skipped at step {trainer.global_step}: the polarization matrix "
                "is zero or not finite."
            )
            if self.strict:
                raise LieGGError(message)
            if trainer.is_global_zero:
                self._warn(message, once=False)
            return None
        return report

    def _evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        step = int(trainer.global_step)
        if self.history and self.history[-1]["step"] == step and self.history[-1]["stage"] == stage:
            return  # already evaluated these weights (resume, repeated validation)
        start = time.perf_counter()
        report = self.analyse(trainer, pl_module)
        seconds = time.perf_counter() - start
        if report is None:
            return
        entry = self._entry(report, trainer, stage, seconds)
        self.history.append(entry)
        self.last_report = report
        if trainer.is_global_zero:
            try:
                self._log(trainer, pl_module, report, entry)
            except Exception as err:  # noqa: BLE001 - logging trouble must not stop training
                if self.strict:
                    raise
                self._warn(
                    f"LieGG could not log its results ({type(err).__name__}: {err}).", once=False
                )

    def _entry(
        self, report: SymmetryReport, trainer: pl.Trainer, stage: str, seconds: float
    ) -> dict[str, Any]:
        scalars = report.to_dict()
        scalars.pop("num_samples", None)
        if self.history and self.history[-1].get("generators") is not None:
            previous = torch.tensor(self.history[-1]["generators"][0], dtype=torch.float64).reshape(
                1, -1
            )
            current = report.generators[:1].reshape(1, -1)
            if previous.shape == current.shape:
                scalars["generator_drift"] = float(principal_angles(current, previous)[0])
        scalars["seconds"] = seconds
        bias = report.symmetry_bias
        return {
            "step": int(trainer.global_step),
            "epoch": int(trainer.current_epoch),
            "stage": stage,
            "num_samples": report.num_samples,
            "seconds": seconds,
            "scalars": scalars,
            "spectrum": report.spectrum.tolist(),
            "relative_spectrum": report.relative_spectrum.tolist(),
            "generators": report.generators[: self.num_generators].tolist(),
            "bias": None if bias is None else bias.tolist(),
        }

    # -- logging (rank zero) ----------------------------------------------------------------
    def _warn(self, message: str, once: bool = True) -> None:
        """Warn (rank-local); with ``once``, each message only the first time."""
        if once and message in self._warned:
            return
        self._warned.add(message)
        warnings.warn(message, LieGGWarning, stacklevel=3)

    def _log(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        report: SymmetryReport,
        entry: dict,
    ) -> None:
        step = entry["step"]
        metrics = {PREFIX + k: float(v) for k, v in entry["scalars"].items()}
        for i, value in enumerate(entry["relative_spectrum"]):
            metrics[f"{PREFIX}spectrum/{i}"] = float(value)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)
        if not self.log_images:
            return
        media_loggers = self._media_loggers(trainer)
        for logger in trainer.loggers:
            if logger not in media_loggers and not isinstance(logger, CSVLogger):
                self._warn(
                    f"{type(logger).__name__} cannot show LieGG figures; it gets the scalars only "
                    "(TensorBoardLogger and loggers with log_image, such as WandbLogger, get "
                    "images)."
                )
        if not media_loggers:
            return
        for logger in media_loggers:
            if isinstance(logger, TensorBoardLogger):
                self._log_tensorboard_scalars(logger, report, step)
        renderer = self._ensure_renderer()
        if self._within_budget():
            renderer.submit(step, self._media_payload(report))
            self._deferred = None
        else:  # the payload is built only if this turns out to be the last evaluation
            self._deferred = (step, report)
        self._flush_media(trainer)

    def _within_budget(self) -> bool:
        """Whether one more set of figures, plus the final set, fits ``media_budget``."""
        if self.media_budget is None or self._fit_start is None or self._renderer is None:
            return True
        renderer = self._renderer
        estimate = renderer.seconds / renderer.renders if renderer.renders else 1.0
        elapsed = time.perf_counter() - self._fit_start
        return renderer.seconds + 2 * estimate <= self.media_budget * elapsed

    @staticmethod
    def _media_loggers(trainer: pl.Trainer) -> list[Any]:
        return [
            lg
            for lg in trainer.loggers
            if isinstance(lg, TensorBoardLogger) or hasattr(lg, "log_image")
        ]

    def _start_renderer(self, trainer: pl.Trainer) -> None:
        """Rank zero, with figures to log: start the rendering process early."""
        if self.log_images and trainer.is_global_zero and self._media_loggers(trainer):
            self._ensure_renderer().start()

    def _ensure_renderer(self) -> MediaRenderer:
        if self._renderer is None:
            self._renderer = MediaRenderer(background=self.background_rendering)
        return self._renderer

    def _media_payload(self, report: SymmetryReport) -> dict[str, Any]:
        """Plain numpy data for :func:`render_media` (cheap to send to the worker process)."""
        k = self.num_generators
        bias = report.symmetry_bias
        payload: dict[str, Any] = {
            "generators": report.generators[:k].numpy(),
            "variances": report.spectrum[:k].numpy(),
            "biases": None if bias is None else bias.numpy(),
            "relative_spectrum": report.relative_spectrum.numpy(),
            "reference_dim": None if self.reference is None else int(self.reference.shape[0]),
            "symmetry_dim": report.symmetry_dim,
            "steps": np.array([e["step"] for e in self.history]),
            "spectra": np.array([e["relative_spectrum"] for e in self.history]),
            "frames": None,
        }
        if isinstance(self.action, ImageAction) and self._samples is not None:
            times = torch.linspace(0.0, 1.0, 5, dtype=torch.float64)
            x = self._samples[: self.filmstrip_samples].float()
            frames = self.action.transform(x, report.generators[0].to(torch.float32), times)
            payload["frames"], payload["times"] = frames.numpy(), times.numpy()
        return payload

    def _flush_media(self, trainer: pl.Trainer, wait: bool = False) -> None:
        """Log the figures that are ready (all of them with ``wait``), each at its step."""
        if self._renderer is None:
            return
        for step, images in self._renderer.collect(wait=wait):
            if isinstance(images, BaseException):
                if self.strict:
                    raise images
                self._warn(f"LieGG could not draw its figures for step {step} ({images!r}).")
                continue
            for logger in self._media_loggers(trainer):
                if isinstance(logger, TensorBoardLogger):
                    writer = logger.experiment
                    for name, image in images.items():
                        writer.add_image(PREFIX + name, image, global_step=step, dataformats="HWC")
                    writer.flush()
                else:
                    for name, image in images.items():
                        logger.log_image(key=PREFIX + name, images=[image], step=step)

    def _log_tensorboard_scalars(
        self, logger: TensorBoardLogger, report: SymmetryReport, step: int
    ) -> None:
        """The custom-scalars page (once) and the histograms; images come with the renderer."""
        writer = logger.experiment
        if not self._layout_done:
            writer.add_custom_scalars(self.custom_scalars_layout())
            self._layout_done = True
        rel = report.relative_spectrum.clamp_min(1e-16).log10()
        writer.add_histogram(PREFIX + "log10_relative_spectrum", rel.numpy(), global_step=step)
        writer.add_histogram(
            PREFIX + "generator_entries", report.generators[0].flatten().numpy(), global_step=step
        )
        writer.flush()

    def custom_scalars_layout(self) -> dict[str, dict[str, list]]:
        """A TensorBoard custom-scalars page with every liegg curve."""
        variance = ["Multiline", [PREFIX + "symmetry_variance", PREFIX + "relative_variance"]]
        charts: dict[str, list] = {
            "variance": variance,
            "relative spectrum": ["Multiline", [PREFIX + "spectrum/.*"]],
            "symmetry dimension": ["Multiline", [PREFIX + "symmetry_dim", PREFIX + "closure"]],
            "generator drift": ["Multiline", [PREFIX + "generator_drift"]],
        }
        if self.reference is not None:
            charts["reference"] = [
                "Multiline",
                [PREFIX + "symmetry_bias", PREFIX + "subspace_distance"],
            ]
        return {"liegg": charts}

    # -- export -----------------------------------------------------------------------------
    def to_json(self, path: str | Path) -> None:
        """Write the history as JSON (a list of evaluation dicts)."""
        Path(path).write_text(json.dumps(self.history, indent=1, allow_nan=True))

    def to_csv(self, path: str | Path) -> None:
        """Write one row per evaluation: step, epoch, stage, scalars and relative spectrum."""
        scalar_keys: list[str] = []
        for entry in self.history:
            scalar_keys += [k for k in entry["scalars"] if k not in scalar_keys]
        m = max((len(e["relative_spectrum"]) for e in self.history), default=0)
        header = ["step", "epoch", "stage", *scalar_keys, *(f"spectrum/{i}" for i in range(m))]
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for e in self.history:
                spectrum = list(e["relative_spectrum"]) + [math.nan] * (
                    m - len(e["relative_spectrum"])
                )
                writer.writerow(
                    [
                        e["step"],
                        e["epoch"],
                        e["stage"],
                        *(e["scalars"].get(k, math.nan) for k in scalar_keys),
                        *spectrum,
                    ]
                )
