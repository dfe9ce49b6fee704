"""Figures of LieGG results, built from tensors.

Every function takes tensors (``torch.Tensor``, ``numpy.ndarray`` or nested sequences) and
returns a :class:`matplotlib.figure.Figure` with an Agg canvas attached. Figures are built
without ``pyplot``: no global figure registry grows and no backend is switched. The caller
decides where a figure goes (``fig.savefig(...)``, a logger, or :func:`figure_to_array`).

One figure system: the callback's figures (generators, spectrum, bias, evolution, image
filmstrip, layer heatmap, layer generators) are drawn once, as images, by the same code that
draws them for TensorBoard; these functions show that image in a figure, one figure pixel per
image pixel at the figure's dpi, so a notebook shows exactly what TensorBoard logged
(``figure_to_array(plot_generators(...))`` is that image). The plots that only a notebook
draws (histories, signal filmstrips, filmstrips of outputs) are drawn with matplotlib axes.

Example:
    >>> from lightning_liegg import plotting
    >>> fig = plotting.plot_generators(report.generators, report.spectrum)  # doctest: +SKIP
    >>> image = plotting.figure_to_array(fig)  # (H, W, 3) uint8  # doctest: +SKIP
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from . import _fast_figures as _draw
from ._figure_data import (
    LOG_FLOOR,  # noqa: F401 - part of this module's documented interface
    ArrayLike,
    _check_length,
    _check_ndim,
    _frames_and_times,
    _log_clip,
    _normalized_frames,
    _to_numpy,
)
from .exceptions import LieGGError  # a ValueError

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

_DPI = 90


def _image_figure(image: np.ndarray) -> Figure:
    """A figure that shows ``image`` ``(H, W, 3)`` uint8 at its own size (one pixel each).

    ``figure_to_array`` of it gives ``image`` back; at another dpi it is resampled.
    """
    height, width = image.shape[:2]
    fig = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.imshow(image, interpolation="nearest", aspect="auto")
    ax.set_axis_off()
    return fig


def _titled(image: np.ndarray, title: str | None) -> np.ndarray:
    return image if title is None else _draw.titled(image, title)


def plot_generators(
    generators: ArrayLike,
    variances: ArrayLike | None = None,
    biases: ArrayLike | None = None,
    max_generators: int = 4,
    title: str | None = None,
) -> Figure:
    """Annotated heatmaps of the most symmetric generators.

    All panels share one symmetric colour scale (``vmax = max |entry|`` over the panels shown),
    so the size of entries can be compared across generators. Each entry is written in its
    cell (where the text fits), each panel's number, variance and bias beside it; the panels
    form the grid closest to 16:9, with one colour bar.

    Args:
        generators: generator matrices of shape (k, p, q), most symmetric first
            (e.g. ``SymmetryReport.generators``).
        variances: symmetry variance of each generator, shape (k,), or None.
        biases: symmetry bias of each generator, shape (k,), or None.
        max_generators: how many of the first generators to draw (at least 1).
        title: optional figure title.

    Returns:
        A figure showing ``min(k, max_generators)`` heatmap panels and one colour bar.

    Raises:
        ValueError: if a shape is wrong or ``max_generators < 1``.
    """
    return _image_figure(
        _draw.generators_image(generators, variances, biases, max_generators, title)
    )


def plot_spectrum(
    relative_spectrum: ArrayLike,
    reference_dim: int | None = None,
    symmetry_dim: int | None = None,
    title: str | None = None,
) -> Figure:
    """Relative symmetry spectrum on a log scale.

    Args:
        relative_spectrum: relative variances sigma_i^2 / sigma_max^2 of shape (m,), ascending
            (e.g. ``SymmetryReport.relative_spectrum``). Zeros and negative round-off are drawn
            at ``LOG_FLOOR``; NaN entries are left out.
        reference_dim: dimension of the reference algebra; a dashed line is drawn after that
            many entries. None: no line.
        symmetry_dim: detected symmetry dimension; the gap after that many entries is marked
            (shaded, a dotted line, the gap as a ratio, ``x42.6``). None: no mark.
        title: optional title line above.

    Returns:
        A figure with the plot (a legend when a dimension is marked).

    Raises:
        ValueError: if ``relative_spectrum`` is not 1-D or a dimension is outside ``[0, m]``.
    """
    image = _draw.spectrum_image(relative_spectrum, reference_dim, symmetry_dim)
    return _image_figure(_titled(image, title))


def plot_bias(biases: ArrayLike, title: str | None = None) -> Figure:
    """Bar chart of the symmetry bias of each generator.

    Args:
        biases: symmetry bias of each generator, shape (m,), in [0, 1]
            (0: inside the reference algebra, 1: orthogonal to it). NaN entries get no bar.
        title: optional title line above.

    Returns:
        A figure with the bars on a [0, 1.05] axis.

    Raises:
        ValueError: if ``biases`` is not 1-D.
    """
    return _image_figure(_titled(_draw.bias_image(biases), title))


def plot_filmstrip(
    frames: ArrayLike, times: ArrayLike, title: str | Sequence[str] | None = None
) -> Figure:
    """Samples transformed along a generator, one row per sample, one column per time.

    Args:
        frames: images of shape (T, n, C, H, W) or (T, n, H, W): ``n`` samples, each
            transformed at ``T`` times. C == 3 is drawn as RGB, otherwise the first channel
            in gray. All frames share one intensity scale.
        times: the times of shape (T,).
        title: optional line or lines above the grid.

    Returns:
        A figure with the ``n`` x ``T`` grid of frames, columns labelled ``t=...`` and rows
        ``sample i``; small frames are upscaled.

    Raises:
        ValueError: if the shapes do not match.
    """
    lines = [title] if isinstance(title, str) else title
    return _image_figure(_draw.filmstrip_image(frames, times, lines))


def plot_evolution(steps: ArrayLike, spectra: ArrayLike, title: str | None = None) -> Figure:
    """Heatmap of the relative spectrum over training.

    Args:
        steps: training steps (or epochs) of shape (S,).
        spectra: relative spectra of shape (S, m), one ascending spectrum per step.
        title: optional title line above.

    Returns:
        A figure with the heatmap (step on x, generator index on y, generator 0 at the bottom)
        and a colour bar in log10 relative variance.

    Raises:
        ValueError: if the shapes do not match.
    """
    return _image_figure(_titled(_draw.evolution_image(steps, spectra), title))


def plot_layer_heatmap(
    layers: Sequence[str],
    steps: ArrayLike,
    variances: ArrayLike,
    reference_variances: ArrayLike | None = None,
    title: str | None = None,
) -> Figure:
    """Layer x evaluation heatmap of the log10 relative variance: where a symmetry sits, when.

    One row per layer (forward order, the first layer at the top, the output at the bottom),
    one column per evaluation. Dark cells are nearly symmetric representations, so invariance
    spreading through the network shows as a dark region growing over training and depth.

    Args:
        layers: layer names ``(L,)``.
        steps: evaluation steps ``(S,)``.
        variances: relative variance of each layer's most symmetric generator ``(L, S)``
            (NaN: not evaluated, drawn light gray).
        reference_variances: optional ``(L, S)`` relative variance along the reference
            algebra (mean over its basis); drawn as a second panel beside the first, on the
            same rows and colour scale.
        title: optional title line above.

    Returns:
        A figure with one or two heatmap panels and a shared colour bar (log10).

    Raises:
        ValueError: if the shapes do not match.
    """
    return _image_figure(
        _draw.layer_heatmap_image(layers, steps, variances, reference_variances, title)
    )


def plot_layer_generators(
    layers: Sequence[str],
    generators: ArrayLike,
    variances: ArrayLike | None = None,
    max_generators: int = 4,
    title: str | None = None,
) -> Figure:
    """Heatmaps of each layer's most symmetric generators (one row per layer).

    Args:
        layers: layer names ``(L,)``.
        generators: ``(L, k, p, q)``, most symmetric first.
        variances: optional relative variances ``(L, k)`` shown in the titles.
        max_generators: how many generators per layer to draw.
        title: optional title line above.

    Returns:
        A figure with the layers' rows of annotated heatmaps on one symmetric colour scale
        (several columns of layers for a deep network).

    Raises:
        ValueError: if the shapes do not match.
    """
    return _image_figure(
        _draw.layer_generators_image(layers, generators, variances, max_generators, title)
    )


def _new_figure(width: float, height: float) -> Figure:
    """A pyplot-free figure with an Agg canvas and constrained layout."""
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
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
        raise LieGGError(f"Expected `volumes` of shape (..., D, H, W), but got {vol.shape}")
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
        raise LieGGError("Expected at least one history in `values`, but got an empty mapping")
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
        raise LieGGError(
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
