"""One evaluation from samples to output, without a Trainer: :class:`EvaluationEngine`.

The engine owns everything an evaluation does: the sample and tangent caches, the analysis on
this process, the one all-reduce of the packed state (with the failure flag), the reports, the
:class:`~lightning_liegg.history.Evaluation` record, the scalars for the loggers and the
monitors, the figures under their time budget (with the model's outputs on the filmstrip's
warped frames) and the end-of-run summary. :class:`~lightning_liegg.LieGGCallback` calls it
from its hooks; :func:`lightning_liegg.replay` calls the same public methods over checkpoints.
What the engine needs of its host (loggers, rank, the collective, the precision) comes in a
:class:`Run`, built from a Trainer by :meth:`Run.from_trainer` or by hand.

Every call into :mod:`lightning_liegg.functional`'s internals from the Lightning side is in
the first section of this module (:class:`AnalysisSettings`, :func:`local_state`,
:func:`reports_of`, :class:`PackedState`); the metric uses them too, so the metric and the
callback share one packed state and one reduction of it.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from . import _per_sample  # per-sample violations, discrete transforms
from ._loggers import PREFIX, LoggerDispatch, publish_metrics
from ._media import FigurePayload, Figures, filmstrip_frames, filmstrip_kind
from ._monitors import Monitors
from ._samples import SampleCache
from ._warnings import Warner
from .exceptions import LieGGError
from .functional._autodiff.isolation import isolated
from .functional.actions.grid import (
    ImageAction,
    SignalAction,
    VolumeAction,
    channels_last_hint,
    looks_channels_last,
)
from .functional.analysis import _compute, _update, check_reference
from .functional.layers import OUTPUT, resolve_layers
from .functional.layerwise_report import LayerwiseReport
from .functional.options import AnalysisOptions
from .functional.report import SymmetryReport
from .functional.violation import _update_per_sample
from .history import Evaluation, summary_table

__all__ = [
    "AnalysisSettings",
    "EvaluationEngine",
    "PackedState",
    "Run",
    "local_state",
    "reports_of",
    "OUTPUT",
]

#: Output actions whose outputs the filmstrip draws beside inputs of the same kind.
_OUTPUT_KINDS = {ImageAction: "image", SignalAction: "signal", VolumeAction: "volume"}


# -- the bridge to lightning_liegg.functional -------------------------------------------------
@dataclass(frozen=True)
class AnalysisSettings:
    """The analysis options of a callback or metric: the functional options plus the reference.

    The options themselves are one :class:`~lightning_liegg.functional.options.AnalysisOptions`
    (checked once, when built); the attributes below read them by name.

    Attributes:
        options: the row engine's options (action, reduction, output transform, AD mode,
            output action, chunk size, layers, forward_fn, compile).
        reference: the reference algebra's basis ``(k, p, q)`` (float64), or None.
        reference_label: how the summary names the reference: its name (``"rotation2d"``),
            or its dimension and generator shape when it came as a tensor; None without one.
    """

    options: AnalysisOptions
    reference: Tensor | None = None
    reference_label: str | None = None

    @classmethod
    def build(
        cls,
        action: Any,
        reduction: Any = "none",
        output_transform: Any = None,
        reference: Any = None,
        ad_mode: Any = "auto",
        output_action: Any = None,
        forward_fn: Any = None,
        chunk_size: int | None = None,
        layers: Any = None,
        compile: Any = False,
    ) -> AnalysisSettings:
        """Check every option and resolve the reference (a name, nested lists or a tensor).

        Raises:
            LieGGError: on an option that does not fit (what was expected, what came).
        """
        options = AnalysisOptions(
            action,
            reduction,
            output_transform,
            ad_mode,
            output_action,
            chunk_size,
            layers=list(layers) if isinstance(layers, tuple) else layers,
            forward_fn=forward_fn,
            compile=compile,
        )
        basis = check_reference(reference, action)
        if basis is None:
            label = None
        elif isinstance(reference, str):
            label = reference
        else:
            k, p, q = basis.shape
            label = f"a {k}-dimensional reference of {p}x{q} generators"
        return cls(options=options, reference=basis, reference_label=label)

    action = property(lambda self: self.options.action, doc="How generators act on inputs.")
    reduction = property(lambda self: self.options.reduction, doc='"none" or "sum".')
    output_transform = property(
        lambda self: self.options.output_transform, doc="Applied to the outputs first."
    )
    ad_mode = property(lambda self: self.options.ad_mode, doc='"auto", "forward" or "reverse".')
    output_action = property(
        lambda self: self.options.output_action, doc="The output action, or None."
    )
    forward_fn = property(lambda self: self.options.forward_fn, doc="How the model is called.")
    chunk_size = property(lambda self: self.options.chunk_size, doc="Samples per chunk.")
    layers = property(lambda self: self.options.layers, doc="The layers analysed, as given.")
    compile = property(lambda self: self.options.compile, doc="Rows under torch.compile.")

    def resolve_layers(self, module: Any) -> dict[Any, Any] | None:
        """``layers`` checked against ``module``: ``{name: output action}`` (None: no layers).

        For ``"auto"`` the dict carries the key ``...`` (modules that never run are dropped).
        """
        if self.layers is None:
            return None
        return resolve_layers(module, self.layers, self.action, self.reduction)


def local_state(
    module: Any,
    x: Tensor,
    settings: AnalysisSettings,
    layer_spec: dict[Any, Any] | None = None,
    per_sample: bool = False,
    **runtime: Any,
) -> tuple[Tensor, int, dict[str, Tensor], Tensor | None]:
    """This process's float64 Gram matrix ``(m, m)``, sample count, per-layer Gram matrices.

    Args:
        module: the model (``nn.Module`` or callable).
        x: inputs ``(N, ...)`` for ``settings.action``.
        settings: the analysis options.
        layer_spec: :meth:`AnalysisSettings.resolve_layers`'s result, or None (output only).
        per_sample: without layers, also the per-sample Gram matrices, from the same passes.
        runtime: ``prepare``, ``device``, ``extra``, ``tangents``, as the analysis takes them.

    Returns:
        ``(gram, n, layer_grams, sample_grams)``; ``layer_grams`` in forward order, without
        ``"output"``; ``sample_grams`` ``(n, m, m)`` on CPU with ``per_sample``, else None.
    """
    options = settings.options.replace(layers=layer_spec, **runtime)
    if layer_spec is None and per_sample:
        gram, n, sample_grams = _update_per_sample(module, x, options)
        return gram, n, {}, sample_grams
    grams, n = _update(module, x, options)
    gram = grams.pop(OUTPUT)
    return gram, n, grams, None


def reports_of(
    gram: Tensor,
    n: int,
    settings: AnalysisSettings,
    layer_grams: Mapping[str, Tensor] | None = None,
    num_generators: int = 4,
    drop_zero: bool = True,
) -> tuple[SymmetryReport, LayerwiseReport | None]:
    """The report of a summed state, and with layers the per-layer reports.

    With ``drop_zero``, layers whose Gram matrix is zero everywhere (an ``"auto"`` module that
    did not run on any process) are left out; the layer report is in the order of
    ``layer_grams``, ``"output"`` last.
    """
    report = _compute(gram, n, settings.action, settings.reference, num_generators)
    if layer_grams is None:
        return report, None
    reports = {
        name: _compute(g, n, settings.action, settings.reference, num_generators)
        for name, g in layer_grams.items()
        if not drop_zero or bool(g.abs().sum() > 0)
    }
    reports[OUTPUT] = report
    return report, LayerwiseReport(reports)


@dataclass(frozen=True)
class PackedState:
    """The state of an analysis as one float64 vector: [Gram, layer Grams, N, failures].

    Sums of packed states (over batches, over processes) are again a packed state, so one
    all-reduce (a sum) syncs everything, and a failure on any process is seen on all of them.
    The metric keeps this vector as its state; the engine reduces it once per evaluation.

    Args:
        dim: the number of generator coordinates m (``action.dim``).
        names: the layers' names, in state order (the same on every process).
    """

    dim: int
    names: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        """Length of the packed vector."""
        return self.dim * self.dim * (1 + len(self.names)) + 2

    def zeros(self, device: torch.device | str | None = None) -> Tensor:
        """An empty state (nothing analysed, no failure)."""
        return torch.zeros(self.size, dtype=torch.float64, device=device)

    def pack(
        self,
        gram: Tensor | None,
        n: int,
        layer_grams: Mapping[str, Tensor] | None = None,
        failed: bool = False,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """The packed vector of one process's state (``gram`` None: an empty state)."""
        out = self.zeros(device if gram is None else gram.device)
        mm = self.dim * self.dim
        if gram is not None:
            out[:mm] = gram.reshape(-1).to(out)
        for i, name in enumerate(self.names, start=1):
            if layer_grams is not None and name in layer_grams:
                out[i * mm : (i + 1) * mm] = layer_grams[name].reshape(-1).to(out)
        out[-2] = float(n)
        out[-1] = float(failed)
        return out

    def unpack(self, packed: Tensor) -> tuple[Tensor, int, dict[str, Tensor], int]:
        """``(gram, n, {layer: gram}, failures)`` of a (summed) packed vector."""
        m, mm = self.dim, self.dim * self.dim
        layers = {
            name: packed[i * mm : (i + 1) * mm].reshape(m, m)
            for i, name in enumerate(self.names, start=1)
        }
        n, failures = int(round(float(packed[-2]))), int(round(float(packed[-1])))
        return packed[:mm].reshape(m, m), n, layers, failures

    def reduce(self, packed: Tensor, reduce: Callable[[Tensor], Tensor] | None) -> Tensor:
        """The sum over processes with ``reduce`` (a sum all-reduce), or ``packed`` alone."""
        return packed if reduce is None else reduce(packed.clone())


