"""lightning-liegg: watch which symmetries a network learns, with LieGG and PyTorch Lightning.

LieGG (Moskalev et al., NeurIPS 2022) reads the generators of the Lie groups a network is
invariant to from the null space of its polarization matrix.

The math (``lightning_liegg.functional``) imports torch only; the torchmetrics metric, the
Lightning callback, the figures, the datasets, the test helpers and the demo model are
imported on first use, so ``import lightning_liegg`` stays light. The docs' Development page
(docs/development.md) says which module holds which job.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import exceptions, transforms
from .exceptions import LieGGWarning
from .functional import (
    Action,
    ChannelAction,
    DegenerateWarning,
    DirectSum,
    ImageAction,
    LayerwiseReport,
    LieGGError,
    NonFiniteError,
    SignalAction,
    SymmetryReport,
    TensorAction,
    TrivialAction,
    VectorAction,
    VectorFieldAction,
    VolumeAction,
    algebras,
    l2_normalize,
    liegg,
    polarization_matrix,
    symmetry_loss,
    symmetry_violation,
    transform_errors,
)
from .history import Evaluation

if TYPE_CHECKING:
    from . import datasets, demos, plotting, replay, testing
    from .callback import LieGGCallback
    from .metric import LieGG
    from .regularizer import SymmetryRegularizer

__version__ = "0.1.0"

__all__ = [
    "Action",
    "ChannelAction",
    "DegenerateWarning",
    "DirectSum",
    "Evaluation",
    "ImageAction",
    "LayerwiseReport",
    "LieGG",
    "LieGGCallback",
    "LieGGError",
    "LieGGWarning",
    "NonFiniteError",
    "SignalAction",
    "SymmetryRegularizer",
    "SymmetryReport",
    "TensorAction",
    "TrivialAction",
    "VectorAction",
    "VectorFieldAction",
    "VolumeAction",
    "__version__",
    "algebras",
    "datasets",
    "demos",
    "exceptions",
    "l2_normalize",
    "liegg",
    "plotting",
    "polarization_matrix",
    "replay",
    "symmetry_loss",
    "symmetry_violation",
    "testing",
    "transform_errors",
    "transforms",
]

_LAZY = {
    "LieGG": ("metric", "LieGG"),  # torchmetrics: imported on first use
    "LieGGCallback": ("callback", "LieGGCallback"),
    "SymmetryRegularizer": ("regularizer", "SymmetryRegularizer"),
    "datasets": ("datasets", None),
    "plotting": ("plotting", None),
    "testing": ("testing", None),
    "demos": ("demos", None),
    "replay": ("replay", None),  # a callable module: lightning_liegg.replay(...) runs replay
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        mod = importlib.import_module(f".{module}", __name__)
        return mod if attr is None else getattr(mod, attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
