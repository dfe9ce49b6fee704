"""Pure-PyTorch LieGG: actions, polarization matrix, reference algebras and the report.

Nothing here imports Lightning; every function works on any model.
"""

from . import algebras
from ._checks import DegenerateWarning, LieGGError, NonFiniteError
from .actions import Action, ImageAction, VectorAction
from .algebraic_actions import DirectSum, TensorAction, TrivialAction
from .analysis import liegg
from .polarization import l2_normalize, polarization_matrix
from .report import SymmetryReport

__all__ = [
    "Action",
    "DegenerateWarning",
    "DirectSum",
    "ImageAction",
    "LieGGError",
    "NonFiniteError",
    "SymmetryReport",
    "TensorAction",
    "TrivialAction",
    "VectorAction",
    "algebras",
    "l2_normalize",
    "liegg",
    "polarization_matrix",
]
