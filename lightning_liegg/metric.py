"""LieGG as a torchmetrics Metric: stream the Gram matrix over batches, sync it under DDP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from .exceptions import LieGGError
from .functional.actions import Action
from .functional.analysis import _compute, _update, check_reference
from .functional.polarization import check_options, check_output_action
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
    failures: Tensor

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
        self.add_state(
            "failures", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum"
        )
        self._error: BaseException | None = None

    def update(self, model: Callable[[Tensor], Any], x: Tensor) -> None:  # type: ignore[override]
        """Add the polarization rows of ``model`` on the batch ``x`` ``(N, ...)``."""
        try:
            self.action.check_input(x)
            gram, n = _update(
                model,
                x,
                self.action,
                self.reduction,
                self.output_transform,
                self.mode,
                output_action=self.output_action,
            )
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

    def compute(self) -> SymmetryReport:
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
        return _compute(self.gram, n, self.action, self.reference)

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
        return out


def _distributed() -> bool:
    """Whether several processes share this metric's state (a failure must not hang them)."""
    dist = torch.distributed
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