# -- the host of an evaluation ----------------------------------------------------------------
@dataclass
class Run:
    """What an evaluation needs from whoever runs it: a Trainer, or replay.

    Attributes:
        loggers: Lightning loggers that get the scalars (and figures, where they show them).
        is_global_zero: whether this process logs and draws.
        reduce: the sum all-reduce of a tensor across processes; None on one process.
        convert_input: casts a chunk of inputs for the model (the precision plugin's).
        forward_context: the context the model runs in (the precision plugin's).
        metrics: where the scalars go for the monitors (``trainer.callback_metrics``), or None.
        progress_bar: ``trainer.progress_bar_metrics``, or None.
        callbacks: the run's other callbacks (the monitors among them are told about skips).
    """

    loggers: list[Any] = field(default_factory=list)
    is_global_zero: bool = True
    reduce: Callable[[Tensor], Tensor] | None = None
    convert_input: Callable[[Tensor], Tensor] = lambda x: x
    forward_context: Callable[[], AbstractContextManager[Any]] = nullcontext
    metrics: dict[str, Any] | None = None
    progress_bar: dict[str, Any] | None = None
    callbacks: list[Any] = field(default_factory=list)

    @staticmethod
    def total_steps(trainer: Any) -> float | None:
        """The run's optimizer steps, if Lightning can tell (for the figures' landmarks)."""
        try:
            return float(trainer.estimated_stepping_batches)
        except Exception:  # noqa: BLE001 - unknown length (iterable datasets, ...)
            return None

    @classmethod
    def from_trainer(cls, trainer: Any) -> Run:
        """The run of a Lightning Trainer (either namespace)."""
        precision = trainer.precision_plugin
        reduce = None
        if trainer.world_size > 1:
            strategy = trainer.strategy

            def reduce(t: Tensor) -> Tensor:
                out = strategy.reduce(t.to(strategy.root_device), reduce_op="sum")
                return out.to(t.device)

        return cls(
            loggers=list(trainer.loggers),
            is_global_zero=bool(trainer.is_global_zero),
            reduce=reduce,
            convert_input=precision.convert_input,
            forward_context=precision.forward_context,
            metrics=trainer.callback_metrics,
            progress_bar=trainer.progress_bar_metrics,
            callbacks=list(trainer.callbacks),
        )


