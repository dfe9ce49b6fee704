"""LieGG as a torchmetrics Metric: stream the Gram matrix over batches, sync it under DDP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from .functional._checks import LieGGError
from .functional.actions import Action
from .functional.analysis import check_reference, gram_update
from .functional.polarization import check_options, check_output_action, polarization_rows
from .functional.report import SymmetryReport

__all__ = ["LieGG"]


class LieGG(Metric):
    """Streaming LieGG: ``update(model, x)`` per batch, ``compute()`` gives a SymmetryReport.

    The state is the float64 Gram matrix E^T E ``(m, m)`` and the sample count, both summed
    across processes (``dist_reduce_fx="sum"``), so memory does not grow with the number of
    samples and the result under DDP is that of all ranks' samples together.

    Args:
        action: how generators act on the inputs.
        reduction: ``"none"`` or ``"sum"`` (see :func:`lightning_liegg.polarization_matrix`).
        output_transform: applied to the model outputs first.
        reference: optional ``(k, p, q)`` reference algebra for the symmetry bias.
        mode: ``"auto"``, ``"forward"`` or ``"reverse"`` differentiation.
        output_action: for equivariant models, how the generators act on the outputs (see
            :func:`lightning_liegg.polarization_matrix`); ``None`` is invariance.
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

    def __init__(
        self,
        action: Action,
        reduction: str = "none",
        output_transform: Callable[[Any], Tensor] | None = None,
        reference: Tensor | str | None = None,
        mode: str = "auto",
        output_action: Action | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_options(action, reduction, mode)
        check_output_action(action, output_action, reduction)
        self.action = action
        self.output_action = output_action
        self.reduction = reduction
        self.output_transform = output_transform
        self.reference = check_reference(reference, action)
        self.mode = mode
        m = action.dim
        self.add_state("gram", default=torch.zeros(m, m, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state(
            "num_samples", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum"
        )

    def update(self, model: Callable[[Tensor], Any], x: Tensor) -> None:  # type: ignore[override]
        """Add the polarization rows of ``model`` on the batch ``x`` ``(N, ...)``."""
        rows = polarization_rows(
            model,
            x,
            self.action,
            self.reduction,
            self.output_transform,
            self.mode,
            self.output_action,
        )
        with torch.inference_mode(False):
            if self.gram.is_inference():  # state reset inside inference mode
                self.gram = self.gram.clone()
                self.num_samples = self.num_samples.clone()
            self.gram += gram_update(rows).to(self.gram.device)
            self.num_samples += x.shape[0]

    def compute(self) -> SymmetryReport:
        """The report over every sample seen since the last reset (all ranks under DDP)."""
        n = int(round(float(self.num_samples)))
        if n < 1:
            raise LieGGError(
                "Expected at least one update(model, x) before compute(), but got none."
            )
        return SymmetryReport(self.gram, n, self.action.basis, self.reference)

    def _apply(self, fn: Callable, *args: Any, **kwargs: Any) -> LieGG:
        # Keep the Gram matrix in float64 whatever dtype the owner moves the metric to.
        out = super()._apply(fn, *args, **kwargs)
        self.gram = self.gram.to(torch.float64)
        self.num_samples = self.num_samples.to(torch.float64)
        return out
