"""lightning-liegg: watch which symmetries a network learns, with LieGG and PyTorch Lightning.

LieGG (Moskalev et al., NeurIPS 2022) reads the generators of the Lie groups a network is
invariant to from the null space of its polarization matrix.
"""

from .functional import (
    Action,
    DegenerateWarning,
    ImageAction,
    LieGGError,
    NonFiniteError,
    SymmetryReport,
    VectorAction,
    algebras,
    liegg,
    polarization_matrix,
)
from .metric import LieGG

__version__ = "0.1.0"

__all__ = [
    "Action",
    "DegenerateWarning",
    "ImageAction",
    "LieGG",
    "LieGGError",
    "NonFiniteError",
    "SymmetryReport",
    "VectorAction",
    "__version__",
    "algebras",
    "liegg",
    "polarization_matrix",
]
