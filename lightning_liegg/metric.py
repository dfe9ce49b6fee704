"""LieGG as a torchmetrics Metric: stream the Gram matrix over batches, sync it under DDP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from ._engine import AnalysisSettings, PackedState, local_state, reports_of
from .exceptions import LieGGError
from .functional.actions import Action
from .functional.layerwise_report import LayerwiseReport
from .functional.report import SymmetryReport

__all__ = ["LieGG"]


class LieGG(Metric):
    """Streaming LieGG: ``update(model, x)`` per batch, ``compute()`` gives a SymmetryReport.

    The state is one float64 vector, the packed state
    :class:`~lightning_liegg._engine.PackedState` [Gram matrix E^T E ``(m, m)``, each layer's
    Gram matrix, sample count, failure count], summed across processes
    (``dist_reduce_fx="sum"``): the callback reduces the same packed state, so both give the
    same report. Memory does not grow with the number of samples, and the result under DDP is
    that of all ranks' samples together.

    Under DDP a failed ``update`` on one rank does not raise there (the other ranks would wait
    for it in ``compute`` forever): it is counted in the synced state, and ``compute`` raises
    a :class:`LieGGError` on every rank. On a single process ``update`` raises at once.

    Args:
        action: how generators act on the inputs.
        reduction: ``"none"`` or ``"sum"`` (see :func:`lightning_liegg.polarization_matrix`).
        output_transform: applied to the model outputs first.
        reference: optional ``(k, p, q)`` reference algebra for the symmetry bias.
        ad_mode: ``"auto"``, ``"forward"`` or ``"reverse"`` differentiation (see
            :func:`lightning_liegg.polarization_matrix`; the name of ``LieGGCallback``'s).
        output_action: for equivariant models, how the generators act on the outputs (see
            :func:`lightning_liegg.polarization_matrix`); ``None`` is invariance.
        layers: analyse intermediate representations too (see :func:`lightning_liegg.liegg`):
            submodule names, a dict name -> output action, or ``"auto"``. ``compute()`` then
            returns a :class:`~lightning_liegg.functional.layerwise_report.LayerwiseReport`.
            Each layer's Gram matrix is part of the packed state, in the order given.
            Explicit names are checked against the model at the first ``update``; with
            ``"auto"`` the state grows at the first ``update`` (under DDP every rank must call
            it, on the same model).
        compile: run the row computation under ``torch.compile`` (compiled once per model,
            batch shape and dtype; new weights reuse it); the eager path answers, with one
            ``LieGGWarning``, where the model does not compile as one graph (see
            ``docs/compiled.md``). Not used with ``layers``.
        kwargs: passed to ``torchmetrics.Metric`` (``sync_on_compute``, ``process_group``...).

    Example:
        >>> import torch, lightning_liegg as lg
        >>> metric = lg.LieGG(lg.VectorAction(dim=3), reference=lg.algebras.so(3))
        >>> model = lambda x: (x ** 2).sum(dim=1)
        >>> for _ in range(3):
        ...     metric.update(model, torch.randn(16, 3, dtype=torch.float64))
        >>> metric.compute().symmetry_dim
        3
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    state: Tensor

    def __init__(
        self,
        action: Action,
        reduction: str = "none",
        output_transform: Callable[[Any], Tensor] | None = None,
        reference: Tensor | str | None = None,
        ad_mode: str = "auto",
        output_action: Action | None = None,
        layers: Any = None,
        *,
        compile: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = AnalysisSettings.build(
            action,
            reduction,
            output_transform,
            reference,
            ad_mode,
            output_action,
            layers=layers,
            compile=compile,
        )
        self._error: BaseException | None = None
        self._layer_spec: dict[Any, Any] | None = None
        self._forward_order: list[str] | None = None
        names: list[str] = []
        if layers is not None and not (isinstance(layers, str) and layers == "auto"):
            names = list(layers)
        self._set_layout(names)

    # -- the settings, by name ----------------------------------------------------------------
    @property
    def action(self) -> Action:
        """How generators act on the inputs."""
        return self.settings.action

    @property
    def output_action(self) -> Action | None:
        """How generators act on the outputs (equivariance), or None."""
        return self.settings.output_action

    @property
    def reduction(self) -> str:
        """``"none"`` or ``"sum"``."""
        return self.settings.reduction

    @property
    def output_transform(self) -> Callable[[Any], Tensor] | None:
        """Applied to the model outputs first."""
        return self.settings.output_transform

    @property
    def reference(self) -> Tensor | None:
        """The reference algebra's basis ``(k, p, q)``, or None."""
        return self.settings.reference

    @property
    def ad_mode(self) -> str:
        """``"auto"``, ``"forward"`` or ``"reverse"``."""
        return self.settings.ad_mode

    @property
    def compile(self) -> bool:
        """Whether the rows run under ``torch.compile``."""
        return self.settings.compile

    @property
    def layers(self) -> Any:
        """The intermediate representations analysed too, as given."""
        return self.settings.layers

    # -- the packed state ---------------------------------------------------------------------
    def _set_layout(self, names: list[str]) -> None:
        """(Re)declare the packed state for these layers (before any update)."""
        for name in names:
            if not isinstance(name, str) or name in ("output", ""):
                raise LieGGError(
                    f"Expected submodule names in layers=, but got {name!r} (the final output "
                    'is analysed as "output" anyway).'
                )
        self._packing = PackedState(self.settings.action.dim, tuple(names))
        self.add_state("state", default=self._packing.zeros(), dist_reduce_fx="sum")

    @property
    def gram(self) -> Tensor:
        """The summed Gram matrix ``(m, m)`` (float64) of this process's state."""
        return self._packing.unpack(self.state)[0]

    @property
    def num_samples(self) -> Tensor:
        """The number of samples in this process's state (a float64 scalar)."""
        return self.state[-2]

    def update(self, model: Callable[[Tensor], Any], x: Tensor) -> None:  # type: ignore[override]
        """Add the polarization rows of ``model`` on the batch ``x`` ``(N, ...)``."""
        try:
            self.settings.action.check_input(x)
            if self.settings.layers is not None and self._layer_spec is None:
                spec = self.settings.resolve_layers(model)
                assert spec is not None
                if spec.pop(..., False):  # "auto": one packed part per module found
                    self._set_layout(list(spec))
                    spec = {**spec, ...: True}
                self._layer_spec = spec
            gram, n, layer_grams, _ = local_state(model, x, self.settings, self._layer_spec)
            if self._layer_spec is not None and self._forward_order is None:
                self._forward_order = list(layer_grams)
            packed = self._packing.pack(gram, n, layer_grams)
        except Exception as err:
            if not _distributed():
                raise
            self._error = err
            packed = self._packing.pack(None, 0, failed=True)
        with torch.inference_mode(False):
            state = self.state.clone() if self.state.is_inference() else self.state
            self.state = state + packed.to(state.device)

    def compute(self) -> SymmetryReport | LayerwiseReport:  # type: ignore[override]
        """The report over every sample seen since the last reset (all ranks under DDP).

        Raises:
            LieGGError: before any update, or when an update failed on any process.
        """
        gram, n, layer_grams, failures = self._packing.unpack(self.state)
        if failures:
            cause = self._error
            reason = f"{type(cause).__name__}: {cause}" if cause else "on another process"
            raise LieGGError(
                f"Expected every update(model, x) to succeed, but {failures} failed ({reason})."
            ) from cause
        if n < 1:
            raise LieGGError(
                "Expected at least one update(model, x) before compute(), but got none."
            )
        if self.settings.layers is None:
            return reports_of(gram, n, self.settings)[0]
        order = self._forward_order or list(layer_grams)  # layers that ran, forward order
        ordered = {name: layer_grams[name] for name in order if name in layer_grams}
        report, layer_report = reports_of(gram, n, self.settings, ordered, drop_zero=False)
        assert layer_report is not None
        return layer_report

    def reset(self) -> None:
        """Clear the state (and a remembered failure)."""
        super().reset()
        self._error = None

    def _apply(self, fn: Callable, *args: Any, **kwargs: Any) -> LieGG:
        # Keep the packed state in float64 whatever dtype the owner moves the metric to.
        out = super()._apply(fn, *args, **kwargs)
        self.state = self.state.to(torch.float64)
        return out


def _distributed() -> bool:
    """Whether several processes share this metric's state (a failure must not hang them)."""
    dist = torch.distributed
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
