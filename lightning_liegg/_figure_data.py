"""The figures' data layer: argument checks and the numbers a figure shows, drawn nowhere.

Both :mod:`lightning_liegg._fast_figures` (which draws the library's figures) and
:mod:`lightning_liegg.plotting` (which shows them, and draws the matplotlib-only plots) take
their inputs through these helpers, so a figure checks its arguments and computes its colour
scale, log floor and panels in one place.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from .exceptions import LieGGError  # a ValueError

if TYPE_CHECKING:
    import torch

ArrayLike = Union["torch.Tensor", np.ndarray, Sequence[Any]]

#: Values below this are drawn at this level on logarithmic axes (zeros, round-off).
LOG_FLOOR = 1e-16


def _to_numpy(x: ArrayLike, name: str) -> np.ndarray:
    """Convert a tensor, array or sequence (None entries: NaN) to a float64 numpy array."""
    torch = sys.modules.get("torch")  # no import: a tensor can only exist if torch is loaded
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().to(device="cpu", dtype=torch.float64).numpy()
    try:
        out = np.asarray(
            [np.nan if v is None else v for v in x] if isinstance(x, (list, tuple)) else x,
            dtype=np.float64,
        )
    except (TypeError, ValueError) as err:
        raise LieGGError(
            f"Expected `{name}` to be a numeric tensor, but got {type(x).__name__}"
        ) from err
    return out


def _check_ndim(x: np.ndarray, ndims: Sequence[int], name: str, shape: str) -> None:
    if x.ndim not in ndims or x.size == 0:
        raise LieGGError(f"Expected `{name}` of shape {shape}, but got shape {tuple(x.shape)}")


def _check_length(x: np.ndarray, length: int, name: str, what: str) -> None:
    if x.ndim != 1 or x.shape[0] != length:
        raise LieGGError(
            f"Expected `{name}` of shape ({length},), one value per {what}, "
            f"but got shape {tuple(x.shape)}"
        )


def _per_generator(
    variances: ArrayLike | None, biases: ArrayLike | None, k: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``variances`` and ``biases`` (each None or one value per generator) as arrays."""
    var = None if variances is None else _to_numpy(variances, "variances")
    bias = None if biases is None else _to_numpy(biases, "biases")
    if var is not None:
        _check_length(var, k, "variances", "generator")
    if bias is not None:
        _check_length(bias, k, "biases", "generator")
    return var, bias


def _frames_and_times(
    frames: ArrayLike, times: ArrayLike, ndims: tuple[int, ...], shape: str
) -> tuple[np.ndarray, np.ndarray]:
    """Checked ``frames`` (``ndims`` dimensions, ``(T, n, ...)``) and ``times`` ``(T,)``."""
    arr = _to_numpy(frames, "frames")
    _check_ndim(arr, ndims, "frames", shape)
    t = _to_numpy(times, "times")
    _check_length(t, arr.shape[0], "times", "frame (first dimension of `frames`)")
    return arr, t


def _check_spectrum(
    relative_spectrum: ArrayLike, reference_dim: int | None, symmetry_dim: int | None
) -> np.ndarray:
    """``relative_spectrum`` as a 1-D array; the dimensions None or integers in ``[0, m]``."""
    spec = _to_numpy(relative_spectrum, "relative_spectrum")
    _check_ndim(spec, (1,), "relative_spectrum", "(m,)")
    m = spec.shape[0]
    for name, dim in (("reference_dim", reference_dim), ("symmetry_dim", symmetry_dim)):
        if dim is not None and (
            isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not 0 <= dim <= m
        ):
            raise LieGGError(f"Expected `{name}` to be an integer in [0, {m}], but got {dim!r}")
    return spec


def _symmetric_scale(shown: np.ndarray) -> float:
    """The largest finite entry of ``shown`` in absolute value, for a colour scale [-s, s].

    1 when no entry is finite or all are zero.
    """
    finite = np.abs(shown[np.isfinite(shown)])
    largest = float(finite.max()) if finite.size else 0.0
    return largest if largest > 0.0 else 1.0


def _log_clip(x: np.ndarray, floor: float = LOG_FLOOR) -> np.ndarray:
    """Clip to ``floor`` for a log axis; non-finite entries become NaN (drawn as gaps)."""
    out = np.where(np.isfinite(x), np.maximum(x, floor), np.nan)
    return out


def _layer_panels(
    layers: Sequence[str],
    steps: ArrayLike,
    variances: ArrayLike,
    reference_variances: ArrayLike | None,
) -> tuple[list[str], np.ndarray, dict[str, np.ndarray], tuple[float, float]]:
    """The layer heatmap's data, checked: names, steps, log10 panels ``(L, S)``, colour range.

    Panels: ``"most symmetric generator"`` and, with a reference, ``"reference algebra"``.
    """
    names = [str(n) for n in layers]
    s = _to_numpy(steps, "steps")
    _check_ndim(s, (1,), "steps", "(S,)")
    panels = {"most symmetric generator": _to_numpy(variances, "variances")}
    if reference_variances is not None:
        panels["reference algebra"] = _to_numpy(reference_variances, "reference_variances")
    for key, values in panels.items():
        if values.shape != (len(names), s.shape[0]):
            raise LieGGError(
                f"Expected {key} variances of shape (L, S) = ({len(names)}, {s.shape[0]}), one "
                f"row per layer and one column per step, but got shape {tuple(values.shape)}"
            )
    logs = {key: np.log10(_log_clip(v)) for key, v in panels.items()}
    finite = np.concatenate([v[np.isfinite(v)] for v in logs.values()])
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 0.0)
    if vmax - vmin < 1e-9:
        vmin -= 0.5
    return names, s, logs, (vmin, vmax)


def _layer_generator_data(
    layers: Sequence[str], generators: ArrayLike, variances: ArrayLike | None
) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """Checked names, generators ``(L, k, p, q)`` and variances ``(L, k)``."""
    names = [str(n) for n in layers]
    gens = _to_numpy(generators, "generators")
    if gens.ndim != 4 or gens.shape[0] != len(names) or gens.shape[1] == 0:
        raise LieGGError(
            f"Expected `generators` of shape (L, k, p, q) with L = {len(names)}, but got shape "
            f"{tuple(gens.shape)}"
        )
    var = None if variances is None else _to_numpy(variances, "variances")
    if var is not None and var.shape[:2] != gens.shape[:2]:
        raise LieGGError(
            f"Expected `variances` of shape {gens.shape[:2]}, but got shape {tuple(var.shape)}"
        )
    return names, gens, var


def _normalized_frames(img: np.ndarray) -> tuple[np.ndarray, bool, float, float]:
    """Frames ``(T, n, C, H, W)`` or ``(T, n, H, W)`` as ``(T, n, H, W[, 3])`` to draw.

    C == 3 is RGB (scaled to [0, 1] over the finite range of all frames), otherwise the first
    channel, left as it is. Returns the frames, whether they are RGB, and the intensity range.
    """
    rgb = img.ndim == 5 and img.shape[2] == 3
    if img.ndim == 5:
        img = np.moveaxis(img, 2, -1) if rgb else img[:, :, 0]
    finite = img[np.isfinite(img)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    if rgb:
        img = np.clip((np.nan_to_num(img, nan=lo) - lo) / (hi - lo), 0.0, 1.0)
    return img, rgb, lo, hi
