"""Pure-PyTorch LieGG: actions, polarization matrix, reference algebras and the report.

Nothing here imports Lightning; every function works on any model. The groups:

* :mod:`.actions`: how generators act on inputs and outputs, one kind per module;
* :mod:`.options`: the analysis options as one frozen value (:class:`AnalysisOptions`);
* :mod:`.polarization`: the one row engine (output and layers) and ``polarization_matrix``;
* :mod:`.layers`: which layers, and the hooks that see their outputs;
* :mod:`.analysis`: Gram matrices from rows, ``liegg``; :mod:`.report` and
  :mod:`.layerwise_report`: what they say; :mod:`.algebras`: reference algebras;
* :mod:`.violation` (per-sample violations), :mod:`.discrete` (transform errors) and
  :mod:`.steer` (the differentiable symmetry loss);
* ``_autodiff``: the private autodiff rules (isolation, fall-back, constant weights, memory).
"""

from ..exceptions import DegenerateWarning, LieGGError, LieGGWarning, NonFiniteError
from . import algebras
from .actions import (
    Action,
    ChannelAction,
    DirectSum,
    ImageAction,
    SignalAction,
    TensorAction,
    TrivialAction,
    VectorAction,
    VectorFieldAction,
    VolumeAction,
)
from .analysis import liegg
from .discrete import transform_errors
from .layerwise_report import LayerwiseReport
from .polarization import l2_normalize, polarization_matrix
from .report import SymmetryReport
from .steer import symmetry_loss
from .violation import symmetry_violation

__all__ = [
    "Action",
    "ChannelAction",
    "DegenerateWarning",
    "DirectSum",
    "ImageAction",
    "LayerwiseReport",
    "LieGGError",
    "LieGGWarning",
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
