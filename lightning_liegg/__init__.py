"""lightning-liegg: watch which symmetries a network learns, with LieGG and PyTorch Lightning.

LieGG (Moskalev et al., NeurIPS 2022) reads the generators of the Lie groups a network is
invariant to from the null space of its polarization matrix.

The math (``lightning_liegg.functional``) imports torch only; the Lightning callback, the
figures and the datasets are imported on first use, so ``import lightning_liegg`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import exceptions
from .exceptions import LieGGWarning
from .functional import (
    Action,
    DegenerateWarning,
    DirectSum,
    ImageAction,
    LieGGError,
    NonFiniteError,
    SymmetryReport,
    TensorAction,
    TrivialAction,
    VectorAction,
    algebras,
    l2_normalize,
    liegg,
    polarization_matrix,
)
from .metric import LieGG

if TYPE_CHECKING:
    from . import datasets, plotting, testing
    from .callback import LieGGCallback

__version__ = "0.1.0"

__all__ = [
    "Action",
    "DegenerateWarning",
    "DirectSum",
    "ImageAction",
    "LieGG",
    "LieGGCallback",
    "LieGGError",
    "LieGGWarning",
    "NonFiniteError",
    "SymmetryReport",
    "TensorAction",
    "TrivialAction",
    "VectorAction",
    "__version__",
    "algebras",
    "datasets",
    "exceptions",
    "l2_normalize",
    "liegg",
    "plotting",
    "polarization_matrix",
    "testing",
]

_LAZY = {
    "LieGGCallback": ("callback", "LieGGCallback"),
    "datasets": ("datasets", None),
    "plotting": ("plotting", None),
    "testing": ("testing", None),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        mod = importlib.import_module(f".{module}", __name__)
        return mod if attr is None else getattr(mod, attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
