"""LieGGCallback: watch a network's learned symmetries evolve during training.

This module holds the hooks and the decisions (when to evaluate, what to do with a result).
Each other job lives in one module:

- :mod:`lightning_liegg._samples`: the fixed sample set (:class:`SampleCache`);
- :mod:`lightning_liegg.functional.analysis`: the analysis (``_update`` / ``_compute``);
- :mod:`lightning_liegg._history`: one :class:`Evaluation` record per evaluation, export;
- :mod:`lightning_liegg._loggers`: scalars, histograms and images to the loggers;
- :mod:`lightning_liegg._media`: the figures' payload, time budget and renderer;
- :mod:`lightning_liegg._warnings`: warnings once per cause, raising only under ``strict``.

Every rank analyses its own share of the samples, the Gram matrix and sample count are summed
across ranks (every rank joins the same single collective), and rank zero logs.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from . import _per_sample  # per-sample violations, discrete transforms
from ._deprecation import renamed_argument
from ._history import Evaluation, history_to_csv, history_to_json, summary_table
from ._lightning import callback_bases
from ._loggers import PREFIX, LoggerDispatch, custom_scalars_layout, publish_metrics
from ._media import FigurePayload, Figures, filmstrip_frames, filmstrip_kind
from ._samples import TANGENT_CACHE_MB, SampleCache, default_input_fn
from ._warnings import Warner
from .exceptions import LieGGError, LieGGWarning
from .functional._checks import check_callable, check_fraction, check_number, check_positive_int
from .functional._isolation import isolated
from .functional.actions import Action
from .functional.analysis import _compute, _update_layers, check_reference
from .functional.grid_actions import (
    ImageAction,
    SignalAction,
    VolumeAction,
    channels_last_hint,
    looks_channels_last,
)
from .functional.layers import OUTPUT, resolve_layers
from .functional.layerwise_report import LayerwiseReport
from .functional.polarization import check_options, check_output_action
from .functional.report import SymmetryReport
from .functional.violation import _update_per_sample

__all__ = ["LieGGCallback", "LieGGWarning", "default_input_fn", "Evaluation", "PREFIX"]

#: Output actions whose outputs the filmstrip draws beside inputs of the same kind.
_OUTPUT_KINDS = {ImageAction: "image", SignalAction: "signal", VolumeAction: "volume"}


class LieGGCallback(*callback_bases()):  # type: ignore[misc]
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
    a filmstrip (images and colour as a grid of images, signals as line plots, volumes as three
    orthogonal mid-slices; none for vectors), the spectrum's evolution, histograms and a
    custom-scalars page; loggers with ``log_image`` (W&B) get the images.

    With ``output_action`` the analysis is of equivariance (the same scalars, see
    :func:`lightning_liegg.polarization_matrix`), the figures' titles say "equivariance", and
    for image outputs of image inputs (signals and volumes likewise) the filmstrip shows the
    inputs moved along exp(t h) beside the model's outputs on them, so one sees whether the
    outputs follow the inputs.

    Every ``liegg/...`` scalar also lands in ``trainer.callback_metrics`` (the same value on
    every rank: it comes from the all-reduced matrix; ``seconds`` is each rank's own) before
    ``ModelCheckpoint`` and ``EarlyStopping`` look, whatever the callback order:
    ``ModelCheckpoint(monitor="liegg/symmetry_bias", mode="min")`` keeps the most symmetric
    checkpoint.

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
        input_fn: maps a batch to the model input; :func:`default_input_fn` by default. It may
            return ``(x, extra)``: see ``forward_fn``.
        log_images: log figures (rank zero only).
        num_generators: how many of the most symmetric generators the figures show.
        strict: raise on a failed analysis instead of warning and skipping it. Without it,
            the first evaluation skipped for a cause warns, and when the run ends one warning
            per cause says how many were skipped ("skipped 7 of 7 evaluations: ...").
        chunk_size: samples per differentiation chunk (memory bound).
        evaluate_at_start: evaluate the untrained model at the start of fit (step 0).
        filmstrip_samples: samples shown in the filmstrip.
        ad_mode: ``"auto"``, ``"forward"`` or ``"reverse"`` differentiation.
        media_budget: the share of training time the figures may cost (a set takes a few
            hundredths of a second). An evaluation whose figures would exceed it logs scalars
            only; the first evaluation, the first one past the middle of training and the
            last one are always drawn, so the images slider moves even on short runs.
            ``None``: figures at every evaluation.
        background_rendering: draw the figures in a worker process, off the training path
            (logged at their own step when ready, at the latest when fit or validate ends).
            Worth it where CPU cores sit idle (GPU training); drawing still costs CPU time,
            which counts against ``media_budget``.
        output_action: for equivariant models, how the same generators act on the outputs
            (``VectorAction(dim=3)``, ``ImageAction()``, ``TensorAction``, ``DirectSum``...);
            it must take generators of ``action``'s shape, and needs ``reduction="none"``.
            ``None`` (default): invariance.
        prog_bar: show ``relative_variance`` (and ``symmetry_bias`` with a reference) in the
            progress bar.
        forward_fn: ``(module, x, extra) -> outputs``, for models whose ``forward`` takes more
            than the analysed tensor: ``input_fn`` returns ``(x, extra)`` and ``extra`` (a
            second input, a mask; tensors with one row per sample) is held fixed per sample,
            e.g. ``input_fn=lambda b: (b["x"], b["mask"])``,
            ``forward_fn=lambda m, x, mask: m(x, mask=mask)``. Without it a model gets
            ``module(x, extra)`` when ``input_fn`` returns an ``extra``.
        print_summary: at the end of fit and validate, rank zero prints a short table:
            evaluations done and skipped (with the reason), and what the last one found
            (symmetry dimension, relative variance, bias, top generator).
        layers: also analyse intermediate representations, from the same passes (see
            :func:`lightning_liegg.liegg`): submodule names of the LightningModule (as in
            ``named_modules()``), a dict name -> output action (``None``: invariance;
            ``ImageAction()`` for feature maps), or ``"auto"``; names are checked at
            ``setup``. Logs ``liegg/layers/<name>/relative_variance``, ``symmetry_dim`` and,
            with a reference, ``symmetry_bias``, ``subspace_distance`` and
            ``reference_variance`` (``<name>`` = ``output`` for the final output), a
            ``layer_heatmap`` figure (layer x evaluation, log relative variance of the most
            symmetric generator, and of the reference algebra when given) and
            ``layer_generators`` (each layer's generators at the evaluation). Under DDP the
            per-layer Gram matrices travel in the same single all-reduce. The hooks exist only
            during an analysis and are removed afterwards, also when it fails.
        tangent_cache_mb: memory (megabytes, default 256) for the input tangents of the cached
            samples (``action.dim`` times the samples' size, e.g. 6 MB for 512 28x28 images
            under gl(2)): they do not depend on the model, so they are computed at the first
            evaluation and reused, and an evaluation costs only the model's passes (also
            with ``layers``). Above
            the budget they are computed at every evaluation; 0 never keeps them. Recomputed
            when the samples change; not saved in checkpoints.
        transforms: discrete transforms to follow, a dict name -> callable ``x -> g x`` on a
            batch (``lg.transforms.hflip``, ``rot90(1)``, ``shift(...)``, ``d4()``, any
            function). At every evaluation, one forward pass per transform on the cached
            samples gives the per-sample relative error |F(g x) - g F(x)| / |F(x)| (see
            :func:`lightning_liegg.transform_errors`; g acts on outputs of the inputs' shape,
            else invariance); logged as ``liegg/discrete/<name>`` (the mean over all
            processes), TensorBoard histograms ``liegg/per_sample/discrete/<name>``, rows of
            the ``worst_samples`` image, and a line of the summary table. Independently of
            it, every evaluation without ``layers`` logs the histogram
            ``liegg/per_sample/violation/most_symmetric`` (and ``.../reference``) of the
            per-sample violations (:func:`lightning_liegg.symmetry_violation`, from the
            analysis' own passes) and the ``worst_samples`` image (rank zero's share under
            DDP).
        batch_size: deprecated name of ``chunk_size``.
        on_train_start: deprecated name of ``evaluate_at_start``.
        mode: deprecated name of ``ad_mode``.

    Attributes:
        history: one :class:`~lightning_liegg._history.Evaluation` record per evaluation
            (``step``, ``epoch``, ``stage``, ``seconds``, ``scalars``, ``spectrum``,
            ``relative_spectrum``, ``generators``, ``bias``; ``record["step"]`` works too);
            saved in checkpoints as plain JSON, so a resumed run continues its curves. With
            ``layers``, each record's ``layers`` holds the per-layer results.
        last_report: the :class:`SymmetryReport` of the last evaluation.
        last_layer_report: with ``layers``, the
            :class:`~lightning_liegg.functional.layerwise_report.LayerwiseReport` of the last
            evaluation (forward order, ``"output"`` last); else None.

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
        chunk_size: int = 256,
        evaluate_at_start: bool = True,
        filmstrip_samples: int = 4,
        ad_mode: str = "auto",
        media_budget: float | None = 0.05,
        background_rendering: bool = False,
        output_action: Action | None = None,
        prog_bar: bool = False,
        forward_fn: Callable[[Any, Tensor, Any], Any] | None = None,
        print_summary: bool = True,
        layers: Any = None,
        tangent_cache_mb: float = TANGENT_CACHE_MB,
        transforms: dict[str, Callable[[Tensor], Tensor]] | None = None,
        *,
        batch_size: int | None = None,
        on_train_start: bool | None = None,
        mode: str | None = None,
    ) -> None:
        super().__init__()
        name = "LieGGCallback"
        chunk_size = renamed_argument(name, "batch_size", "chunk_size", batch_size, chunk_size, 256)
        evaluate_at_start = renamed_argument(
            name, "on_train_start", "evaluate_at_start", on_train_start, evaluate_at_start, True
        )
        ad_mode = renamed_argument(name, "mode", "ad_mode", mode, ad_mode, "auto")
        check_options(action, reduction, ad_mode)
        check_output_action(action, output_action, reduction)
        if every_n_epochs is not None and every_n_train_steps is not None:
            raise LieGGError(
                "Expected one trigger, every_n_epochs or every_n_train_steps, but got both "
                f"(every_n_epochs={every_n_epochs}, every_n_train_steps={every_n_train_steps})."
            )
        check_positive_int("every_n_epochs", every_n_epochs, optional=True)
        check_positive_int("every_n_train_steps", every_n_train_steps, optional=True)
        for arg, value in (
            ("num_generators", num_generators),
            ("chunk_size", chunk_size),
            ("filmstrip_samples", filmstrip_samples),
        ):
            check_positive_int(arg, value)
        check_callable("output_transform", output_transform)
        check_fraction("media_budget", media_budget, optional=True)
        check_number("tangent_cache_mb", tangent_cache_mb, minimum=0.0)
        self.action = action
        self.every_n_train_steps = every_n_train_steps
        if every_n_epochs is None and every_n_train_steps is None:
            every_n_epochs = 1
        self.every_n_epochs = every_n_epochs
        self.reduction = reduction
        self.output_transform = output_transform
        self.reference = check_reference(reference, action)
        self.log_images = log_images
        self.num_generators = num_generators
        self.strict = strict
        self.chunk_size = chunk_size
        self.evaluate_at_start = evaluate_at_start
        self.filmstrip_samples = filmstrip_samples
        self.ad_mode = ad_mode
        self.media_budget = media_budget
        self.background_rendering = background_rendering
        self.output_action = output_action
        self.prog_bar = prog_bar
        check_callable("forward_fn", forward_fn)
        self.forward_fn = forward_fn
        self.print_summary = print_summary
        self.layers = _check_layers(layers, action, reduction)
        self._layer_spec: dict[Any, Any] | None = None
        self._forward_order: list[str] | None = None
        self.last_layer_report: LayerwiseReport | None = None

        # per-sample violations and discrete transforms (lightning_liegg._per_sample)
        self.transforms = None if transforms is None else _per_sample.check_transforms(transforms)
        self._sample_grams: Tensor | None = None
        self.last_per_sample: _per_sample.PerSample | None = None
        self._cache = SampleCache(num_samples, input_fn)
        self._cache.tangents.max_mb = float(tangent_cache_mb)
        self._loggers = LoggerDispatch(reference=self.reference is not None)
        self._figures = Figures(media_budget, background_rendering)
        self._warn = Warner(strict)
        self._attempted = 0  # evaluations attempted in this run (fit or validate)
        self._run_records: list[Evaluation] = []  # those done in this run
        self._no_samples: str | None = None  # why no samples could be collected
        self.history: list[Evaluation] = []
        self.last_report: SymmetryReport | None = None

    # -- read-only views ----------------------------------------------------------------------
    @property
    def num_samples(self) -> int:
        """Size of the cached sample set (per process under DDP)."""
        return self._cache.num_samples

    @property
    def input_fn(self) -> Callable[[Any], Tensor]:
        """Maps a batch to the model input."""
        return self._cache.input_fn

    @property
    def samples(self) -> Tensor | None:
        """The cached inputs ``(n, ...)`` on CPU (this process's share under DDP), or None."""
        return self._cache.samples

    # -- Lightning plumbing -------------------------------------------------------------------
    @property
    def state_key(self) -> str:
        """Checkpoint key: class name, action(s) and triggers (several callbacks may coexist).

        The output action is part of it only when set, so invariance keys stay as they were.
        """
        extra = {} if self.output_action is None else {"output_action": repr(self.output_action)}
        return self._generate_state_key(
            action=repr(self.action),
            every_n_epochs=self.every_n_epochs,
            every_n_train_steps=self.every_n_train_steps,
            **extra,
        )

    def state_dict(self) -> dict[str, Any]:
        """The evaluation history as plain JSON (lists, floats, strings)."""
        return {"history": [record.to_dict() for record in self.history]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the history so that a resumed run continues its curves."""
        self.history = [Evaluation.from_dict(d) for d in state_dict.get("history", [])]

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Check ``layers`` against the model; rank zero: say which loggers show no figures."""
        self._attempted, self._run_records, self._warn.skipped = 0, [], {}
        if self.layers is not None:
            self._layer_spec = resolve_layers(pl_module, self.layers, self.action, self.reduction)
        if self.log_images and trainer.is_global_zero:
            self._loggers.check(trainer.loggers, self._warn)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Rank zero: warn once per cause of skipped evaluations, print the summary."""
        self._summarise(trainer)

    def _summarise(self, trainer: pl.Trainer) -> None:
        if not trainer.is_global_zero:
            return
        self._warn.report_skips(self._attempted)
        if self.print_summary:
            describe = getattr(self.action, "format_generator", None)
            print(
                summary_table(
                    self._run_records, self._attempted, self._warn.skipped, describe=describe
                )
            )

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Cache the samples and evaluate the untrained (or resumed) model."""
        self._figures.start(
            fit=True, warm_up=self._draws(trainer), total_steps=self._total_steps(trainer)
        )
        if trainer.ckpt_path is not None and trainer.is_global_zero:  # a resumed fit
            with self._warn.guard("LieGG could not mark the resumed run in TensorBoard"):
                self._loggers.mark_restart(trainer.loggers, int(trainer.global_step) + 1)
        self._ensure_samples(trainer, pl_module)
        if self.evaluate_at_start:
            self._evaluate(trainer, pl_module, stage="fit")

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Under ``trainer.validate()``, cache samples from its dataloader if not done yet."""
        if not trainer.sanity_checking and trainer.state.fn == "validate":
            self._ensure_samples(trainer, pl_module)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Evaluate after validation (every ``every_n_epochs``) and at the end of validate().

        This hook runs before any callback's ``on_validation_end`` and ``on_train_epoch_end``,
        so ``ModelCheckpoint`` and ``EarlyStopping`` see the ``liegg/`` metrics of this
        validation whatever the callback order.
        """
        if trainer.sanity_checking:
            return
        if trainer.state.fn == "validate":
            self._evaluate(trainer, pl_module, stage="validate")
        elif trainer.state.fn == "fit" and self._epoch_due(trainer.current_epoch):
            self._evaluate(trainer, pl_module, stage="fit")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """At the end of validate(), log the figures."""
        if not trainer.sanity_checking and trainer.state.fn == "validate":
            self._flush_media(trainer, wait=True)
            self._summarise(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Without a validation loop, evaluate at the end of training epochs instead."""
        if not SampleCache.has_validation(trainer, pl_module) and self._epoch_due(
            trainer.current_epoch
        ):
            self._evaluate(trainer, pl_module, stage="fit")

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Evaluate every ``every_n_train_steps`` optimizer steps; log figures that are ready."""
        if self._step_due(trainer.global_step):
            self._evaluate(trainer, pl_module, stage="fit")
        if self._figures.pending:
            self._flush_media(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Draw the last evaluation's figures if the budget held them back; log all pending."""
        self._figures.finish()
        self._flush_media(trainer, wait=True)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Log what is left and stop the rendering process at the end of fit/validate."""
        try:
            self._flush_media(trainer, wait=True)
        finally:
            self._figures.close()

    # -- when ---------------------------------------------------------------------------------
    def _epoch_due(self, epoch: int) -> bool:
        """Whether the end of (0-based) ``epoch`` is an evaluation point."""
        n = self.every_n_epochs
        return n is not None and (epoch + 1) % n == 0

    def _step_due(self, global_step: int) -> bool:
        """Whether ``global_step`` (optimizer steps done) is an evaluation point."""
        n = self.every_n_train_steps
        return n is not None and global_step > 0 and global_step % n == 0

    @staticmethod
    def _total_steps(trainer: pl.Trainer) -> float | None:
        """The run's optimizer steps, if Lightning can tell (for the figures' landmarks)."""
        try:
            return float(trainer.estimated_stepping_batches)
        except Exception:  # noqa: BLE001 - unknown length (iterable datasets, ...)
            return None

    def _draws(self, trainer: pl.Trainer) -> bool:
        """Whether this process draws figures: rank zero, with a logger that shows them."""
        return (
            self.log_images
            and trainer.is_global_zero
            and bool(LoggerDispatch.media_loggers(trainer.loggers))
        )

    # -- the analysis -------------------------------------------------------------------------
    def _ensure_samples(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._cache.samples is not None:
            return
        try:
            samples = self._cache.ensure(trainer, pl_module)
        except Exception as err:  # noqa: BLE001 - every evaluation is then skipped, and counted
            if self.strict:
                raise
            self._no_samples = f"could not collect samples: {type(err).__name__}: {err}"
            return
        action = self.action
        if (
            self.strict  # otherwise the action warns when it first sees them
            and isinstance(action, ImageAction)
            and not action.channels_last
            and samples is not None
            and looks_channels_last(samples)
        ):
            raise LieGGError(
                f"Expected images (N, C, H, W) for {action!r}, but the samples of shape "
                f"{tuple(samples.shape)} look channels-last. {channels_last_hint(samples)}"
            )

    def _layer_names(self) -> list[str]:
        """The layers' state order: the same on every rank (the spec, not the forward order)."""
        return [k for k in (self._layer_spec or {}) if k is not ...]

    def _empty_state(self, device: torch.device) -> tuple[Tensor, int, dict[str, Tensor]]:
        """The state of a process that analysed nothing: a zero Gram matrix, no samples."""
        m = self.action.dim
        return torch.zeros(m, m, dtype=torch.float64, device=device), 0, {}

    def _local_state(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule
    ) -> tuple[Tensor, int, dict[str, Tensor]]:
        """This process's Gram matrix, sample count and per-layer Gram matrices."""
        samples, device = self._cache.samples, pl_module.device
        self._sample_grams = None
        if samples is None:
            return self._empty_state(device)
        precision = trainer.precision_plugin
        prepare = lambda chunk: precision.convert_input(chunk.to(device))  # noqa: E731
        # What the whole-model and the layer-wise analyses share.
        options: dict[str, Any] = dict(
            reduction=self.reduction,
            output_transform=self.output_transform,
            ad_mode=self.ad_mode,
            chunk_size=self.chunk_size,
            prepare=prepare,
            device=device,
            output_action=self.output_action,
            forward_fn=self.forward_fn,
            extra=self._cache.extra,
        )
        options["tangents"] = self._cache.tangents.for_samples(samples, self.action)
        with precision.forward_context():
            if self._layer_spec is None:  # per-sample Gram matrices from the same passes
                gram, n, self._sample_grams = _update_per_sample(
                    pl_module, samples, self.action, **options
                )
                return gram, n, {}
            grams, n = _update_layers(pl_module, samples, self.action, self._layer_spec, **options)
        gram = grams.pop(OUTPUT)
        self._forward_order = list(grams)
        return gram, n, grams

    def analyse(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> SymmetryReport | None:
        """Run the analysis on every rank and return the all-reduced report (None if skipped).

        Every rank joins exactly one collective (a sum of [Gram, per-layer Grams, N,
        failures]), also when its own analysis failed, so a failure can never hang a
        distributed job. With ``layers``, :attr:`last_layer_report` is set too.
        """
        m = self.action.dim
        names = self._layer_names()
        error: BaseException | None = None
        try:
            gram, n, layer_grams = self._local_state(trainer, pl_module)
        except Exception as err:  # noqa: BLE001 - reported after the collective
            error = err
            gram, n, layer_grams = self._empty_state(pl_module.device)
        flags = torch.tensor([float(n), float(error is not None)], dtype=torch.float64)
        zero = torch.zeros(m * m, dtype=torch.float64, device=gram.device)
        parts = [layer_grams[k].reshape(-1) if k in layer_grams else zero for k in names]
        packed = torch.cat([gram.reshape(-1), *parts, flags.to(gram.device)])
        if trainer.world_size > 1:
            packed = trainer.strategy.reduce(packed.clone(), reduce_op="sum")
        failures, total = int(packed[-1].item()), int(round(packed[-2].item()))
        step = trainer.global_step
        if failures:
            if error is None:  # warn once per cause: the failing rank, or rank zero for others
                error = RuntimeError(f"LieGG analysis failed on {failures} other process(es)")
                if not (self.strict or trainer.is_global_zero):
                    return None
            self._warn.skip(error, step)
            return None
        if total == 0:
            if trainer.is_global_zero:
                self._warn.skip(
                    self._no_samples or "no samples to analyse (empty dataloader?)", step
                )
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a degenerate report is handled just below
            report = _compute(
                packed[: m * m].reshape(m, m),
                total,
                self.action,
                self.reference,
                self.num_generators,
            )
            if names:
                self.last_layer_report = self._layer_report(packed, names, total, report)
        if report.degenerate or not bool(torch.isfinite(report.spectrum).all()):
            error = LieGGError(
                f"Expected a non-zero, finite polarization matrix at step {step}, but it is "
                "zero or not finite."
            )
            if self.strict or trainer.is_global_zero:
                self._warn.skip(error, step)
            return None
        return report

    def _layer_report(
        self, packed: Tensor, names: list[str], total: int, report: SymmetryReport
    ) -> LayerwiseReport:
        """Per-layer reports from the all-reduced state, forward order, ``"output"`` last.

        Layers whose Gram matrix is zero everywhere (an ``"auto"`` module that did not run)
        are left out.
        """
        m = self.action.dim
        reports: dict[str, SymmetryReport] = {}
        order = [k for k in (self._forward_order or []) if k in names]
        order += [k for k in names if k not in order]
        for name in order:
            i = names.index(name) + 1
            g = packed[i * m * m : (i + 1) * m * m].reshape(m, m)
            if not bool(g.abs().sum() > 0):
                continue
            reports[name] = _compute(g, total, self.action, self.reference, self.num_generators)
        reports[OUTPUT] = report
        return LayerwiseReport(reports)

    def _evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        step = int(trainer.global_step)
        if self.history and (self.history[-1].step, self.history[-1].stage) == (step, stage):
            return  # already evaluated these weights (resume, repeated validation)
        self._attempted += 1
        start = time.perf_counter()
        report = self.analyse(trainer, pl_module)
        seconds = time.perf_counter() - start
        if report is None:
            return
        record = Evaluation.from_report(
            report,
            step,
            trainer.current_epoch,
            stage,
            seconds,
            self.num_generators,
            previous=self.history[-1] if self.history else None,
            output_action=None if self.output_action is None else repr(self.output_action),
            layers=self.last_layer_report if self._layer_spec else None,
        )
        per_sample = self._per_sample(trainer, pl_module, report)  # every rank: a collective
        record = dataclasses.replace(record, scalars={**record.scalars, **per_sample.means})
        self.history.append(record)
        self._run_records.append(record)
        self.last_report = report
        publish_metrics(trainer, record, self.prog_bar, self._loggers.prefix)
        if trainer.is_global_zero:
            with self._warn.guard("LieGG could not log its results", once=False):
                self._log(trainer, report, record)

    def _per_sample(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, report: SymmetryReport
    ) -> _per_sample.PerSample:
        """Per-sample violations and discrete errors (see :mod:`lightning_liegg._per_sample`)."""
        device, precision = pl_module.device, trainer.precision_plugin
        self.last_per_sample = _per_sample.evaluate(
            trainer,
            pl_module,
            report,
            self.action,
            self._sample_grams,
            self.transforms,
            self._cache.samples,
            self._warn,
            output_transform=self.output_transform,
            chunk_size=self.chunk_size,
            prepare=lambda chunk: precision.convert_input(chunk.to(device)),
            forward_fn=self.forward_fn,
            extra=self._cache.extra,
        )
        return self.last_per_sample

    # -- logging (rank zero) ------------------------------------------------------------------
    def _log(self, trainer: pl.Trainer, report: SymmetryReport, record: Evaluation) -> None:
        self._loggers.log_scalars(trainer.loggers, record)
        if self.last_per_sample is not None and self.log_images:  # histograms, worst samples
            start = time.perf_counter()
            # an image that cannot be written (a full disk) costs that image only
            with self._warn.guard("LieGG could not log its per-sample histograms and image"):
                _per_sample.log_per_sample(
                    trainer.loggers, record.step, self.last_per_sample, self._cache.samples,
                    self._loggers.prefix, images=self._draws(trainer),
                )  # fmt: skip
            if self._draws(trainer):
                self._figures.charge(time.perf_counter() - start)
        if not self._draws(trainer):
            return
        self._loggers.log_tensorboard(trainer.loggers, report, record.step)
        history, samples = list(self.history), self._cache.samples
        outputs = moved = None
        if self._shows_outputs():  # now: the weights may change before the figures are drawn
            with self._warn.guard("LieGG could not draw the outputs in its filmstrip"):
                moved = filmstrip_frames(  # warped once: the payload reuses them
                    self.action, samples, report.generators[0], self.filmstrip_samples
                )
                outputs = self._filmstrip_outputs(trainer, moved)

        def build() -> FigurePayload:
            return FigurePayload.build(
                report,
                history,
                self.action,
                samples,
                self.num_generators,
                self.filmstrip_samples,
                equivariance=self.output_action is not None,
                outputs=outputs,
                moved=moved,
            )

        self._figures.offer(record.step, build)
        self._flush_media(trainer)

    def _shows_outputs(self) -> bool:
        """Whether the filmstrip shows the model's outputs: grid outputs of the inputs' kind."""
        kind = filmstrip_kind(self.action, self._cache.samples)
        return kind is not None and _OUTPUT_KINDS.get(type(self.output_action)) == kind

    def _filmstrip_outputs(
        self, trainer: pl.Trainer, moved: tuple[Tensor, Tensor] | None
    ) -> Tensor | None:
        """The model's outputs on the filmstrip's frames ``(T, n, ...)``, on CPU (no side effects).

        ``moved``: the frames and times (:func:`filmstrip_frames`). The output transform is
        applied, as in the analysis; the output action must accept the result (else the
        filmstrip shows the inputs only).
        """
        if moved is None or self.output_action is None:
            return None
        frames = moved[0]
        module = trainer.lightning_module
        precision, device = trainer.precision_plugin, module.device
        flat = frames.reshape(-1, *frames.shape[2:])
        with isolated(module, device), precision.forward_context():
            out = module(precision.convert_input(flat.to(device)))
            if self.output_transform is not None:
                out = self.output_transform(out)
        if not isinstance(out, Tensor):
            raise LieGGError(
                f"Expected the model's output to be a tensor for the filmstrip, but got "
                f"{type(out).__name__}."
            )
        self.output_action.check_input(out, name="model output")
        out = out.detach().to("cpu", torch.float32)
        return out.reshape(*frames.shape[:2], *out.shape[1:])

    def _flush_media(self, trainer: pl.Trainer, wait: bool = False) -> None:
        """Log the figures that are ready (all of them with ``wait``), each at its step."""
        for step, images in self._figures.collect(wait=wait):
            if isinstance(images, BaseException):
                self._warn.fail(images, f"LieGG could not draw its figures for step {step}")
            else:
                start = time.perf_counter()
                # also from the training hooks (figures drawn in the background): a logger
                # that cannot write them (a full disk) is a warning, never the end of training
                with self._warn.guard("LieGG could not log its figures"):
                    self._loggers.log_images(trainer.loggers, step, images)
                self._figures.charge(time.perf_counter() - start)  # counts against the budget

    def custom_scalars_layout(self) -> dict[str, dict[str, list]]:
        """A TensorBoard custom-scalars page with every liegg curve, one quantity per chart."""
        return custom_scalars_layout(self.reference is not None, dim=self.action.dim)

    # -- export -------------------------------------------------------------------------------
    def to_json(self, path: str | Path) -> None:
        """Write the history as JSON (a list of evaluation dicts)."""
        history_to_json(self.history, path)

    def to_csv(self, path: str | Path) -> None:
        """Write one row per evaluation: step, epoch, stage, scalars and relative spectrum."""
        history_to_csv(self.history, path)


def _check_layers(layers: Any, action: Action, reduction: str) -> Any:
    """Check the form of ``layers`` at construction (names are checked at ``setup``)."""
    if layers is None or (isinstance(layers, str) and layers == "auto"):
        return layers
    if isinstance(layers, (list, tuple)) and all(isinstance(k, str) for k in layers):
        return list(layers)
    if isinstance(layers, dict) and all(isinstance(k, str) for k in layers):
        for name, out_action in layers.items():
            try:
                check_output_action(action, out_action, reduction)
            except LieGGError as err:
                raise LieGGError(f"For layer {name!r}: {err}") from err
        return dict(layers)
    raise LieGGError(
        "Expected layers to be None, a list of submodule names, a dict name -> output action "
        f'(or None), or "auto", but got {layers!r}.'
    )
