"""The row engine and the accumulator called with options as keyword arguments (for tests)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from lightning_liegg.functional.actions import Action
from lightning_liegg.functional.analysis import _update
from lightning_liegg.functional.layers import OUTPUT
from lightning_liegg.functional.options import AnalysisOptions
from lightning_liegg.functional.polarization import polarization_rows

__all__ = ["output_rows", "layer_rows", "grams", "gram"]


def output_rows(
    model: Any, x: Tensor, action: Action, reduction: str = "none", *, tangents=None, **options
) -> Tensor:
    """The output's rows ``(N, K, m)`` from :func:`polarization_rows`."""
    opts = AnalysisOptions(action, reduction, **options)
    return polarization_rows(model, x, opts, tangents)[OUTPUT]


def layer_rows(model: Any, x: Tensor, action: Action, layers: Any, **options) -> dict[str, Tensor]:
    """Every layer's rows and the output's, from the same engine call."""
    tangents = options.pop("tangents", None)
    opts = AnalysisOptions(action, layers=layers, **options)
    return polarization_rows(model, x, opts, tangents)


def grams(model: Any, x: Tensor, action: Action, **options) -> tuple[dict[str, Tensor], int]:
    """``_update``'s Gram matrices ``{name: (m, m)}`` and the sample count."""
    return _update(model, x, AnalysisOptions(action, **options))


def gram(model: Any, x: Tensor, action: Action, **options) -> tuple[Tensor, int]:
    """``_update``'s Gram matrix of the output and the sample count."""
    state, n = grams(model, x, action, **options)
    return state[OUTPUT], n
