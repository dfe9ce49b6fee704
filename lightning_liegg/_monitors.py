"""What ``ModelCheckpoint`` and ``EarlyStopping`` see when an evaluation is skipped.

A skipped evaluation never leaves an old ``liegg/`` value in ``trainer.callback_metrics``.
The convention follows Lightning's monitors:

- every ``liegg/`` value becomes NaN (a metric that could not be computed). ``ModelCheckpoint``
  ranks a NaN last (it replaces it by the worst score), so a checkpoint of a failed analysis
  is never kept as the best; a metric a ``ModelCheckpoint`` watches but that never had a value
  is set to NaN too (a missing one would end the fit with a ``MisconfigurationException``);
- without ``strict``, a failed analysis must not stop training. A NaN would make an
  ``EarlyStopping`` with ``check_finite=True`` (its default) stop the fit, and a missing
  metric would make one with ``strict=True`` (its default) raise. So a metric that only an
  ``EarlyStopping`` watches is removed instead, and that monitor skips its check: its
  ``strict`` is set to False until the next evaluation that succeeds publishes the metric
  again (then restored). Its patience is not used up by failed analyses;
- with ``LieGGCallback(strict=True)`` analysis errors end the fit anyway; the NaN convention
  holds for the skips that remain (no samples), and ``EarlyStopping``'s ``check_finite``
  decides;
- a metric watched by both an ``EarlyStopping`` and a ``ModelCheckpoint`` becomes NaN
  (``ModelCheckpoint`` needs a value); ``check_finite`` decides what the ``EarlyStopping``
  does (``check_finite=False``: the NaN counts as no improvement).

The first skip of a run warns once, naming each monitor and what it will do.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import torch

from ._lightning import classes
from .exceptions import LieGGWarning

__all__ = ["Monitors"]


def _monitors(callbacks: Sequence[Any], prefix: str) -> list[tuple[Any, str, str]]:
    """``(callback, kind, key)`` for each ModelCheckpoint / EarlyStopping watching ``prefix``."""
    kinds = {
        "ModelCheckpoint": classes("callbacks.ModelCheckpoint"),
        "EarlyStopping": classes("callbacks.EarlyStopping"),
    }
    out = []
    for cb in callbacks:
        key = getattr(cb, "monitor", None)
        if not isinstance(key, str) or not key.startswith(prefix):
            continue
        for kind, types in kinds.items():
            if isinstance(cb, types):
                out.append((cb, kind, key))
    return out


class Monitors:
    """Keep the monitors of ``liegg/`` metrics from seeing stale values (see the module).

    Args:
        prefix: the metrics' prefix (``"liegg/"``).
        strict: the callback's ``strict``: EarlyStopping is then left to its own rules.
    """

    def __init__(self, prefix: str, strict: bool = False) -> None:
        self.prefix = prefix
        self.strict = strict
        self._relaxed: list[tuple[Any, bool]] = []
        self._warned = False

    def reset(self) -> None:
        """A new run: restore relaxed monitors; the next skip warns again."""
        self.restore()
        self._warned = False

    def restore(self) -> None:
        """Give the relaxed ``EarlyStopping`` callbacks their own ``strict`` back."""
        for cb, strict in self._relaxed:
            cb.strict = strict
        self._relaxed = []

    def published(self, run: Any) -> None:
        """An evaluation published its metrics: the monitors act on them as usual again."""
        self.restore()

    def skipped(self, run: Any, records: Sequence[Any] = ()) -> None:
        """An evaluation was skipped: NaN or remove the ``liegg/`` metrics, warn the first time."""
        metrics = run.metrics
        if metrics is None:
            return
        watchers = _monitors(run.callbacks, self.prefix)
        checkpointed = {key for _, kind, key in watchers if kind == "ModelCheckpoint"}
        stopping = {key for _, kind, key in watchers if kind == "EarlyStopping"}
        keys = {k for k in metrics if k.startswith(self.prefix)} | checkpointed | stopping
        removed = set() if self.strict else stopping - checkpointed
        for key in keys:
            if key in removed:
                metrics.pop(key, None)
            else:
                metrics[key] = torch.tensor(math.nan)
        if run.progress_bar is not None:
            for key in [k for k in run.progress_bar if k.startswith(self.prefix)]:
                run.progress_bar.pop(key)
        for cb, kind, key in watchers:
            if kind == "EarlyStopping" and key in removed and cb.strict:
                self._relaxed.append((cb, True))
                cb.strict = False
        if watchers and not self._warned and run.is_global_zero:
            self._warned = True
            said = "; ".join(self._what(cb, kind, key, removed) for cb, kind, key in watchers)
            warnings.warn(
                f"LieGG skipped an evaluation, so the monitors of its metrics see no result: "
                f"{said}.",
                LieGGWarning,
                stacklevel=4,
            )

    @staticmethod
    def _what(cb: Any, kind: str, key: str, removed: set[str]) -> str:
        if kind == "ModelCheckpoint":
            return f"ModelCheckpoint(monitor={key!r}) gets NaN and ranks it last (never the best)"
        if key in removed:
            return (
                f"EarlyStopping(monitor={key!r}) skips its check while the analysis fails (the "
                "metric is removed and the monitor's strict is False until the next result; "
                "LieGGCallback(strict=True) ends the fit instead)"
            )
        if getattr(cb, "check_finite", True):
            return (
                f"EarlyStopping(monitor={key!r}, check_finite=True) gets NaN and stops the fit "
                "(check_finite=False counts it as no improvement)"
            )
        return f"EarlyStopping(monitor={key!r}, check_finite=False) counts NaN as no improvement"
