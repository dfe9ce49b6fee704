"""The analysis options as one frozen value, built and checked once.

Every entry point (:func:`~lightning_liegg.polarization_matrix`, :func:`~lightning_liegg.liegg`,
the :class:`~lightning_liegg.LieGG` metric, the callback) turns its keyword arguments into one
:class:`AnalysisOptions` and hands that down to the row engine
(:func:`~lightning_liegg.functional.polarization.polarization_rows`) and the accumulator
(:func:`~lightning_liegg.functional.analysis._update`), so adding an option touches the
dataclass and the place that reads it, not five signatures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._checks import (
    LieGGError,
    check_callable,
    check_positive_int,
    describe,
    is_choice,
    shown,
)
from .actions import Action

__all__ = [
    "AnalysisOptions",
    "REDUCTIONS",
    "AD_MODES",
    "check_options",
    "check_output_action",
    "check_layers",
    "check_compile",
]

REDUCTIONS = ("none", "sum")
AD_MODES = ("auto", "forward", "reverse")


def check_options(action: Any, reduction: Any, ad_mode: Any = "auto") -> None:
    """Validate the arguments shared by every entry point.

    Raises:
        LieGGError: when ``action`` is not an :class:`Action` or an option is unknown.
    """
    if not isinstance(action, Action):
        raise LieGGError(
            "Expected action to be an Action such as lightning_liegg.VectorAction(dim=...) or "
            f"ImageAction(), but got {describe(action)}."
        )
    if getattr(action, "generator_shape", None) is None:
        raise LieGGError(
            f"Expected an input action with a generator shape, but got {action!r}, which adopts "
            "its partner's: pass generator_shape=(p, q) to use it on inputs."
        )
    if not is_choice(reduction, REDUCTIONS):
        raise LieGGError(
            f"Expected reduction to be one of {REDUCTIONS}, but got {shown(reduction)}."
        )
    if not is_choice(ad_mode, AD_MODES):
        raise LieGGError(f"Expected ad_mode to be one of {AD_MODES}, but got {shown(ad_mode)}.")


def check_output_action(action: Action, output_action: Any, reduction: str) -> None:
    """Check that ``output_action`` can pair with ``action`` (same generator shape, no sum).

    Raises:
        LieGGError: on a non-Action, a different generator shape, or ``reduction="sum"``.
    """
    if output_action is None:
        return
    if not isinstance(output_action, Action):
        raise LieGGError(
            "Expected output_action to be None (invariance) or an Action such as "
            f"lightning_liegg.VectorAction(dim=...), but got {describe(output_action)}."
        )
    shape = getattr(output_action, "generator_shape", None)
    if shape is not None and tuple(shape) != tuple(action.generator_shape):
        raise LieGGError(
            f"Expected output_action to take generators of the input action's shape "
            f"{tuple(action.generator_shape)} ({action!r}), but {output_action!r} takes "
            f"{tuple(shape)}: the same generator h must act on inputs and outputs."
        )
    if reduction == "sum":
        raise LieGGError(
            f"Expected reduction='none' with output_action={output_action!r}, but got "
            "reduction='sum': the sum of a vector's components is not equivariant (only "
            "generators that keep (1, ..., 1) fixed would leave it unchanged), so an "
            "equivariance is analysed one output at a time."
        )


def check_layers(layers: Any, action: Action, reduction: str) -> None:
    """Check the form of ``layers=`` (the names are checked against a model when it runs).

    ``None``, ``"auto"``, a list or tuple of names, or a dict name -> output action (or
    ``None``); a spec from :func:`~lightning_liegg.functional.layers.resolve_layers` (a dict
    that may carry the key ``...``) passes too.

    Raises:
        LieGGError: on another form, a non-string name, or an output action that does not fit.
    """
    if layers is None or (isinstance(layers, str) and layers == "auto"):
        return
    if isinstance(layers, (list, tuple)) and all(isinstance(k, str) for k in layers):
        return
    if isinstance(layers, Mapping) and all(isinstance(k, str) or k is ... for k in layers):
        for name, out_action in layers.items():
            if name is ...:
                continue
            try:
                check_output_action(action, out_action, reduction)
            except LieGGError as err:
                raise LieGGError(f"For layer {name!r}: {err}") from err
        return
    raise LieGGError(
        "Expected layers to be None, a list of submodule names, a dict name -> output action "
        f'(or None), or "auto", but got {describe(layers)}.'
    )


def check_compile(compile: Any) -> None:
    """Check the ``compile`` option: a bool.

    Raises:
        LieGGError: for anything else.
    """
    if not isinstance(compile, bool):
        raise LieGGError(f"Expected compile to be True or False, but got {describe(compile)}.")


@dataclass(frozen=True)
class AnalysisOptions:
    """How to analyse: every option of the row engine and the accumulator, checked once.

    Built by the entry points from their keyword arguments; construction runs every check
    (``dataclasses.replace`` builds a new, checked value), so a value that exists is valid.

    Attributes:
        action: how generators act on the inputs.
        reduction: ``"none"`` (one row per output) or ``"sum"`` (the outputs summed first).
        output_transform: applied to the model's outputs first (``None``: as they are).
        ad_mode: ``"auto"``, ``"forward"`` or ``"reverse"`` differentiation.
        output_action: how the generators act on the outputs (equivariance); ``None``:
            invariance.
        chunk_size: samples differentiated at a time by the accumulator (``None``: all).
        layers: ``None``, ``"auto"``, submodule names or a dict name -> output action (the
            intermediate representations analysed with the output), or a spec resolved
            against a model (:func:`~lightning_liegg.functional.layers.resolve_layers`).
        forward_fn: ``(module, x) -> outputs``, or ``(module, x, extra) -> outputs`` when
            there is an ``extra`` part; ``None``: ``module(x)`` (``module(x, extra)``).
        prepare: applied to each chunk (and its ``extra``) before the model sees it (the
            callback moves it to the model's device and casts it for the precision plugin).
        device: where the accumulated Gram matrices live (default: the inputs' device).
        extra: the rest of each sample's input, held fixed: tensors ``(N, ...)`` (or dicts,
            tuples, lists of them), sliced with the inputs into chunks.
        tangents: ``(start, chunk) -> basis tangents of the (prepared) chunk, or None``, for a
            caller that analyses the same inputs again and keeps their tangents.
        compile: run the output's rows under ``torch.compile``
            (:mod:`~lightning_liegg.functional._autodiff.compiled`); the eager path answers,
            with one warning, where the model does not compile as one graph. Not used with
            ``layers``.
    """

    action: Action
    reduction: str = "none"
    output_transform: Callable[[Any], Tensor] | None = None
    ad_mode: str = "auto"
    output_action: Action | None = None
    chunk_size: int | None = None
    layers: Any = None
    forward_fn: Callable[..., Any] | None = None
    prepare: Callable[[Tensor], Tensor] | None = None
    device: torch.device | str | None = None
    extra: Any = None
    tangents: Callable[[int, Tensor], Tensor | None] | None = None
    compile: bool = False

    def __post_init__(self) -> None:
        check_options(self.action, self.reduction, self.ad_mode)
        check_output_action(self.action, self.output_action, self.reduction)
        check_callable("output_transform", self.output_transform)
        check_positive_int("chunk_size", self.chunk_size, optional=True)
        check_layers(self.layers, self.action, self.reduction)
        check_callable("forward_fn", self.forward_fn)
        check_callable("prepare", self.prepare)
        check_callable("tangents", self.tangents)
        check_compile(self.compile)

    def replace(self, **changes: Any) -> AnalysisOptions:
        """A copy with ``changes`` applied (checked again)."""
        return dataclasses.replace(self, **changes)

    @property
    def pair(self) -> tuple[Action, Action] | None:
        """``(input action, output action)`` for an equivariance, else None."""
        return None if self.output_action is None else (self.action, self.output_action)
