"""Pure-PyTorch LieGG: actions, polarization matrix, reference algebras and the report.

Nothing here imports Lightning; every function works on any model.
"""

from . import algebras
from ._checks import DegenerateWarning, LieGGError, NonFiniteError
from .actions import Action, ImageAction, VectorAction
from .analysis import liegg
from .polarization import l2_normalize, polarization_matrix
from .report import SymmetryReport

__all__ = [
    "Action",
    "DegenerateWarning",
    "ImageAction",
    "LieGGError",
    "NonFiniteError",
    "SymmetryReport",
    "VectorAction",
    "algebras",
    "l2_normalize",
    "liegg",
    "polarization_matrix",
]
