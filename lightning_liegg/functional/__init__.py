"""Pure-PyTorch LieGG: actions, polarization matrix, reference algebras and the report.

Nothing here imports Lightning; every function works on any model.
"""

from . import algebras
from ._checks import DegenerateWarning, LieGGError, NonFiniteError
from .actions import Action, ImageAction, VectorAction
from .algebraic_actions import DirectSum, TensorAction, TrivialAction
from .analysis import liegg
from .channel_action import ChannelAction
from .discrete import transform_errors
from .grid_actions import SignalAction, VolumeAction
from .layerwise_report import LayerwiseReport
from .polarization import l2_normalize, polarization_matrix
from .report import SymmetryReport
from .steer import symmetry_loss
from .vector_field_action import VectorFieldAction
from .violation import symmetry_violation

__all__ = [
    "Action",
    "ChannelAction",
    "DegenerateWarning",
    "DirectSum",
    "ImageAction",
    "LayerwiseReport",
    "LieGGError",
    "NonFiniteError",
    "SignalAction",
    "SymmetryReport",
    "TensorAction",
    "TrivialAction",
    "VectorAction",
    "VectorFieldAction",
    "VolumeAction",
    "algebras",
    "l2_normalize",
    "liegg",
    "polarization_matrix",
    "symmetry_loss",
    "symmetry_violation",
    "transform_errors",
]