# -- the engine -------------------------------------------------------------------------------
class EvaluationEngine:
    """One evaluation, from the cached samples to the loggers, without a Trainer.

    A run (a fit, a validate, a replay) goes: :meth:`begin`, then per evaluation
    :meth:`evaluate` (and :meth:`flush` now and then for figures drawn in the background),
    then :meth:`finish` and :meth:`end`. Samples come from :meth:`collect`.

    Args:
        settings: the analysis options.
        num_samples: size of the cached sample set (per process).
        input_fn: maps a batch to the model input (or ``(x, extra)``).
        num_generators: the most symmetric generators the records and figures keep.
        log_images: draw figures (rank zero, loggers that show them).
        filmstrip_samples: samples in the filmstrip.
        media_budget: share of training time the figures may cost, or None.
        background_rendering: draw in a worker process.
        prog_bar: the relative variance (and bias) in the progress bar.
        print_summary: print the summary at :meth:`end`.
        strict: raise instead of warning and skipping.
        tangent_cache_mb: memory for the samples' input tangents.
        transforms: discrete transforms ``{name: x -> g x}`` measured at each evaluation.

    Attributes:
        history: every evaluation's record (kept in checkpoints by the callback).
        records: the records of this run; ``attempted``: evaluations attempted in it.
        last_report: the last evaluation's report; ``last_layer_report``: its per-layer one.
    """

    def __init__(
        self,
        settings: AnalysisSettings,
        num_samples: int = 512,
        input_fn: Callable[[Any], Any] | None = None,
        num_generators: int = 4,
        log_images: bool = True,
        filmstrip_samples: int = 4,
        media_budget: float | None = 0.05,
        background_rendering: bool = False,
        prog_bar: bool = False,
        print_summary: bool = True,
        strict: bool = False,
        tangent_cache_mb: float = 256.0,
        transforms: dict[str, Callable[[Tensor], Tensor]] | None = None,
    ) -> None:
        self.settings = settings
        self.transforms = None if transforms is None else _per_sample.check_transforms(transforms)
        self.last_per_sample: _per_sample.PerSample | None = None
        self._sample_grams: Tensor | None = None
        self.num_generators = num_generators
        self.log_images = log_images
        self.filmstrip_samples = filmstrip_samples
        self.prog_bar = prog_bar
        self.print_summary = print_summary
        self.strict = strict
        self.cache = SampleCache(num_samples, input_fn)
        self.cache.tangents.max_mb = float(tangent_cache_mb)
        self.loggers = LoggerDispatch(reference=settings.reference is not None)
        self.figures = Figures(media_budget, background_rendering)
        self.warner = Warner(strict)
        self.monitors = Monitors(PREFIX, strict)
        self.history: list[Evaluation] = []
        self.records: list[Evaluation] = []
        self.attempted = 0
        self.last_report: SymmetryReport | None = None
        self.last_layer_report: LayerwiseReport | None = None
        self._layer_spec: dict[Any, Any] | None = None
        self._forward_order: list[str] = []
        self._no_samples: str | None = None

    # -- samples ------------------------------------------------------------------------------
    @property
    def samples(self) -> Tensor | None:
        """The cached inputs ``(n, ...)`` on CPU, or None."""
        return self.cache.samples

    @property
    def extra(self) -> Any:
        """The rest of each sample's input (``input_fn``'s ``extra``), or None."""
        return self.cache.extra

    def collect(self, loader: Callable[[], Iterable | None] | Iterable | None) -> None:
        """Collect the samples once: from ``loader`` (or the loader it returns when called).

        A failure skips every evaluation (counted, with the cause) unless strict.
        """
        if self.cache.samples is not None:
            return
        try:
            samples = self.cache.collect(loader() if callable(loader) else loader)
        except Exception as err:  # noqa: BLE001 - every evaluation is then skipped, and counted
            if self.strict:
                raise
            self._no_samples = f"could not collect samples: {type(err).__name__}: {err}"
            return
        action = self.settings.action
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

    # -- a run --------------------------------------------------------------------------------
    def draws(self, run: Run) -> bool:
        """Whether this process draws figures: rank zero, with a logger that shows them."""
        return (
            self.log_images
            and run.is_global_zero
            and bool(LoggerDispatch.media_loggers(run.loggers))
        )

    def begin(self, run: Run, module: Any = None) -> None:
        """Start a run: reset its counts, check ``layers`` against ``module``, check loggers.

        Args:
            run: the host.
            module: the model analysed (``layers`` are checked against it), or None.
        """
        self.attempted, self.records, self.warner.skipped = 0, [], {}
        self.monitors.reset()
        if module is not None:
            self.set_model(module)
        if self.log_images and run.is_global_zero and run.loggers:
            self.loggers.check(run.loggers, self.warner)

    def start_figures(self, run: Run, fit: bool = True, total_steps: float | None = None) -> None:
        """Start the figures' clock (with ``fit``) and warm up the renderer where it draws.

        Args:
            run: the host.
            fit: the figures' time budget runs from now; else no budget clock.
            total_steps: the run's length in steps, so that its middle is drawn too.
        """
        self.figures.start(fit=fit, warm_up=self.draws(run), total_steps=total_steps)

    def set_model(self, module: Any) -> None:
        """Check ``layers`` against ``module`` (the model the next evaluations analyse)."""
        self._layer_spec = self.settings.resolve_layers(module)

    def finish(self) -> None:
        """End of fit: draw the last evaluation's figures if the budget held them back."""
        self.figures.finish()

    def end(self, run: Run, title: str = "LieGG summary") -> None:
        """Rank zero: one warning per cause of skipped evaluations, and the summary."""
        if not run.is_global_zero:
            return
        self.warner.report_skips(self.attempted)
        if self.print_summary:
            describe = getattr(self.settings.action, "format_generator", None)
            skipped = self.warner.skipped
            print(
                summary_table(
                    self.records,
                    self.attempted,
                    skipped,
                    title,
                    describe,
                    reference=self.settings.reference_label,
                )
            )

    def close(self) -> None:
        """Stop the rendering process."""
        self.figures.close()

    # -- one evaluation -----------------------------------------------------------------------
    def _layer_names(self) -> tuple[str, ...]:
        """The layers' state order: the same on every rank (the spec, not the forward order)."""
        return tuple(k for k in (self._layer_spec or {}) if k is not ...)

    def analyse(self, module: Any, run: Run, step: int = 0) -> SymmetryReport | None:
        """Analyse the samples on every process and return the all-reduced report.

        Every process joins exactly one collective (the sum of the packed state), also when
        its own analysis failed, so a failure can never hang a distributed job. Returns None
        for a skipped evaluation (a warning, or the error under ``strict``); with ``layers``
        :attr:`last_layer_report` is set too.
        """
        state = PackedState(self.settings.action.dim, self._layer_names())
        device = getattr(module, "device", None)
        samples = self.cache.samples
        self._sample_grams = None
        error: BaseException | None = None
        try:
            if samples is None:
                packed = state.zeros(device)
            else:
                gram, n, layer_grams = self._local_state(module, samples, run, device)
                packed = state.pack(gram, n, layer_grams)
        except Exception as err:  # noqa: BLE001 - reported after the collective
            error, packed = err, state.pack(None, 0, failed=True, device=device)
        gram, total, layer_grams, failures = state.unpack(state.reduce(packed, run.reduce))
        if failures:
            if error is None:  # warn once per cause: the failing rank, or rank zero for others
                error = RuntimeError(f"LieGG analysis failed on {failures} other process(es)")
                if not (self.strict or run.is_global_zero):
                    return None
            self.warner.skip(error, step)
            return None
        if total == 0:
            if run.is_global_zero:
                self.warner.skip(
                    self._no_samples or "no samples to analyse (empty dataloader?)", step
                )
            return None
        order = [k for k in self._forward_order if k in layer_grams]
        order += [k for k in layer_grams if k not in order]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a degenerate report is handled just below
            report, layer_report = reports_of(
                gram,
                total,
                self.settings,
                {k: layer_grams[k] for k in order} if self._layer_spec is not None else None,
                self.num_generators,
            )
        if report.degenerate or not bool(torch.isfinite(report.spectrum).all()):
            error = LieGGError(
                f"Expected a non-zero, finite polarization matrix at step {step}, but it is "
                "zero or not finite."
            )
            if self.strict or run.is_global_zero:
                self.warner.skip(error, step)
            return None
        self.last_layer_report = layer_report
        return report

    def _local_state(
        self, module: Any, samples: Tensor, run: Run, device: Any
    ) -> tuple[Tensor, int, dict[str, Tensor]]:
        def prepare(chunk: Tensor) -> Tensor:
            return run.convert_input(chunk.to(device) if device is not None else chunk)

        with run.forward_context():
            gram, n, layer_grams, self._sample_grams = local_state(
                module,
                samples,
                self.settings,
                self._layer_spec,
                per_sample=self._layer_spec is None,  # violations from the same passes
                prepare=prepare,
                device=device,
                extra=self.cache.extra,
                tangents=self.cache.tangents.for_samples(samples, self.settings.action),
            )
        if layer_grams:
            self._forward_order = list(layer_grams)
        return gram, n, layer_grams

    def evaluate(
        self, module: Any, run: Run, step: int, epoch: int = 0, stage: str = "fit"
    ) -> Evaluation | None:
        """Evaluate ``module`` at ``step``: analyse, record, publish, log, offer the figures.

        Evaluating the same ``(step, stage)`` twice in a row does nothing the second time
        (a resumed run, a repeated validation). Returns the record, or None when skipped;
        a skipped evaluation leaves no old ``liegg/`` value for the monitors (see
        :class:`~lightning_liegg._monitors.Monitors`).
        """
        step = int(step)
        if self.history and (self.history[-1].step, self.history[-1].stage) == (step, stage):
            return None  # already evaluated these weights
        self.attempted += 1
        start = time.perf_counter()
        report = self.analyse(module, run, step)
        seconds = time.perf_counter() - start
        if report is None:
            self.monitors.skipped(run, self.records)
            return None
        record = Evaluation.from_report(
            report,
            step,
            epoch,
            stage,
            seconds,
            self.num_generators,
            previous=self.history[-1] if self.history else None,
            output_action=self._output_action_name(),
            layers=self.last_layer_report if self._layer_spec is not None else None,
        )
        per_sample = self._per_sample(module, run, report)  # every process: a collective
        record = dataclasses.replace(record, scalars={**record.scalars, **per_sample.means})
        self.history.append(record)
        self.records.append(record)
        self.last_report = report
        self.monitors.published(run)
        publish_metrics(run.metrics, run.progress_bar, record, self.prog_bar, self.loggers.prefix)
        if run.is_global_zero:
            with self.warner.guard("LieGG could not log its results", once=False):
                self._log(module, run, report, record)
        return record

    def _per_sample(self, module: Any, run: Run, report: SymmetryReport) -> _per_sample.PerSample:
        """Per-sample violations and discrete errors (see :mod:`lightning_liegg._per_sample`)."""
        device = getattr(module, "device", None)

        def prepare(chunk: Tensor) -> Tensor:
            return run.convert_input(chunk.to(device) if device is not None else chunk)

        self.last_per_sample = _per_sample.evaluate(
            run,
            module,
            report,
            self.settings.action,
            self._sample_grams,
            self.transforms,
            self.cache.samples,
            self.warner,
            output_transform=self.settings.output_transform,
            chunk_size=self.settings.chunk_size,
            prepare=prepare,
            forward_fn=self.settings.forward_fn,
            extra=self.cache.extra,
        )
        return self.last_per_sample

    def _output_action_name(self) -> str | None:
        out = self.settings.output_action
        return None if out is None else repr(out)

    # -- logging (rank zero) ------------------------------------------------------------------
    def _log(self, module: Any, run: Run, report: SymmetryReport, record: Evaluation) -> None:
        self.loggers.log_scalars(run.loggers, record)
        draws = self.draws(run)
        if self.last_per_sample is not None and self.log_images:  # histograms, worst samples
            # not charged to the figures' budget: a few tens of ms (docs/per_sample_and_discrete.md)
            # that would otherwise hold back the first evaluations' figures of a short run
            # an image that cannot be written (a full disk) costs that image only
            with self.warner.guard("LieGG could not log its per-sample histograms and image"):
                _per_sample.log_per_sample(
                    run.loggers, record.step, self.last_per_sample, self.cache.samples,
                    self.loggers.prefix, images=draws,
                )  # fmt: skip
        if not draws:
            return
        self.loggers.log_tensorboard(run.loggers, report, record.step)
        history, samples = list(self.history), self.cache.samples
        outputs = moved = None
        if self.shows_outputs():  # now: the weights may change before the figures are drawn
            with self.warner.guard("LieGG could not draw the outputs in its filmstrip"):
                moved = filmstrip_frames(  # warped once: the payload reuses them
                    self.settings.action, samples, report.generators[0], self.filmstrip_samples
                )
                outputs = self.filmstrip_outputs(module, run, moved)
        settings = self.settings

        def build() -> FigurePayload:
            return FigurePayload.build(
                report,
                history,
                settings.action,
                samples,
                self.num_generators,
                self.filmstrip_samples,
                equivariance=settings.output_action is not None,
                outputs=outputs,
                moved=moved,
            )

        self.figures.offer(record.step, build)
        self.flush(run)

    def shows_outputs(self) -> bool:
        """Whether the filmstrip shows the model's outputs: grid outputs of the inputs' kind."""
        kind = filmstrip_kind(self.settings.action, self.cache.samples)
        return kind is not None and _OUTPUT_KINDS.get(type(self.settings.output_action)) == kind

    def filmstrip_outputs(
        self, module: Any, run: Run, moved: tuple[Tensor, Tensor] | None
    ) -> Tensor | None:
        """The model's outputs on the filmstrip's frames ``(T, n, ...)``, on CPU (no side effects).

        ``moved``: the frames and times (:func:`~lightning_liegg._media.filmstrip_frames`).
        The output transform is applied, as in the analysis; the output action must accept
        the result (else the filmstrip shows the inputs only).
        """
        out_action = self.settings.output_action
        if moved is None or out_action is None:
            return None
        frames = moved[0]
        device = module.device
        flat = frames.reshape(-1, *frames.shape[2:])
        with isolated(module, device), run.forward_context():
            out = module(run.convert_input(flat.to(device)))
            if self.settings.output_transform is not None:
                out = self.settings.output_transform(out)
        if not isinstance(out, Tensor):
            raise LieGGError(
                f"Expected the model's output to be a tensor for the filmstrip, but got "
                f"{type(out).__name__}."
            )
        out_action.check_input(out, name="model output")
        out = out.detach().to("cpu", torch.float32)
        return out.reshape(*frames.shape[:2], *out.shape[1:])

    def flush(self, run: Run, wait: bool = False) -> None:
        """Log the figures that are ready (all of them with ``wait``), each at its step."""
        for step, images in self.figures.collect(wait=wait):
            if isinstance(images, BaseException):
                self.warner.fail(images, f"LieGG could not draw its figures for step {step}")
            else:
                start = time.perf_counter()
                # also from the training hooks (figures drawn in the background): a logger
                # that cannot write them (a full disk) is a warning, never the end of training
                with self.warner.guard("LieGG could not log its figures"):
                    self.loggers.log_images(run.loggers, step, images)
                self.figures.charge(time.perf_counter() - start)  # counts against the budget

    @property
    def pending(self) -> int:
        """How many evaluations wait for their figures."""
        return self.figures.pending
