"""Figures of LieGG results, built from tensors.

Every function takes tensors (``torch.Tensor``, ``numpy.ndarray`` or nested sequences) and
returns a :class:`matplotlib.figure.Figure` with an Agg canvas attached. Figures are built
without ``pyplot``: no global figure registry grows and no backend is switched. The caller
decides where a figure goes (``fig.savefig(...)``, a logger, or :func:`figure_to_array`).

Example:
    >>> from lightning_liegg import plotting
    >>> fig = plotting.plot_generators(report.generators, report.spectrum)  # doctest: +SKIP
    >>> image = plotting.figure_to_array(fig)  # (H, W, 3) uint8  # doctest: +SKIP
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

__all__ = [
    "figure_to_array",
    "plot_bias",
    "plot_evolution",
    "plot_filmstrip",
    "plot_generators",
    "plot_history",
    "plot_layer_generators",
    "plot_layer_heatmap",
    "plot_output_filmstrip",
    "plot_signal_output_filmstrip",
    "plot_signal_filmstrip",
    "plot_spectrum",
    "plot_volume_filmstrip",
    "volume_mid_slices",
]

if TYPE_CHECKING:
    import torch

ArrayLike = Union["torch.Tensor", np.ndarray, Sequence[Any]]

#: Values below this are drawn at this level on logarithmic axes (zeros, round-off).
LOG_FLOOR = 1e-16

_DPI = 90


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
        raise ValueError(
            f"Expected `{name}` to be a numeric tensor, but got {type(x).__name__}"
        ) from err
    return out


def _check_ndim(x: np.ndarray, ndims: Sequence[int], name: str, shape: str) -> None:
    if x.ndim not in ndims or x.size == 0:
        raise ValueError(f"Expected `{name}` of shape {shape}, but got shape {tuple(x.shape)}")


def _check_length(x: np.ndarray, length: int, name: str, what: str) -> None:
    if x.ndim != 1 or x.shape[0] != length:
        raise ValueError(
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
            raise ValueError(f"Expected `{name}` to be an integer in [0, {m}], but got {dim!r}")
    return spec


def _new_figure(width: float, height: float) -> Figure:
    """A pyplot-free figure with an Agg canvas and constrained layout."""
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


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


def plot_generators(
    generators: ArrayLike,
    variances: ArrayLike | None = None,
    biases: ArrayLike | None = None,
    max_generators: int = 4,
    title: str | None = None,
) -> Figure:
    """Annotated heatmaps of the most symmetric generators.

    All panels share one symmetric colour scale (``vmax = max |entry|`` over the panels shown),
    so the size of entries can be compared across generators.

    Args:
        generators: generator matrices of shape (k, p, q), most symmetric first
            (e.g. ``SymmetryReport.generators``).
        variances: symmetry variance of each generator, shape (k,), or None.
        biases: symmetry bias of each generator, shape (k,), or None.
        max_generators: how many of the first generators to draw (at least 1).
        title: optional figure title.

    Returns:
        A figure with ``min(k, max_generators)`` heatmap panels and one colorbar.

    Raises:
        ValueError: if a shape is wrong or ``max_generators < 1``.
    """
    gens = _to_numpy(generators, "generators")
    _check_ndim(gens, (3,), "generators", "(k, p, q)")
    if (
        isinstance(max_generators, bool)
        or not isinstance(max_generators, int)
        or max_generators < 1
    ):
        raise ValueError(
            f"Expected `max_generators` to be a positive integer, but got {max_generators!r}"
        )
    k, p, q = gens.shape
    var, bias = _per_generator(variances, biases, k)

    n = min(k, max_generators)
    shown = gens[:n]
    vmax = _symmetric_scale(shown)

    # Fixed layout in inches (no layout engine: this figure is drawn often and must be cheap).
    size = max(p, q)
    cell = 0.6 if size <= 2 else (0.5 if size <= 3 else (0.42 if size <= 4 else 0.36))
    fontsize = 9 if size <= 3 else (8 if size <= 4 else 7)
    panel_w, panel_h = cell * q, cell * p
    slot_w = max(1.75, panel_w + 0.25)
    top = 0.3 + (0.28 if title else 0.0)
    bottom, left, cbar_gap, cbar_w, cbar_labels = 0.1, 0.05, 0.1, 0.12, 0.5
    width = left + n * slot_w + cbar_gap + cbar_w + cbar_labels
    height = top + panel_h + bottom
    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)

    image = None
    for i in range(n):
        x0 = left + i * slot_w + (slot_w - panel_w) / 2
        ax = fig.add_axes((x0 / width, bottom / height, panel_w / width, panel_h / height))
        g = shown[i]
        image = ax.imshow(
            g, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest", aspect="auto"
        )
        for r in range(p):
            for c in range(q):
                value = g[r, c]
                dark = bool(np.isfinite(value)) and abs(value) > 0.6 * vmax
                ax.text(
                    c,
                    r,
                    f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=fontsize,
                    color="white" if dark else "black",
                )
        if q == p + 1:  # affine generator [A | b]: separate the translation column
            ax.axvline(p - 0.5, color="0.2", linewidth=1.0, linestyle="--")
        ax.xaxis.set_visible(False)  # keeps the frame; much cheaper to draw than empty ticks
        ax.yaxis.set_visible(False)
        parts = [f"#{i}"]
        if var is not None:
            parts.append(f"var {var[i]:.1e}")
        if bias is not None:
            parts.append(f"bias {bias[i]:.2f}")
        ax.set_title("  ".join(parts), fontsize=8, pad=4)

    cax_x = left + n * slot_w + cbar_gap
    cax = fig.add_axes((cax_x / width, bottom / height, cbar_w / width, panel_h / height))
    cbar = fig.colorbar(image, cax=cax)
    cbar.ax.tick_params(labelsize=7)
    cbar.ax.yaxis.set_major_locator(MaxNLocator(nbins=5, symmetric=True))
    if title:
        fig.suptitle(title, fontsize=9, y=1.0 - 0.06 / height, va="top")
    return fig


def plot_spectrum(
    relative_spectrum: ArrayLike,
    reference_dim: int | None = None,
    symmetry_dim: int | None = None,
) -> Figure:
    """Relative symmetry spectrum on a log scale.

    Args:
        relative_spectrum: relative variances sigma_i^2 / sigma_max^2 of shape (m,), ascending
            (e.g. ``SymmetryReport.relative_spectrum``). Zeros and negative round-off are drawn
            at ``LOG_FLOOR``; NaN entries are left out.
        reference_dim: dimension of the reference algebra; a dashed line is drawn after that
            many entries. None: no line.
        symmetry_dim: detected symmetry dimension; the gap after that many entries is marked.
            None: no mark.

    Returns:
        A figure with one axes.

    Raises:
        ValueError: if ``relative_spectrum`` is not 1-D or a dimension is outside ``[0, m]``.
    """
    spec = _check_spectrum(relative_spectrum, reference_dim, symmetry_dim)
    m = spec.shape[0]
    shown = _log_clip(spec)
    index = np.arange(m)
    fig = _new_figure(max(3.6, min(6.0, 0.25 * m + 2.5)), 2.8)
    ax = fig.add_subplot()
    ax.plot(index, shown, "o-", color="C0", markersize=4, linewidth=1.2)
    ax.set_yscale("log")
    ax.yaxis.set_minor_locator(NullLocator())  # minor log ticks cost most of the drawing time
    if not np.isfinite(shown).any():
        ax.set_ylim(LOG_FLOOR / 10, 10.0)
    ax.set_xlim(-0.7, m - 0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("generator index (ascending)", fontsize=8)
    ax.set_ylabel("relative variance", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, which="major", alpha=0.3)

    if symmetry_dim is not None:
        d = int(symmetry_dim)
        if d > 0:
            ax.axvspan(-0.7, d - 0.5, color="C2", alpha=0.12, linewidth=0)
        ax.axvline(d - 0.5, color="C2", linewidth=1.2, linestyle=":", label=f"symmetry dim {d}")
        if 0 < d < m and np.isfinite(shown[d - 1]) and np.isfinite(shown[d]):
            low, high = shown[d - 1], shown[d]
            ax.annotate(
                "",
                xy=(d - 0.5, high),
                xytext=(d - 0.5, low),
                arrowprops={"arrowstyle": "<->", "color": "C2", "linewidth": 1.0},
            )
            ax.text(
                d - 0.35,
                math.sqrt(low * high),
                f"gap {math.log10(high / low):.1f} decades",
                color="C2",
                fontsize=7,
                va="center",
            )
    if reference_dim is not None:
        ax.axvline(
            int(reference_dim) - 0.5,
            color="C3",
            linewidth=1.2,
            linestyle="--",
            label="reference dim",
        )
    if reference_dim is not None or symmetry_dim is not None:
        ax.legend(fontsize=7, loc="lower right")
    return fig


def plot_bias(biases: ArrayLike) -> Figure:
    """Bar chart of the symmetry bias of each generator.

    Args:
        biases: symmetry bias of each generator, shape (m,), in [0, 1]
            (0: inside the reference algebra, 1: orthogonal to it). NaN entries get no bar.

    Returns:
        A figure with one axes.

    Raises:
        ValueError: if ``biases`` is not 1-D.
    """
    bias = _to_numpy(biases, "biases")
    _check_ndim(bias, (1,), "biases", "(m,)")
    m = bias.shape[0]
    fig = _new_figure(max(3.2, min(6.0, 0.22 * m + 2.2)), 2.6)
    ax = fig.add_subplot()
    ax.bar(np.arange(m), bias, color="C1", width=0.8)  # NaN: no bar
    ax.set_ylim(0.0, 1.05)
    ax.set_xlim(-0.7, m - 0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("generator index (ascending variance)", fontsize=8)
    ax.set_ylabel("symmetry bias", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def plot_filmstrip(frames: ArrayLike, times: ArrayLike) -> Figure:
    """Samples transformed along a generator, one column per time.

    Args:
        frames: images of shape (T, n, C, H, W) or (T, n, H, W): ``n`` samples, each
            transformed at ``T`` times. C == 3 is drawn as RGB, otherwise the first channel
            in gray. All frames share one intensity scale.
        times: the times of shape (T,).

    Returns:
        A figure with the ``n`` x ``T`` grid of frames as one image, columns labelled
        ``t=...`` and rows ``#i``.

    Raises:
        ValueError: if the shapes do not match.
    """
    img, t = _frames_and_times(frames, times, (4, 5), "(T, n, C, H, W) or (T, n, H, W)")
    n_times, n_samples = img.shape[:2]
    side = 1.1
    fig = _new_figure(side * n_times + 0.3, side * n_samples + 0.25)
    ax = fig.subplots()
    # One image of the whole grid (one axes, not n x T: drawing is several times faster).
    _show_image_grid(ax, img, t, time_fontsize=8)
    ax.xaxis.tick_top()
    return fig


def plot_signal_filmstrip(frames: ArrayLike, times: ArrayLike) -> Figure:
    """1-D signals transformed along a generator: one panel per sample, one line per time.

    Args:
        frames: signals of shape (T, n, C, L) or (T, n, L): ``n`` samples, each transformed at
            ``T`` times (``SignalAction.transform`` with a 1-D tensor of times); the first
            channel is drawn, against t = linspace(-1, 1, L).
        times: the times of shape (T,).

    Returns:
        A figure with ``n`` panels (titled ``#i``), each with ``T`` lines labelled ``t=...``,
        coloured from dark (first time) to light (last).

    Raises:
        ValueError: if the shapes do not match.
    """
    sig, t = _frames_and_times(frames, times, (3, 4), "(T, n, C, L) or (T, n, L)")
    n_times, n_samples = sig.shape[:2]
    if sig.ndim == 4:
        sig = sig[:, :, 0]
    coord = np.linspace(-1.0, 1.0, sig.shape[-1])
    from matplotlib import colormaps

    colours = colormaps["viridis"](np.linspace(0.0, 0.85, n_times))
    fig = _new_figure(2.4 * n_samples + 0.4, 1.9)
    axes = np.atleast_1d(fig.subplots(1, n_samples, sharey=True, squeeze=False)[0])
    for i, ax in enumerate(axes):
        for j in range(n_times):
            ax.plot(coord, sig[j, i], color=colours[j], linewidth=1.2, label=f"t={t[j]:.3g}")
        ax.set_title(f"#{i}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
    axes[-1].legend(fontsize=6, loc="best")
    return fig


def volume_mid_slices(volumes: ArrayLike) -> np.ndarray:
    """The three orthogonal mid-slices of volumes, side by side in one 2-D image per volume.

    Args:
        volumes: shape (..., D, H, W), any leading axes.

    Returns:
        Shape (..., max(H, D), W + W + H + 2): the x-y slice at the middle depth (H x W), the
        x-z slice at the middle height (D x W) and the y-z slice at the middle width (D x H),
        top-aligned, separated by one NaN column; NaN fills the unused rows.
    """
    vol = _to_numpy(volumes, "volumes")
    if vol.ndim < 3 or vol.size == 0:
        raise ValueError(f"Expected `volumes` of shape (..., D, H, W), but got {vol.shape}")
    d, h, w = vol.shape[-3:]
    slices = [vol[..., d // 2, :, :], vol[..., :, h // 2, :], vol[..., :, :, w // 2]]
    rows = max(h, d)
    lead = vol.shape[:-3]
    out = np.full((*lead, rows, 2 * w + h + 2), np.nan)
    left = 0
    for sl in slices:
        out[..., : sl.shape[-2], left : left + sl.shape[-1]] = sl
        left += sl.shape[-1] + 1
    return out


def plot_volume_filmstrip(frames: ArrayLike, times: ArrayLike) -> Figure:
    """3-D volumes transformed along a generator, drawn as three orthogonal mid-slices.

    Args:
        frames: volumes of shape (T, n, C, D, H, W) or (T, n, D, H, W) (``VolumeAction.transform``
            with a 1-D tensor of times). The first channel is drawn (RGB when C == 3).
        times: the times of shape (T,).

    Returns:
        The :func:`plot_filmstrip` grid of the :func:`volume_mid_slices` of every frame: per
        cell, the x-y, x-z and y-z slices through the centre.

    Raises:
        ValueError: if the shapes do not match.
    """
    vol = _to_numpy(frames, "frames")
    _check_ndim(vol, (5, 6), "frames", "(T, n, C, D, H, W) or (T, n, D, H, W)")
    return plot_filmstrip(volume_mid_slices(vol), times)


def _step_ticks(steps: np.ndarray, max_ticks: int = 6) -> tuple[np.ndarray, list[str]]:
    positions = np.unique(
        np.linspace(0, len(steps) - 1, min(len(steps), max_ticks)).round().astype(int)
    )
    return positions, [f"{s:g}" for s in steps[positions]]


def plot_evolution(steps: ArrayLike, spectra: ArrayLike) -> Figure:
    """Heatmap of the relative spectrum over training.

    Args:
        steps: training steps (or epochs) of shape (S,).
        spectra: relative spectra of shape (S, m), one ascending spectrum per step.

    Returns:
        A figure with one image axes (step on x, generator index on y) and a colorbar
        labelled "log10 relative variance".

    Raises:
        ValueError: if the shapes do not match.
    """
    spec = _to_numpy(spectra, "spectra")
    _check_ndim(spec, (2,), "spectra", "(S, m)")
    s = _to_numpy(steps, "steps")
    n_steps, m = spec.shape
    _check_length(s, n_steps, "steps", "row of `spectra`")

    values = np.ma.masked_invalid(np.log10(_log_clip(spec)).T)
    fig = _new_figure(max(3.6, min(7.0, 0.3 * n_steps + 2.6)), max(2.4, min(4.0, 0.1 * m + 1.4)))
    ax = fig.add_subplot()
    image = ax.imshow(
        values, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest"
    )
    positions, labels = _step_ticks(s)
    ax.set_xticks(positions, labels)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step", fontsize=8)
    ax.set_ylabel("generator index", fontsize=8)
    ax.tick_params(labelsize=7)
    cbar = fig.colorbar(image, ax=ax, pad=0.02)
    cbar.set_label("log10 relative variance", fontsize=8)
    cbar.ax.tick_params(labelsize=7)
    return fig


def plot_history(steps: ArrayLike, values: Mapping[str, ArrayLike]) -> Figure:
    """Scalar histories against step, one axes per key.

    Keys containing ``"variance"`` use a logarithmic y axis (values clipped to ``LOG_FLOOR``).

    Args:
        steps: steps of shape (S,).
        values: name -> history of shape (S,); ``None`` entries are drawn as gaps.

    Returns:
        A figure with ``len(values)`` axes, at most three per row.

    Raises:
        ValueError: if ``values`` is empty or a history does not have length S.
    """
    s = _to_numpy(steps, "steps")
    _check_ndim(s, (1,), "steps", "(S,)")
    if not values:
        raise ValueError("Expected at least one history in `values`, but got an empty mapping")
    histories = {key: _to_numpy(v, f"values[{key!r}]") for key, v in values.items()}
    for key, h in histories.items():
        _check_length(h, s.shape[0], f"values[{key!r}]", "step")

    n = len(histories)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = _new_figure(2.7 * cols + 0.2, 2.2 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (key, h) in zip(axes[:n], histories.items(), strict=True):
        log = "variance" in key
        ax.plot(s, _log_clip(h) if log else h, "o-", markersize=3, linewidth=1.2)
        if log:
            ax.set_yscale("log")
        ax.set_title(key, fontsize=8)
        ax.set_xlabel("step", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
    for ax in axes[n:]:
        fig.delaxes(ax)
    return fig


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
            raise ValueError(
                f"Expected {key} variances of shape (L, S) = ({len(names)}, {s.shape[0]}), one "
                f"row per layer and one column per step, but got shape {tuple(values.shape)}"
            )
    logs = {key: np.log10(_log_clip(v)) for key, v in panels.items()}
    finite = np.concatenate([v[np.isfinite(v)] for v in logs.values()])
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 0.0)
    if vmax - vmin < 1e-9:
        vmin -= 0.5
    return names, s, logs, (vmin, vmax)


def plot_layer_heatmap(
    layers: Sequence[str],
    steps: ArrayLike,
    variances: ArrayLike,
    reference_variances: ArrayLike | None = None,
) -> Figure:
    """Layer x evaluation heatmap of the log10 relative variance: where a symmetry sits, when.

    One row per layer (forward order, the first layer at the top, the output at the bottom),
    one column per evaluation. Dark cells are nearly symmetric representations, so invariance
    spreading through the network shows as a dark region growing over training and depth.

    Args:
        layers: layer names ``(L,)``.
        steps: evaluation steps ``(S,)``.
        variances: relative variance of each layer's most symmetric generator ``(L, S)``
            (NaN: not evaluated, drawn blank).
        reference_variances: optional ``(L, S)`` relative variance along the reference
            algebra (mean over its basis); drawn as a second panel on the same colour scale.

    Returns:
        A figure with one or two image axes and a shared colorbar
        labelled "log10 relative variance".

    Raises:
        ValueError: if the shapes do not match.
    """
    names, s, logs, (vmin, vmax) = _layer_panels(layers, steps, variances, reference_variances)
    label_width = 0.065 * max(len(n) for n in names)
    width = len(logs) * max(2.6, min(5.0, 0.28 * s.shape[0] + 1.4)) + label_width + 1.0
    fig = _new_figure(width, max(2.2, min(6.0, 0.28 * len(names) + 1.3)))
    axes = fig.subplots(1, len(logs), squeeze=False, sharey=True).ravel()
    image = None
    for i, (ax, (key, values)) in enumerate(zip(axes, logs.items(), strict=True)):
        image = ax.imshow(
            np.ma.masked_invalid(values),
            aspect="auto",
            cmap="magma",
            vmin=vmin,
            vmax=vmax,
            interpolation="nearest",
        )
        positions, labels = _step_ticks(s)
        ax.set_xticks(positions, labels)
        if i == 0:  # the panels share the y axis: its labels are set once
            ax.set_yticks(range(len(names)), names)
        else:
            ax.tick_params(labelleft=False)
        ax.set_xlabel("step", fontsize=8)
        if len(logs) > 1:
            ax.set_title(key, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("layer", fontsize=8)
    cbar = fig.colorbar(image, ax=list(axes), pad=0.02)
    cbar.set_label("log10 relative variance", fontsize=8)
    cbar.ax.tick_params(labelsize=7)
    return fig


def _layer_generator_data(
    layers: Sequence[str], generators: ArrayLike, variances: ArrayLike | None
) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """Checked names, generators ``(L, k, p, q)`` and variances ``(L, k)``."""
    names = [str(n) for n in layers]
    gens = _to_numpy(generators, "generators")
    if gens.ndim != 4 or gens.shape[0] != len(names) or gens.shape[1] == 0:
        raise ValueError(
            f"Expected `generators` of shape (L, k, p, q) with L = {len(names)}, but got shape "
            f"{tuple(gens.shape)}"
        )
    var = None if variances is None else _to_numpy(variances, "variances")
    if var is not None and var.shape[:2] != gens.shape[:2]:
        raise ValueError(
            f"Expected `variances` of shape {gens.shape[:2]}, but got shape {tuple(var.shape)}"
        )
    return names, gens, var


def plot_layer_generators(
    layers: Sequence[str],
    generators: ArrayLike,
    variances: ArrayLike | None = None,
    max_generators: int = 4,
) -> Figure:
    """Heatmaps of each layer's most symmetric generators (one row per layer).

    Args:
        layers: layer names ``(L,)``.
        generators: ``(L, k, p, q)``, most symmetric first.
        variances: optional relative variances ``(L, k)`` shown in the titles.
        max_generators: how many generators per layer to draw.

    Returns:
        A figure with an ``L x min(k, max_generators)`` grid of annotated heatmaps on one
        symmetric colour scale.

    Raises:
        ValueError: if the shapes do not match.
    """
    names, gens, var = _layer_generator_data(layers, generators, variances)
    k = min(gens.shape[1], max_generators)
    scale = _symmetric_scale(gens[:, : max(1, k)])
    p, q = gens.shape[2:]
    cell = 0.32 * max(p, q) + 0.5
    fig = _new_figure(k * cell * q / max(p, q) + 1.6, len(names) * cell * p / max(p, q) + 0.5)
    axes = fig.subplots(len(names), k, squeeze=False)
    for r, name in enumerate(names):
        for c in range(k):
            ax = axes[r, c]
            ax.imshow(gens[r, c], cmap="RdBu_r", vmin=-scale, vmax=scale)
            if p * q <= 36:
                for (i, j), v in np.ndenumerate(gens[r, c]):
                    if np.isfinite(v):
                        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6)
            ax.xaxis.set_major_locator(NullLocator())
            ax.yaxis.set_major_locator(NullLocator())
            title = f"#{c}" if var is None else f"#{c} {var[r, c]:.1e}"
            ax.set_title(title, fontsize=6)
            if c == 0:
                ax.set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
    return fig


def figure_to_array(fig: Figure, close: bool = True) -> np.ndarray:
    """Render a figure to an RGB image.

    Args:
        fig: the figure to render.
        close: release the figure after rendering (clear it, and drop it from ``pyplot``'s
            registry if it was made there). Do not use the figure afterwards.

    Returns:
        An array of shape (H, W, 3), dtype uint8 (HWC, RGB), owning its memory.
    """
    canvas = fig.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        canvas = FigureCanvasAgg(fig)
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    if close:
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            pyplot.close(fig)  # no-op for figures that pyplot does not manage
        for ax in list(fig.axes):  # delaxes first: Figure.clear() would reset each axes
            fig.delaxes(ax)
        fig.clear()
    return image


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


_GRID_GAP = 2  # pixels between the frames of :func:`_image_grid`


def _image_grid(img: np.ndarray) -> tuple[np.ndarray, bool, float, float]:
    """Frames ``(T, n, C, H, W)`` or ``(T, n, H, W)`` as one ``n`` x ``T`` mosaic.

    Returns the mosaic (2-pixel light gaps), whether it is RGB, and its intensity range.
    """
    img, rgb, lo, hi = _normalized_frames(img)
    n_times, n_samples, h, w = img.shape[:4]
    gap = _GRID_GAP
    shape = (n_samples * (h + gap) - gap, n_times * (w + gap) - gap) + ((3,) if rgb else ())
    mosaic = np.full(shape, 1.0 if rgb else hi, dtype=float)
    for row in range(n_samples):
        for col in range(n_times):
            top, left = row * (h + gap), col * (w + gap)
            mosaic[top : top + h, left : left + w] = img[col, row]
    return mosaic, rgb, lo, hi


def _show_image_grid(ax: Any, img: np.ndarray, t: np.ndarray, time_fontsize: float) -> None:
    """Draw :func:`_image_grid` of ``img`` on ``ax``: columns ``t=...``, rows ``#i``, no frame."""
    mosaic, rgb, lo, hi = _image_grid(img)
    n_times, n_samples = img.shape[:2]
    h, w = img.shape[-2:]
    if rgb:
        ax.imshow(mosaic, interpolation="nearest")
    else:
        ax.imshow(mosaic, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
    gap = _GRID_GAP
    ax.set_xticks([col * (w + gap) + (w - 1) / 2 for col in range(n_times)])
    ax.set_xticklabels([f"t={v:.3g}" for v in t], fontsize=time_fontsize)
    ax.set_yticks([row * (h + gap) + (h - 1) / 2 for row in range(n_samples)])
    ax.set_yticklabels([f"#{row}" for row in range(n_samples)], fontsize=8)
    ax.tick_params(length=0, pad=2)
    for spine in ax.spines.values():
        spine.set_visible(False)


def _output_frames(
    inputs: ArrayLike, outputs: ArrayLike, times: ArrayLike, ndims: tuple[int, int], shape: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked ``inputs``, ``outputs`` (same ``(T, n)`` first) and ``times`` of a filmstrip."""
    x = _to_numpy(inputs, "inputs")
    y = _to_numpy(outputs, "outputs")
    _check_ndim(x, ndims, "inputs", shape)
    _check_ndim(y, ndims, "outputs", shape)
    t = _to_numpy(times, "times")
    _check_length(t, x.shape[0], "times", "frame (first dimension of `inputs`)")
    if y.shape[:2] != x.shape[:2]:
        raise ValueError(
            f"Expected `outputs` with the (T, n) = {x.shape[:2]} of `inputs` first, but got "
            f"shape {tuple(y.shape)}"
        )
    return x, y, t


def plot_output_filmstrip(inputs: ArrayLike, outputs: ArrayLike, times: ArrayLike) -> Figure:
    """Inputs moved along a generator and the model's outputs on them, side by side.

    For equivariant image-to-image models (segmentation, denoising, flow): the left grid shows
    exp(t h) . x, the right grid F(exp(t h) . x), one row per sample and one column per time.
    Where the model is equivariant the outputs move as the inputs do.

    Args:
        inputs: images ``(T, n, C, H, W)`` or ``(T, n, H, W)`` (C == 3 drawn as RGB, else the
            first channel in gray; volumes as :func:`volume_mid_slices`).
        outputs: the outputs ``(T, n, C', H', W')`` or ``(T, n, H', W')``; sizes may differ
            from the inputs'. Each grid has its own intensity scale.
        times: the times of shape (T,).

    Returns:
        A figure with two image axes, titled "input exp(t h) . x" and "output F(exp(t h) . x)".

    Raises:
        ValueError: if the shapes do not match.
    """
    x, y, t = _output_frames(inputs, outputs, times, (4, 5), "(T, n, C, H, W) or (T, n, H, W)")
    n_times, n_samples = x.shape[:2]
    side = 1.1
    fig = _new_figure(2 * side * n_times + 0.6, side * n_samples + 0.8)
    axes = fig.subplots(1, 2)
    for ax, img, title in zip(
        axes, (x, y), ("input exp(t h) . x", "output F(exp(t h) . x)"), strict=True
    ):
        _show_image_grid(ax, img, t, time_fontsize=7)
        ax.set_title(title, fontsize=8)
    return fig


def plot_signal_output_filmstrip(inputs: ArrayLike, outputs: ArrayLike, times: ArrayLike) -> Figure:
    """1-D inputs moved along a generator (top row) and the model's outputs on them (bottom).

    The signal version of :func:`plot_output_filmstrip`, for sequence-to-sequence models: one
    column per sample, one line per time (dark: first, light: last), the first channel drawn.

    Args:
        inputs: signals ``(T, n, C, L)`` or ``(T, n, L)``.
        outputs: the outputs ``(T, n, C', L')`` or ``(T, n, L')``; L' may differ from L.
        times: the times of shape (T,).

    Returns:
        A figure with 2 x n panels: rows "input exp(t h) . x" and "output F(exp(t h) . x)".

    Raises:
        ValueError: if the shapes do not match.
    """
    x, y, t = _output_frames(inputs, outputs, times, (3, 4), "(T, n, C, L) or (T, n, L)")
    n_times, n_samples = x.shape[:2]
    from matplotlib import colormaps

    colours = colormaps["viridis"](np.linspace(0.0, 0.85, n_times))
    fig = _new_figure(2.4 * n_samples + 0.4, 3.6)
    axes = fig.subplots(2, n_samples, sharey="row", squeeze=False)
    for row, (sig, label) in enumerate(((x, "input exp(t h) . x"), (y, "output F(exp(t h) . x)"))):
        sig = sig[:, :, 0] if sig.ndim == 4 else sig
        coord = np.linspace(-1.0, 1.0, sig.shape[-1])
        for i in range(n_samples):
            ax = axes[row, i]
            for j in range(n_times):
                ax.plot(coord, sig[j, i], color=colours[j], linewidth=1.2, label=f"t={t[j]:.3g}")
            ax.set_title(f"#{i} {label}", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(True, alpha=0.3)
    axes[0, -1].legend(fontsize=6, loc="best")
    return fig
