"""Discrete symmetries: how far a model is from invariance (or equivariance) under given maps.

For a transform g (a callable ``x -> g x``: a flip, a quarter turn, a cyclic shift, a
permutation; see :mod:`lightning_liegg.transforms`) the per-sample relative error is

    |F(g x) - g F(x)| / |F(x)|        (Euclidean norms over all outputs of the sample)

with g acting on the outputs by an output transform, or not at all (invariance). One forward
pass of the model per transform, plus one on the untransformed inputs, all without gradients
and without side effects (eval mode, restored afterwards; the global RNG forked).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from .._checks import LieGGError, check_positive_int, describe, output_transform_hint
from ._autodiff.isolation import isolated
from .analysis import _chunks
from .polarization import user_call, user_errors

__all__ = ["transform_errors", "check_transforms", "check_output_transforms"]

Transform = Callable[[Tensor], Tensor]
_SAME = object()  # the default: the input transform on outputs of the input's shape


def check_transforms(transforms: Any, name: str = "transforms") -> dict[str, Transform]:
    """Check a dict name -> callable ``x -> g x`` and return it as a plain dict.

    Raises:
        LieGGError: on a non-mapping, an empty one, non-string names or non-callable values.
    """
    if not isinstance(transforms, Mapping):
        raise LieGGError(
            f"Expected {name} to be a dict name -> callable x -> g x (e.g. {{'hflip': "
            f"lg.transforms.hflip}}), but got {describe(transforms)}."
        )
    if not transforms:
        raise LieGGError(f"Expected {name} to name at least one transform, but got an empty dict.")
    for key, value in transforms.items():
        if not isinstance(key, str) or not key:
            raise LieGGError(
                f"Expected the names in {name} to be non-empty strings, but got {key!r}."
            )
        if not callable(value):
            raise LieGGError(
                f"Expected {name}[{key!r}] to be a callable x -> g x, but got {describe(value)}."
            )
    return dict(transforms)


def check_output_transforms(output_transforms: Any, names: list[str]) -> dict[str, Any]:
    """Check ``output_transforms`` (None, or a dict name -> callable or None) against ``names``.

    Returns:
        ``{name: callable, None (invariance) or the default marker}`` for every name.

    Raises:
        LieGGError: on a non-mapping, a name that is not a transform, or a non-callable value.
    """
    if output_transforms is None:
        return dict.fromkeys(names, _SAME)
    if not isinstance(output_transforms, Mapping):
        raise LieGGError(
            "Expected output_transforms to be None or a dict name -> callable (None: "
            f"invariance), but got {describe(output_transforms)}."
        )
    unknown = [k for k in output_transforms if k not in names]
    if unknown:
        raise LieGGError(
            f"Expected the names in output_transforms to be among the transforms {names}, but "
            f"got {unknown}."
        )
    for key, value in output_transforms.items():
        if value is not None and not callable(value):
            raise LieGGError(
                f"Expected output_transforms[{key!r}] to be a callable or None, but got "
                f"{describe(value)}."
            )
    return {k: output_transforms.get(k, _SAME) for k in names}


def _outputs(model: Callable[[Tensor], Any], x: Tensor, output_transform: Any, what: str) -> Tensor:
    out = model(x)
    if output_transform is not None:
        out = user_call(
            "output_transform", "output_transform(outputs) -> Tensor", output_transform, out
        )
    if not isinstance(out, Tensor):
        raise LieGGError(
            f"Expected the model (after output_transform) to return a tensor on {what}, but got "
            f"{describe(out)}. {output_transform_hint(out)}"
        )
    if out.ndim == 0 or out.shape[0] != x.shape[0]:
        raise LieGGError(
            f"Expected model outputs with the batch size first, shape ({x.shape[0]}, ...), on "
            f"{what} of shape {tuple(x.shape)}, but got shape {tuple(out.shape)}."
        )
    return out


def _apply(transform: Transform, x: Tensor, name: str, what: str) -> Tensor:
    """``transform(x)`` on a copy of ``x``, checked to be a batch of the same size."""
    try:
        out = transform(x.clone())
    except Exception as err:
        raise LieGGError(
            f"Expected transform {name!r} to map {what} of shape {tuple(x.shape)} to a batch of "
            f"the same size (a callable x -> g x), but it raised {type(err).__name__}: {err}"
        ) from err
    if not isinstance(out, Tensor) or out.ndim == 0 or out.shape[0] != x.shape[0]:
        got = f"shape {tuple(out.shape)}" if isinstance(out, Tensor) else describe(out)
        raise LieGGError(
            f"Expected transform {name!r} to map {what} of shape {tuple(x.shape)} to a tensor "
            f"with {x.shape[0]} samples first, but got {got}."
        )
    return out


def _relative(moved: Tensor, expected: Tensor) -> Tensor:
    """|moved - expected| / |expected| per sample, float64; 0/0 counts as 0."""
    a = moved.reshape(moved.shape[0], -1).to(torch.float64)
    b = expected.reshape(expected.shape[0], -1).to(torch.float64)
    num = torch.linalg.vector_norm(a - b, dim=1)
    den = torch.linalg.vector_norm(b, dim=1)
    return torch.where(num == 0, torch.zeros_like(num), num / den)


def _errors_update(
    model: Callable[[Tensor], Any],
    x: Tensor,
    transforms: dict[str, Transform],
    output_transforms: dict[str, Any],
    output_transform: Callable[[Any], Tensor] | None = None,
    chunk_size: int | None = None,
    prepare: Callable[[Tensor], Tensor] | None = None,
    forward_fn: Callable[..., Any] | None = None,
    extra: Any = None,
) -> dict[str, Tensor]:
    """Per-sample relative errors ``{name: float64 (N,) on CPU}`` (checked arguments).

    ``prepare``, ``forward_fn`` and ``extra`` as in ``analysis._update`` (the callback moves
    chunks to the model's device; ``extra`` is held fixed, not transformed).
    """
    parts: dict[str, list[Tensor]] = {k: [] for k in transforms}
    device = x.device
    for _, net, chunk in _chunks(model, x, chunk_size, prepare, forward_fn, extra):
        device = chunk.device
        with user_errors(), isolated(net, device):
            chunk = chunk.detach()
            y = _outputs(net, chunk, output_transform, "the inputs")
            for name, g in transforms.items():
                moved_x = _apply(g, chunk, name, "inputs")
                f_gx = _outputs(net, moved_x, output_transform, f"the inputs moved by {name!r}")
                out_g = output_transforms[name]
                if out_g is _SAME:
                    out_g = g if tuple(y.shape) == tuple(chunk.shape) else None
                g_fx = y if out_g is None else _apply(out_g, y, name, "outputs")
                if f_gx.shape != g_fx.shape:
                    raise LieGGError(
                        f"Expected the model's outputs on the inputs moved by {name!r} to have "
                        f"the shape of the {'moved ' if out_g is not None else ''}outputs "
                        f"{tuple(g_fx.shape)}, but got {tuple(f_gx.shape)}."
                    )
                parts[name].append(_relative(f_gx, g_fx).cpu())
    return {k: torch.cat(v) if v else torch.zeros(0, dtype=torch.float64) for k, v in parts.items()}


def transform_errors(
    model: Callable[[Tensor], Any],
    x: Tensor,
    transforms: Mapping[str, Transform],
    *,
    output_transforms: Mapping[str, Transform | None] | None = None,
    output_transform: Callable[[Any], Tensor] | None = None,
    chunk_size: int | None = None,
) -> dict[str, Tensor]:
    """Per-sample relative error of each discrete transform: |F(g x) - g F(x)| / |F(x)|.

    Invariance when g does not act on the outputs, equivariance when it does. By default a
    transform acts on the outputs exactly when they have the inputs' shape (an
    image-to-image or signal-to-signal model: the same flip, turn or shift on the output),
    and not otherwise (a classifier, a regressor: invariance). ``output_transforms`` overrides
    this per name: a callable for the outputs, or None for invariance.

    Args:
        model: ``nn.Module`` or callable mapping ``(N, ...)`` to outputs ``(N, ...)``. Run in
            eval mode without gradients; every submodule's mode is restored.
        x: inputs ``(N, ...)``; not modified (each transform gets a copy).
        transforms: dict name -> callable ``x -> g x`` on a batch (:mod:`lightning_liegg.
            transforms`: ``hflip``, ``vflip``, ``rot90(k)``, ``shift(...)``, ``permute(...)``,
            ``time_reversal``, ``d4()``, ... or any function).
        output_transforms: dict name -> callable ``y -> g y`` on the outputs (after
            ``output_transform``), or None for invariance; names left out take the default
            above.
        output_transform: applied to the model's outputs first (e.g. ``lg.l2_normalize``).
        chunk_size: run this many samples at a time (``None``: all at once).

    Returns:
        ``{name: float64 (N,)}`` on CPU, in the order of ``transforms``; 0 where F(g x) and
        g F(x) agree exactly (also when both are zero), inf where only F(x) is zero.

    Raises:
        LieGGError: on a non-dict or empty ``transforms``, a transform that is not callable,
            raises, or changes the number of samples, a model output that is not a tensor, or
            outputs on moved inputs whose shape differs from the (moved) outputs'.

    Example:
        >>> import torch, lightning_liegg as lg
        >>> model = lambda x: x.sum(dim=(1, 2, 3))[:, None]     # invariant to every flip
        >>> x = torch.randn(8, 1, 5, 5, dtype=torch.float64)
        >>> err = lg.transform_errors(model, x, {"hflip": lg.transforms.hflip})
        >>> float(err["hflip"].max()) < 1e-12
        True
    """
    checked = check_transforms(transforms)
    outs = check_output_transforms(output_transforms, list(checked))
    if output_transform is not None and not callable(output_transform):
        raise LieGGError(
            f"Expected output_transform to be callable, but got {describe(output_transform)}."
        )
    if not callable(model):
        raise LieGGError(
            f"Expected model to be callable (an nn.Module), but got {describe(model)}."
        )
    if not isinstance(x, Tensor) or x.ndim < 1 or x.shape[0] == 0:
        raise LieGGError(
            f"Expected inputs x as a tensor (N, ...) with N >= 1, but got {describe(x)}."
        )
    check_positive_int("chunk_size", chunk_size, optional=True)
    return _errors_update(model, x, checked, outs, output_transform, chunk_size)
