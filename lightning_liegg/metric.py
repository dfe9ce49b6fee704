"""LieGG as a torchmetrics Metric: stream the Gram matrix over batches, sync it under DDP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from ._deprecation import renamed_argument, warn_renamed
from .exceptions import LieGGError
from .functional.actions import Action
from .functional.analysis import _compute, _compute_layers, _update, check_reference
from .functional.layers import OUTPUT, resolve_layers
from .functional.layerwise_report import LayerwiseReport
from .functional.options import AnalysisOptions
from .functional.report import SymmetryReport

__all__ = ["LieGG"]


class LieGG(Metric):
    """Streaming LieGG: ``update(model, x)`` per batch, ``compute()`` gives a SymmetryReport.

    The state is the float64 Gram matrix E^T E ``(m, m)``, the sample count and a failure
    count, all summed across processes (``dist_reduce_fx="sum"``), so memory does not grow with
    the number of samples and the result under DDP is that of all ranks' samples together.

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
            Each layer gets its own float64 Gram state (summed across processes), named
            ``layer_gram_<i>`` in the order given. Explicit names are checked against the
            model at the first ``update``; with ``"auto"`` the states are added at the first
            ``update`` (under DDP every rank must call it, on the same model).
        mode: deprecated name of ``ad_mode``.
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

    gram: Tensor
    num_samples: Tensor
    failures: Tensor

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
        mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        ad_mode = renamed_argument("LieGG", "mode", "ad_mode", mode, ad_mode, "auto")
        self._options = AnalysisOptions(action, reduction, output_transform, ad_mode, output_action)
        self.action = action
        self.output_action = output_action
        self.reduction = reduction
        self.output_transform = output_transform
        self.reference = check_reference(reference, action)
        self.ad_mode = ad_mode
        m = action.dim
        self.add_state("gram", default=torch.zeros(m, m, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state(
            "num_samples", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state(
            "failures", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum"
        )
        self._error: BaseException | None = None
        self.layers = layers
        self._layer_spec: dict[str, Any] | None = None
        self._layer_names: list[str] = []  # state i holds _layer_names[i]
        self._forward_order: list[str] | None = None
        if layers is not None and not (isinstance(layers, str) and layers == "auto"):
            if isinstance(layers, (list, tuple, dict)):
                names = list(layers)
            else:
                raise LieGGError(
                    "Expected layers to be a list of submodule names, a dict name -> output "
                    f'action (or None), or "auto", but got {layers!r}.'
                )
            self._add_layer_states(names)

    def _add_layer_states(self, names: list[str]) -> None:
        m = self.action.dim
        for i, name in enumerate(names):
            if not isinstance(name, str) or name in (OUTPUT, ""):
                raise LieGGError(
                    f"Expected submodule names in layers=, but got {name!r} (the final output "
                    f'is analysed as "{OUTPUT}" anyway).'
                )
            self.add_state(
                f"layer_gram_{i}",
                default=torch.zeros(m, m, dtype=torch.float64),
                dist_reduce_fx="sum",
            )
        self._layer_names = list(names)

    def _update_with_layers(self, model: Callable[[Tensor], Any], x: Tensor) -> tuple[Any, int]:
        if self._layer_spec is None:
            spec = resolve_layers(model, self.layers, self.action, self.reduction)
            if spec.pop(..., False):  # "auto": one state per module found
                self._add_layer_states(list(spec))
            self._layer_spec = spec if self.layers != "auto" else {**spec, ...: True}
        grams, n = _update(model, x, self._options.replace(layers=self._layer_spec))
        if self._forward_order is None:
            self._forward_order = [k for k in grams if k != OUTPUT]
        return grams, n

    @property
    def mode(self) -> str:
        """Deprecated name of :attr:`ad_mode`."""
        warn_renamed("LieGG.mode", "LieGG.ad_mode")
        return self.ad_mode

    def update(self, model: Callable[[Tensor], Any], x: Tensor) -> None:  # type: ignore[override]
        """Add the polarization rows of ``model`` on the batch ``x`` ``(N, ...)``."""
        try:
            self.action.check_input(x)
            if self.layers is not None:
                grams, n = self._update_with_layers(model, x)
                gram = grams.pop(OUTPUT)
            else:
                grams, n = _update(model, x, self._options)
                gram = grams.pop(OUTPUT)
        except Exception as err:
            if not _distributed():
                raise
            self._error, gram, n = err, None, 0
        with torch.inference_mode(False):
            if self.gram.is_inference():  # state reset inside inference mode
                self.gram = self.gram.clone()
                self.num_samples = self.num_samples.clone()
                self.failures = self.failures.clone()
            if gram is None:
                self.failures += 1
                return
            self.gram += gram.to(self.gram.device)
            self.num_samples += n
            for i, name in enumerate(self._layer_names):
                state = getattr(self, f"layer_gram_{i}")
                if state.is_inference():
                    state = state.clone()
                if name in grams:  # an "auto" module that did not run stays zero
                    state = state + grams[name].to(state.device)
                setattr(self, f"layer_gram_{i}", state)

    def compute(self) -> SymmetryReport | LayerwiseReport:  # type: ignore[override]
        """The report over every sample seen since the last reset (all ranks under DDP).

        Raises:
            LieGGError: before any update, or when an update failed on any process.
        """
        failures = int(round(float(self.failures)))
        if failures:
            cause = self._error
            reason = f"{type(cause).__name__}: {cause}" if cause else "on another process"
            raise LieGGError(
                f"Expected every update(model, x) to succeed, but {failures} failed ({reason})."
            ) from cause
        n = int(round(float(self.num_samples)))
        if n < 1:
            raise LieGGError(
                "Expected at least one update(model, x) before compute(), but got none."
            )
        if self.layers is None:
            return _compute(self.gram, n, self.action, self.reference)
        grams = {name: getattr(self, f"layer_gram_{i}") for i, name in enumerate(self._layer_names)}
        order = self._forward_order or [name for name in self._layer_names if name in grams]
        ordered = {name: grams[name] for name in order if name in grams}
        ordered[OUTPUT] = self.gram
        return _compute_layers(ordered, n, self.action, self.reference)

    def reset(self) -> None:
        """Clear the state (and a remembered failure)."""
        super().reset()
        self._error = None

    def _apply(self, fn: Callable, *args: Any, **kwargs: Any) -> LieGG:
        # Keep the Gram matrix in float64 whatever dtype the owner moves the metric to.
        out = super()._apply(fn, *args, **kwargs)
        self.gram = self.gram.to(torch.float64)
        self.num_samples = self.num_samples.to(torch.float64)
        self.failures = self.failures.to(torch.float64)
        for i in range(len(getattr(self, "_layer_names", []))):
            name = f"layer_gram_{i}"
            setattr(self, name, getattr(self, name).to(torch.float64))
        return out


def _distributed() -> bool:
    """Whether several processes share this metric's state (a failure must not hang them)."""
    dist = torch.distributed
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
