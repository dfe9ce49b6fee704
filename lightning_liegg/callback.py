"""LieGGCallback: watch a network's learned symmetries evolve during training.

This module holds the hooks, the triggers (when to evaluate) and the checkpoint state. Each
evaluation is run by :class:`~lightning_liegg._engine.EvaluationEngine` (samples, analysis,
the one all-reduce, the record, the loggers, the figures, the summary), which needs no
Trainer: :func:`lightning_liegg.replay` runs the same engine over saved checkpoints.

Every rank analyses its own share of the samples, the packed state is summed across ranks
(every rank joins the same single collective), and rank zero logs.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from torch import Tensor
from typing_extensions import override

from ._checks import check_fraction, check_number, check_positive_int
from ._engine import AnalysisSettings, EvaluationEngine, Run
from ._lightning import callback_bases
from ._loggers import PREFIX, custom_scalars_layout
from ._samples import TANGENT_CACHE_MB, SampleCache, default_input_fn
from .exceptions import LieGGError, LieGGWarning
from .functional.actions import Action
from .history import Evaluation, history_to_csv, history_to_json

__all__ = ["LieGGCallback", "LieGGWarning", "default_input_fn", "Evaluation", "PREFIX"]


class _FromEngine:
    """A read-only attribute of the callback, read from its engine (``engine.<path>``)."""

    def __init__(self, path: str, doc: str) -> None:
        self.get = attrgetter(path)
        self.__doc__ = doc

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self if obj is None else self.get(obj.engine)


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
    checkpoint. A skipped evaluation leaves no old value there (NaN, which ``ModelCheckpoint``
    ranks last; without ``strict``, a metric only an ``EarlyStopping`` watches is removed and
    it skips its check): see :mod:`lightning_liegg._monitors`.

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
            ``module(x, extra)`` when ``input_fn`` returns an ``extra``. When ``input_fn``
            returns no extra part, ``forward_fn`` is called as ``(module, x)``.
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
        tangent_cache_mb: memory (MB, default 256) for the cached samples' input tangents
            (``action.dim`` times the samples' size, e.g. 6 MB for 512 28x28 images under
            gl(2)): model-independent, computed at the first evaluation and reused (also with
            ``layers``); above the budget recomputed each time, 0 never kept; not saved.
        transforms: discrete transforms, a dict name -> callable ``x -> g x`` on a batch
            (``lg.transforms.hflip``, ``rot90(1)``, ``d4()``, any function): one forward pass
            each per evaluation gives per-sample errors |F(g x) - g F(x)| / |F(x)| (see
            :func:`lightning_liegg.transform_errors`), logged as ``liegg/discrete/<name>``
            (mean over all processes), histograms ``liegg/per_sample/discrete/<name>``, rows
            of the ``worst_samples`` image and a summary line. Without ``layers`` every
            evaluation also logs histograms ``liegg/per_sample/violation/most_symmetric``
            (and ``.../reference``) of :func:`lightning_liegg.symmetry_violation`, from the
            analysis' own passes, and the ``worst_samples`` image (rank zero's share).
        compile: the row computation under ``torch.compile`` (compiled at the first evaluation,
            reused with the new weights); the eager path answers, with one ``LieGGWarning``,
            where the model does not compile as one graph. Not with layers (docs/compiled.md).

    Attributes:
        history: one :class:`~lightning_liegg.Evaluation` record per evaluation
            (``step``, ``epoch``, ``stage``, ``seconds``, ``scalars``, ``spectrum``,
            ``relative_spectrum``, ``generators``, ``bias``);
            saved in checkpoints as plain JSON, so a resumed run continues its curves. With
            ``layers``, each record's ``layers`` holds the per-layer results.
        last_report: the :class:`SymmetryReport` of the last evaluation.
        engine: the :class:`~lightning_liegg._engine.EvaluationEngine` that runs each
            evaluation (samples, analysis, records, loggers, figures); the callback decides
            when, the engine does the rest.
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
        forward_fn: Callable[..., Any] | None = None,
        print_summary: bool = True,
        layers: Any = None,
        tangent_cache_mb: float = TANGENT_CACHE_MB,
        transforms: dict[str, Callable[[Tensor], Tensor]] | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__()
        settings = AnalysisSettings.build(
            action,
            reduction,
            output_transform,
            reference,
            ad_mode,
            output_action,
            forward_fn,
            chunk_size,
            layers,
            compile,
        )
        _validate_init_configuration(
            every_n_epochs=every_n_epochs,
            every_n_train_steps=every_n_train_steps,
            num_generators=num_generators,
            chunk_size=chunk_size,
            filmstrip_samples=filmstrip_samples,
            media_budget=media_budget,
            tangent_cache_mb=tangent_cache_mb,
        )
        self.every_n_train_steps = every_n_train_steps
        if every_n_epochs is None and every_n_train_steps is None:
            every_n_epochs = 1
        self.every_n_epochs = every_n_epochs
        self.evaluate_at_start = evaluate_at_start
        self.chunk_size = chunk_size
        self.media_budget = media_budget
        self.background_rendering = background_rendering
        self.engine = EvaluationEngine(
            settings,
            num_samples=num_samples,
            input_fn=input_fn,
            num_generators=num_generators,
            log_images=log_images,
            filmstrip_samples=filmstrip_samples,
            media_budget=media_budget,
            background_rendering=background_rendering,
            prog_bar=prog_bar,
            print_summary=print_summary,
            strict=strict,
            tangent_cache_mb=tangent_cache_mb,
            transforms=transforms,
        )

    # -- read-only views of the settings and the engine ---------------------------------------
    action = _FromEngine("settings.action", "How generators act on the inputs.")
    output_action = _FromEngine("settings.output_action", "How generators act on the outputs.")
    reference = _FromEngine("settings.reference", "The reference basis (k, p, q), or None.")
    reduction = _FromEngine("settings.reduction", '``"none"`` or ``"sum"``.')
    ad_mode = _FromEngine("settings.ad_mode", '``"auto"``, ``"forward"`` or ``"reverse"``.')
    output_transform = _FromEngine("settings.output_transform", "Applied to outputs first.")
    forward_fn = _FromEngine("settings.forward_fn", "``(module, x[, extra]) -> outputs``.")
    layers = _FromEngine("settings.layers", "The intermediate representations analysed too.")
    compile = _FromEngine("settings.compile", "Whether the rows run under torch.compile.")
    strict = _FromEngine("strict", "Raise on a failed analysis instead of skipping it.")
    num_samples = _FromEngine("cache.num_samples", "Size of the cached sample set.")
    input_fn = _FromEngine("cache.input_fn", "Maps a batch to the model input.")
    num_generators = _FromEngine("num_generators", "Generators the records and figures keep.")
    log_images = _FromEngine("log_images", "Whether figures are logged (rank zero).")
    filmstrip_samples = _FromEngine("filmstrip_samples", "Samples shown in the filmstrip.")
    prog_bar = _FromEngine("prog_bar", "Whether the relative variance goes to the progress bar.")
    print_summary = _FromEngine("print_summary", "Whether the summary is printed.")
    samples = _FromEngine("samples", "The cached inputs (n, ...) on CPU, or None.")
    last_report = _FromEngine("last_report", "The last evaluation's report, or None.")
    last_layer_report = _FromEngine("last_layer_report", "With layers, its per-layer report.")
    transforms = _FromEngine("transforms", "The discrete transforms followed, or None.")
    last_per_sample = _FromEngine("last_per_sample", "The last per-sample results, or None.")

    @property
    def history(self) -> list[Evaluation]:
        """One record per evaluation, oldest first (restored from checkpoints)."""
        return self.engine.history

    @history.setter
    def history(self, records: list[Evaluation]) -> None:
        self.engine.history = list(records)

    # -- checkpoint state ---------------------------------------------------------------------
    @property
    @override
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

    @override
    def state_dict(self) -> dict[str, Any]:
        """The evaluation history as plain JSON (lists, floats, strings)."""
        return {"history": [record.to_dict() for record in self.history]}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the history so that a resumed run continues its curves."""
        self.history = [Evaluation.from_dict(d) for d in state_dict.get("history", [])]

    # -- hooks --------------------------------------------------------------------------------
    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Check ``layers`` against the model; rank zero: say which loggers show no figures."""
        self.engine.begin(Run.from_trainer(trainer), pl_module)

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Rank zero: warn once per cause of skipped evaluations, print the summary."""
        self.engine.end(Run.from_trainer(trainer))

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Cache the samples and evaluate the untrained (or resumed) model."""
        self.engine.start_figures(Run.from_trainer(trainer), total_steps=Run.total_steps(trainer))
        if trainer.ckpt_path is not None and trainer.is_global_zero:  # a resumed fit
            with self.engine.warner.guard("LieGG could not mark the resumed run in TensorBoard"):
                self.engine.loggers.mark_restart(trainer.loggers, int(trainer.global_step) + 1)
        self.engine.collect(lambda: SampleCache.loader(trainer, pl_module))
        if self.evaluate_at_start:
            self._evaluate(trainer, pl_module, stage="fit")

    @override
    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Under ``trainer.validate()``, cache samples from its dataloader if not done yet."""
        if not trainer.sanity_checking and trainer.state.fn == "validate":
            self.engine.collect(lambda: SampleCache.loader(trainer, pl_module))

    @override
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

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """At the end of validate(), log the figures and print the summary."""
        if not trainer.sanity_checking and trainer.state.fn == "validate":
            run = Run.from_trainer(trainer)
            self.engine.flush(run, wait=True)
            self.engine.end(run)

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Without a validation loop, evaluate at the end of training epochs instead."""
        if not SampleCache.has_validation(trainer, pl_module) and self._epoch_due(
            trainer.current_epoch
        ):
            self._evaluate(trainer, pl_module, stage="fit")

    @override
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
        if self.engine.pending:
            self.engine.flush(Run.from_trainer(trainer))

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Draw the last evaluation's figures if the budget held them back; log all pending."""
        self.engine.finish()
        self.engine.flush(Run.from_trainer(trainer), wait=True)

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Log what is left and stop the rendering process at the end of fit/validate."""
        try:
            self.engine.flush(Run.from_trainer(trainer), wait=True)
        finally:
            self.engine.monitors.restore()
            self.engine.close()

    # -- when ---------------------------------------------------------------------------------
    def _epoch_due(self, epoch: int) -> bool:
        """Whether the end of (0-based) ``epoch`` is an evaluation point."""
        n = self.every_n_epochs
        return n is not None and (epoch + 1) % n == 0

    def _step_due(self, global_step: int) -> bool:
        """Whether ``global_step`` (optimizer steps done) is an evaluation point."""
        n = self.every_n_train_steps
        return n is not None and global_step > 0 and global_step % n == 0

    def _evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        run = Run.from_trainer(trainer)
        self.engine.evaluate(pl_module, run, trainer.global_step, trainer.current_epoch, stage)

    # -- export -------------------------------------------------------------------------------
    def custom_scalars_layout(self) -> dict[str, dict[str, list]]:
        """A TensorBoard custom-scalars page with every liegg curve, one quantity per chart."""
        return custom_scalars_layout(self.reference is not None, dim=self.action.dim)

    def to_json(self, path: str | Path) -> None:
        """Write the history as JSON (a list of evaluation dicts)."""
        history_to_json(self.history, path)

    def to_csv(self, path: str | Path) -> None:
        """Write one row per evaluation: step, epoch, stage, scalars and relative spectrum."""
        history_to_csv(self.history, path)


def _validate_init_configuration(
    every_n_epochs: int | None,
    every_n_train_steps: int | None,
    num_generators: int,
    chunk_size: int,
    filmstrip_samples: int,
    media_budget: float | None,
    tangent_cache_mb: float,
) -> None:
    """The constructor's checks beyond the analysis options (``AnalysisOptions`` checks those)."""
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
    check_fraction("media_budget", media_budget, optional=True)
    check_number("tangent_cache_mb", tangent_cache_mb, minimum=0.0)
