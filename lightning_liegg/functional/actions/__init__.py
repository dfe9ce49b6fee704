"""How generators act on inputs and outputs: one kind of action per module.

* :mod:`.base`: the :class:`Action` protocol and the one ``exp(t h)`` helper (:func:`exp_t`);
* :mod:`.vector`: :class:`VectorAction`, gl(n) on tuples of vectors;
* :mod:`.tensor`: :class:`TensorAction`, gl(n) on rank-2 tensors;
* :mod:`.algebraic`: :class:`TrivialAction` (invariant features) and :class:`DirectSum`;
* :mod:`.grid`: :class:`SignalAction`, :class:`ImageAction`, :class:`VolumeAction`, affine maps
  of a sampling grid, on the shared machinery of :mod:`._grid`;
* :mod:`.channel`: :class:`ChannelAction`, gl(C) on the channel axis;
* :mod:`.vector_field`: :class:`VectorFieldAction`, nonlinear vector fields over a function
  library.

Each action also carries its own term of an equivariance row
(:meth:`Action.subtract_output_term`), used when it acts on a model's outputs.
"""

from .algebraic import DirectSum, TrivialAction, flat_size
from .base import Action, exp_t
from .channel import ChannelAction
from .grid import DEFAULT_PADDING, PADDINGS, ImageAction, SignalAction, VolumeAction
from .tensor import TensorAction
from .vector import VectorAction
from .vector_field import VectorFieldAction

__all__ = [
    "Action",
    "ChannelAction",
    "DEFAULT_PADDING",
    "DirectSum",
    "ImageAction",
    "PADDINGS",
    "SignalAction",
    "TensorAction",
    "TrivialAction",
    "VectorAction",
    "VectorFieldAction",
    "VolumeAction",
    "exp_t",
    "flat_size",
]
