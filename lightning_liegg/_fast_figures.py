"""The callback's figures as arrays, cheap enough to draw at every evaluation.

Heatmaps (the generators, the spectrum's evolution) and filmstrips are composed directly as
numpy arrays: colour lookup tables, nearest-neighbour upscaling, and text drawn with Pillow in
matplotlib's own DejaVu Sans. No figure, no layout engine: a few milliseconds each. The two
plots that need axes (the spectrum on a log scale, the bias bars) reuse one matplotlib figure
per shape and process, redrawing only the axes' content.

The layouts are made for TensorBoard's image cards, which scale an image to the card's width:
the generators form a compact, roughly square grid (not one long row), small generators are
upscaled, filmstrip rows are labelled by sample and the strip's title names the generator.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np

from .plotting import (
    _check_length,
    _check_ndim,
    _check_spectrum,
    _frames_and_times,
    _layer_generator_data,
    _layer_panels,
    _log_clip,
    _normalized_frames,
    _per_generator,
    _symmetric_scale,
    _to_numpy,
)

__all__ = [
    "bias_image",
    "colorize",
    "evolution_image",
    "filmstrip_image",
    "filmstrip_title",
    "generators_image",
    "layer_generators_image",
    "layer_heatmap_image",
    "spectrum_image",
    "titled",
]

_WHITE = 255
_NAN_RGB = np.array([200, 200, 200], dtype=np.uint8)
_FRAME_RGB = np.array([60, 60, 60], dtype=np.uint8)


@functools.lru_cache(maxsize=8)
def _lut(name: str) -> np.ndarray:
    """A matplotlib colormap as a ``(256, 3)`` uint8 lookup table."""
    from matplotlib import colormaps

    return (colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255 + 0.5).astype(np.uint8)


@functools.lru_cache(maxsize=16)
def _font(size: int):  # noqa: ANN202 - a PIL font
    from PIL import ImageFont

    try:
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        return ImageFont.truetype(str(path), size)
    except (ImportError, OSError):  # pragma: no cover - matplotlib ships the font
        return ImageFont.load_default()


def colorize(values: np.ndarray, vmin: float, vmax: float, cmap: str) -> np.ndarray:
    """Map ``values`` (any shape) to RGB uint8 ``(..., 3)``; NaN and inf are light gray."""
    finite = np.isfinite(values)
    scale = (np.where(finite, values, vmin) - vmin) / (vmax - vmin if vmax > vmin else 1.0)
    index = np.clip(np.rint(scale * 255), 0, 255).astype(np.intp)
    out = _lut(cmap)[index]
    out[~finite] = _NAN_RGB
    return out


def _upscale(image: np.ndarray, fy: int, fx: int) -> np.ndarray:
    return np.repeat(np.repeat(image, fy, axis=0), fx, axis=1)


class _Canvas:
    """A white RGB array with pasted blocks and queued text (drawn in one Pillow pass)."""

    def __init__(self, height: int, width: int) -> None:
        self.pixels = np.full((height, width, 3), _WHITE, dtype=np.uint8)
        self._texts: list[tuple[float, float, str, int, str, tuple[int, int, int]]] = []

    def paste(self, block: np.ndarray, top: int, left: int) -> None:
        h, w = block.shape[:2]
        self.pixels[top : top + h, left : left + w] = block

    def frame(self, top: int, left: int, height: int, width: int) -> None:
        """A one-pixel dark frame just outside the block at (top, left)."""
        p = self.pixels
        p[top - 1, left - 1 : left + width + 1] = _FRAME_RGB
        p[top + height, left - 1 : left + width + 1] = _FRAME_RGB
        p[top - 1 : top + height + 1, left - 1] = _FRAME_RGB
        p[top - 1 : top + height + 1, left + width] = _FRAME_RGB

    def text(
        self,
        x: float,
        y: float,
        text: str,
        size: int = 12,
        anchor: str = "la",
        fill: tuple[int, int, int] = (0, 0, 0),
    ) -> None:
        """Queue ``text`` at (x, y) with a Pillow ``anchor`` ("mm": centred, "la": top left)."""
        self._texts.append((x, y, text, size, anchor, fill))

    def finish(self) -> np.ndarray:
        """The ``(H, W, 3)`` uint8 image with every queued text drawn."""
        if self._texts:
            from PIL import Image, ImageDraw

            image = Image.fromarray(self.pixels)
            draw = ImageDraw.Draw(image)
            for x, y, text, size, anchor, fill in self._texts:
                draw.text((x, y), text, fill=fill, font=_font(size), anchor=anchor)
            self.pixels = np.asarray(image).copy()
            self._texts = []
        return self.pixels


def _text_width(text: str, size: int) -> int:
    return int(math.ceil(_font(size).getlength(text)))


def _colorbar(
    canvas: _Canvas, top: int, left: int, height: int, lo: float, hi: float, cmap: str, labels
) -> None:
    """A vertical colour bar ``(height, 12)`` with ``labels`` = [(value, text), ...] at right."""
    ramp = colorize(np.linspace(hi, lo, height)[:, None], lo, hi, cmap)
    canvas.paste(np.repeat(ramp, 12, axis=1), top, left)
    canvas.frame(top, left, height, 12)
    for value, text in labels:
        y = top + (hi - value) / (hi - lo if hi > lo else 1.0) * (height - 1)
        canvas.pixels[int(round(y)), left + 12 : left + 16] = _FRAME_RGB
        canvas.text(left + 18, y, text, size=11, anchor="lm")


def _generator_panel(
    canvas: _Canvas, g: np.ndarray, top: int, left: int, cell: int, vmax: float, font: int
) -> None:
    """One generator ``(p, q)`` at (top, left) in ``cell``-pixel entries, framed.

    Colours on the symmetric scale ``RdBu_r`` in [-vmax, vmax]; each entry written in its cell
    in ``font`` (0: not written).
    """
    p, q = g.shape
    canvas.paste(_upscale(colorize(g, -vmax, vmax, "RdBu_r"), cell, cell), top, left)
    if q == p + 1:  # affine [A | b]: separate the translation column
        canvas.pixels[top : top + p * cell, left + p * cell - 1 : left + p * cell + 1] = 40
    canvas.frame(top, left, p * cell, q * cell)
    if not font:
        return
    for a in range(p):
        for b in range(q):
            value = g[a, b]
            dark = bool(np.isfinite(value)) and abs(value) > 0.6 * vmax
            canvas.text(
                left + (b + 0.5) * cell,
                top + (a + 0.5) * cell,
                f"{value:.2f}",
                size=font,
                anchor="mm",
                fill=(255, 255, 255) if dark else (0, 0, 0),
            )


def generators_image(
    generators: object,
    variances: object | None = None,
    biases: object | None = None,
    max_generators: int = 4,
    title: str | None = None,
) -> np.ndarray:
    """Annotated heatmaps of the most symmetric generators, in a roughly square grid.

    Same meaning as :func:`lightning_liegg.plotting.plot_generators` (one symmetric colour
    scale ``RdBu_r`` for all panels, each entry written in its cell, panel titles ``#i``,
    variance and bias), as an image. Small generators are upscaled (panels about 170 pixels).

    Args:
        generators: ``(k, p, q)``, most symmetric first.
        variances: ``(k,)`` or None.
        biases: ``(k,)`` or None.
        max_generators: how many panels (the first ones).
        title: optional title above the grid.

    Returns:
        ``(H, W, 3)`` uint8.
    """
    gens = _to_numpy(generators, "generators")
    _check_ndim(gens, (3,), "generators", "(k, p, q)")
    k, p, q = gens.shape
    var, bias = _per_generator(variances, biases, k)
    n = max(1, min(k, int(max_generators)))
    shown = gens[:n]
    vmax = _symmetric_scale(shown)

    cell = int(np.clip(168 // max(p, q), 28, 84))
    font = int(np.clip(cell // 3.4, 9, 16))
    panel_h, panel_w = p * cell, q * cell
    title_lines = 1 + (var is not None) + (bias is not None)
    head = 15 * title_lines + 4
    slot_w = max(panel_w, 120) + 18
    slot_h = head + panel_h + 12
    # the grid closest to square (a TensorBoard card scales the image to its width)
    cols = min(
        range(1, n + 1),
        key=lambda c: abs(math.log(math.ceil(n / c) * slot_h / (c * slot_w + 80))),
    )
    rows = math.ceil(n / cols)
    margin, top0 = 10, 10 + (22 if title else 0)
    bar_left = margin + cols * slot_w + 4
    width = bar_left + 12 + 60
    height = top0 + rows * slot_h + margin
    canvas = _Canvas(height, width)
    if title:
        canvas.text(width / 2, 8, title, size=14, anchor="mt")

    for i in range(n):
        r, c = divmod(i, cols)
        left = margin + c * slot_w + (slot_w - 18 - panel_w) // 2 + 1
        top = top0 + r * slot_h + head
        _generator_panel(canvas, shown[i], top, left, cell, vmax, font)
        lines = [f"#{i}"]
        if var is not None:
            lines.append(f"var {var[i]:.2e}")
        if bias is not None:
            lines.append(f"bias {bias[i]:.3f}")
        centre = left + panel_w / 2
        for j, line in enumerate(lines):
            canvas.text(centre, top - head + 15 * j, line, size=12, anchor="mt")
    bar_top = top0 + head
    bar_h = rows * slot_h - head - 12
    ticks = [(vmax, f"{vmax:.2f}"), (0.0, "0"), (-vmax, f"{-vmax:.2f}")]
    _colorbar(canvas, bar_top, bar_left, bar_h, -vmax, vmax, "RdBu_r", ticks)
    return canvas.finish()


def _matrix_text(h: np.ndarray) -> str:
    return "[" + "; ".join(" ".join(f"{v:.2f}" for v in row) for row in h) + "]"


def filmstrip_title(generator: object, index: int = 0, what: str | None = None) -> list[str]:
    """The filmstrip's title lines: which generator moves the samples, and its entries.

    ``what``: "invariance" or "equivariance", said after the generator's number.
    """
    h = _to_numpy(generator, "generator")
    kind = f" ({what})" if what else ""
    return [
        f"samples moved by exp(t h), h = generator #{index}{kind}",
        f"h = {_matrix_text(h)}",
    ]


def titled(image: np.ndarray, title: str) -> np.ndarray:
    """``image`` ``(H, W, 3)`` with a line of title above it (widened if the title needs it)."""
    width = max(image.shape[1], _text_width(title, 12) + 20)
    canvas = _Canvas(image.shape[0] + 22, width)
    canvas.paste(image, 22, 0)
    canvas.text(width / 2, 5, title, size=12, anchor="mt")
    return canvas.finish()


def filmstrip_image(
    frames: object, times: object, title: str | list[str] | None = None
) -> np.ndarray:
    """Samples transformed along a generator: one row per sample, one column per time.

    Args:
        frames: ``(T, n, C, H, W)`` or ``(T, n, H, W)``; C == 3 is RGB, otherwise the first
            channel in gray; one intensity scale for all frames.
        times: ``(T,)``.
        title: a line or lines above the strip (e.g. :func:`filmstrip_title`).

    Returns:
        ``(H, W, 3)`` uint8; columns labelled ``t=...``, rows ``sample i``.
    """
    img, t = _frames_and_times(frames, times, (4, 5), "(T, n, C, H, W) or (T, n, H, W)")
    n_times, n_samples = img.shape[:2]
    img, rgb, lo, hi = _normalized_frames(img)
    h, w = img.shape[2], img.shape[3]
    scale = max(1, 64 // max(h, w))
    if rgb:
        tiles = (img * 255 + 0.5).astype(np.uint8)
    else:
        tiles = colorize(img, lo, hi, "gray")
    lines = [title] if isinstance(title, str) else list(title or [])
    gap, label_w, margin = 4, 72, 8
    cell_h, cell_w = h * scale, w * scale
    top0 = margin + 16 * len(lines) + 18
    width = max(
        margin + label_w + n_times * (cell_w + gap) + margin,
        max((_text_width(line, 12) for line in lines), default=0) + 2 * margin,
    )
    height = top0 + n_samples * (cell_h + gap) + margin
    canvas = _Canvas(height, width)
    for j, line in enumerate(lines):
        canvas.text(margin, margin + 16 * j, line, size=12)
    for col in range(n_times):
        left = margin + label_w + col * (cell_w + gap)
        canvas.text(left + cell_w / 2, top0 - 4, f"t={t[col]:.3g}", size=11, anchor="ms")
        for row in range(n_samples):
            top = top0 + row * (cell_h + gap)
            canvas.paste(_upscale(tiles[col, row], scale, scale), top, left)
    for row in range(n_samples):
        centre = top0 + row * (cell_h + gap) + cell_h / 2
        canvas.text(margin, centre, f"sample {row}", size=11, anchor="lm")
    return canvas.finish()


def _log_ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    """Colour-bar labels at the top, middle and bottom of [lo, hi] (no "-0.0")."""
    digits = 1 if hi - lo >= 2 else 2
    ticks = []
    for v in (hi, (lo + hi) / 2, lo):
        text = f"{v:.{digits}f}"
        ticks.append((v, f"{0.0:.{digits}f}" if float(text) == 0 else text))
    return ticks


def _step_axis(canvas: _Canvas, steps: np.ndarray, left: int, bottom: int, cell_w: int) -> None:
    """Step labels under a heatmap with one ``cell_w``-pixel column per step, and "step".

    Every column's step when the labels fit side by side, else at most 8 evenly spaced ones
    (the last step always labelled).
    """
    n_steps = len(steps)
    fit = math.ceil((max(_text_width(f"{v:g}", 11) for v in steps) + 8) / cell_w)
    every = max(1, fit, math.ceil(n_steps / 8))
    ticks = list(range(0, n_steps, every))
    if ticks[-1] != n_steps - 1 and len(ticks) > 1:
        ticks[-1] = n_steps - 1
    for j in ticks:
        canvas.text(left + (j + 0.5) * cell_w, bottom + 4, f"{steps[j]:g}", size=11, anchor="mt")
    canvas.text(left + n_steps * cell_w / 2, bottom + 22, "step", size=11, anchor="mt")


def _fit_label(text: str, size: int, most: int) -> str:
    """``text``, or its end after an ellipsis, within ``most`` pixels.

    Layer names end in the informative part (``...layers.3.linear2``).
    """
    if _text_width(text, size) <= most:
        return text
    while len(text) > 1 and _text_width("…" + text, size) > most:
        text = text[1:]
    return "…" + text


def layer_heatmap_image(
    layers: object,
    steps: object,
    variances: object,
    reference_variances: object | None = None,
    title: str | None = None,
) -> np.ndarray:
    """Layer x evaluation heatmap of the log10 relative variance, as an image.

    Same meaning as :func:`lightning_liegg.plotting.plot_layer_heatmap` (one row per layer in
    forward order, one column per evaluation, ``magma``, NaN drawn light gray); with a
    reference the second panel ("reference algebra") sits *below* the first, on the same
    colour scale and step axis, so the image stays narrow enough to read in a TensorBoard card
    at its default size.

    Args:
        layers: layer names ``(L,)``.
        steps: evaluation steps ``(S,)``.
        variances: ``(L, S)``, the relative variance of each layer's most symmetric generator.
        reference_variances: optional ``(L, S)``, the same along the reference algebra.
        title: optional title line above.

    Returns:
        ``(H, W, 3)`` uint8.

    Raises:
        ValueError: if the shapes do not match.
    """
    names, s, logs, (lo, hi) = _layer_panels(layers, steps, variances, reference_variances)
    n_layers, n_steps = len(names), len(s)
    # about 400 pixels wide for a few evaluations: a TensorBoard card (350 CSS pixels) shows it
    # at almost its own size
    cell_w = int(np.clip(240 // n_steps, 2, 32))
    cell_h = int(np.clip(320 // (n_layers * len(logs)), 8, 28))
    labels = [_fit_label(n, 11, 180) for n in names]
    label_w = max(_text_width(t, 11) for t in labels) + 16
    margin = 10
    top0 = margin + (24 if title else 0)
    map_w, map_h = cell_w * n_steps, cell_h * n_layers
    head = 20  # each panel's name above it
    left = margin + label_w
    bar_left = left + map_w + 14
    width = max(bar_left + 12 + 52, left + _text_width("most symmetric generator", 12) + 10)
    height = top0 + len(logs) * (head + map_h) + (len(logs) - 1) * 8 + 44
    canvas = _Canvas(height, width)
    if title:
        canvas.text(width / 2, margin, title, size=13, anchor="mt")
    every = max(1, math.ceil(14 / cell_h))  # label every row when the text fits
    top = top0
    for key, values in logs.items():
        canvas.text(left, top + 2, key, size=12)
        top += head
        canvas.paste(_upscale(colorize(values, lo, hi, "magma"), cell_h, cell_w), top, left)
        canvas.frame(top, left, map_h, map_w)
        for i in range(0, n_layers, every):
            y = top + (i + 0.5) * cell_h
            canvas.text(left - 6, y, labels[i], size=11, anchor="rm")
        top += map_h + 8
    _step_axis(canvas, s, left, top - 8, cell_w)
    bar_top = top0 + head
    bar_h = top - 8 - bar_top
    _colorbar(canvas, bar_top, bar_left, bar_h, lo, hi, "magma", _log_ticks(lo, hi))
    canvas.text(bar_left, bar_top - 10, "log10", size=11, anchor="ls")
    return canvas.finish()


#: at most this many generator panels in :func:`layer_generators_image`: a deep network shows
#: fewer generators per layer (at least its most symmetric one)
MAX_LAYER_PANELS = 48


def layer_generators_image(
    layers: object,
    generators: object,
    variances: object | None = None,
    max_generators: int = 4,
    title: str | None = None,
) -> np.ndarray:
    """Each layer's most symmetric generators, one row per layer, as an image.

    Same meaning as :func:`lightning_liegg.plotting.plot_layer_generators`: one symmetric
    colour scale (``RdBu_r``) for every panel, each entry written in its cell (up to 4 x 4),
    panel titles ``#i`` with the relative variance. A deep network gets fewer generators per
    layer (at most :data:`MAX_LAYER_PANELS` panels in all) and, when one column of layers would
    be more than 3 times as tall as wide, several columns (forward order down each column): a
    TensorBoard card scales an image to its width, so a tall image stays readable, a wide one
    shrinks.

    Args:
        layers: layer names ``(L,)``.
        generators: ``(L, k, p, q)``, most symmetric first.
        variances: optional ``(L, k)``.
        max_generators: how many generators per layer (at most).
        title: optional title line above.

    Returns:
        ``(H, W, 3)`` uint8.

    Raises:
        ValueError: if the shapes do not match.
    """
    names, gens, var = _layer_generator_data(layers, generators, variances)
    n_layers = len(names)
    k = max(1, min(gens.shape[1], int(max_generators), MAX_LAYER_PANELS // n_layers))
    vmax = _symmetric_scale(gens[:, :k])  # the scale of what is drawn
    p, q = gens.shape[2:]
    cell = int(np.clip(84 // max(p, q), 8, 36))  # entries written up to 4 x 4
    font = int(np.clip(cell // 3.0, 8, 12)) if p * q <= 36 and cell >= 20 else 0
    panel_h, panel_w = p * cell, q * cell
    labels = [_fit_label(n, 11, 160) for n in names]
    label_w = max(_text_width(t, 11) for t in labels) + 14
    slot_w = max(panel_w, _text_width("#0 0.0e+00", 11)) + 14
    head = 16
    slot_h = head + panel_h + 10
    block_w = label_w + k * slot_w + 10  # one layer: its name and its panels
    cols = 1
    while cols < n_layers and math.ceil(n_layers / cols) * slot_h > 3 * (cols * block_w + 70):
        cols += 1
    per_col = math.ceil(n_layers / cols)
    margin = 10
    top0 = margin + (24 if title else 0)
    bar_left = margin + cols * block_w
    width = bar_left + 12 + 52
    height = top0 + per_col * slot_h + margin
    canvas = _Canvas(height, width)
    if title:
        canvas.text(width / 2, margin, title, size=13, anchor="mt")
    for r, label in enumerate(labels):
        col, row = divmod(r, per_col)
        left0 = margin + col * block_w + label_w
        top = top0 + row * slot_h + head
        canvas.text(left0 - 8, top + panel_h / 2, label, size=11, anchor="rm")
        for c in range(k):
            left = left0 + c * slot_w + (slot_w - 14 - panel_w) // 2
            _generator_panel(canvas, gens[r, c], top, left, cell, vmax, font)
            text = f"#{c}" if var is None else f"#{c} {var[r, c]:.1e}"
            canvas.text(left + panel_w / 2, top - head + 1, text, size=11, anchor="mt")
    bar_top = top0 + head
    bar_h = per_col * slot_h - head - 10
    ticks = [(vmax, f"{vmax:.2f}"), (0.0, "0"), (-vmax, f"{-vmax:.2f}")]
    _colorbar(canvas, bar_top, bar_left, bar_h, -vmax, vmax, "RdBu_r", ticks)
    return canvas.finish()


def evolution_image(steps: object, spectra: object) -> np.ndarray:
    """Heatmap of the log10 relative spectrum over training (step on x, generator index on y).

    Args:
        steps: ``(S,)``.
        spectra: ``(S, m)``, one ascending relative spectrum per step.

    Returns:
        ``(H, W, 3)`` uint8 (viridis, with a colour bar in log10 relative variance).
    """
    spec = _to_numpy(spectra, "spectra")
    _check_ndim(spec, (2,), "spectra", "(S, m)")
    s = _to_numpy(steps, "steps")
    n_steps, m = spec.shape
    _check_length(s, n_steps, "steps", "row of `spectra`")
    values = np.log10(_log_clip(spec)).T[::-1]  # (m, S), generator 0 at the bottom
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 0.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    cell_w = int(np.clip(360 // n_steps, 6, 48))
    cell_h = int(np.clip(200 // m, 8, 40))
    left, top, margin = 46, 40, 10
    map_w, map_h = cell_w * n_steps, cell_h * m
    bar_left = left + map_w + 14
    width = max(bar_left + 12 + 52, 260)
    height = top + map_h + 40
    canvas = _Canvas(height, width)
    canvas.text(margin, 6, "relative spectrum over training (log10)", size=12)
    canvas.paste(_upscale(colorize(values, lo, hi, "viridis"), cell_h, cell_w), top, left)
    canvas.frame(top, left, map_h, map_w)
    every = max(1, math.ceil(m / 10))
    for i in range(0, m, every):
        y = top + map_h - (i + 0.5) * cell_h
        canvas.text(left - 6, y, str(i), size=11, anchor="rm")
    _step_axis(canvas, s, left, top + map_h, cell_w)
    canvas.text(margin, top - 4, "gen.", size=11, anchor="ls")
    _colorbar(canvas, top, bar_left, map_h, lo, hi, "viridis", _log_ticks(lo, hi))
    return canvas.finish()


# -- plots with axes, drawn as arrays too --------------------------------------------------
_C0, _C1, _C2, _C3 = (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)
_GRID = np.array([230, 230, 230], dtype=np.uint8)


class _Axes:
    """A plot area on a :class:`_Canvas`: data-to-pixel maps, ticks, grid, labels, lines."""

    def __init__(
        self,
        canvas: _Canvas,
        box: tuple[int, int, int, int],
        xlim: tuple[float, float],
        ylim: tuple[float, float],
    ) -> None:
        self.canvas = canvas
        self.top, self.left, self.height, self.width = box
        self.xlim, self.ylim = xlim, ylim
        self._lines: list[tuple[list[tuple[float, float]], tuple[int, int, int], int, str]] = []
        self._dots: list[tuple[float, float, tuple[int, int, int]]] = []

    def x(self, value: float) -> float:
        lo, hi = self.xlim
        return self.left + (value - lo) / (hi - lo) * (self.width - 1)

    def y(self, value: float) -> float:
        lo, hi = self.ylim
        return self.top + (hi - value) / (hi - lo) * (self.height - 1)

    def xticks(self, values: list[float], labels: list[str]) -> None:
        p, bottom = self.canvas.pixels, self.top + self.height
        for value, label in zip(values, labels, strict=True):
            col = int(round(self.x(value)))
            p[self.top : bottom, col] = _GRID
            p[bottom : bottom + 4, col] = _FRAME_RGB
            self.canvas.text(col, bottom + 5, label, size=10, anchor="mt")

    def yticks(self, values: list[float], labels: list[str]) -> None:
        p = self.canvas.pixels
        for value, label in zip(values, labels, strict=True):
            row = int(round(self.y(value)))
            p[row, self.left : self.left + self.width] = _GRID
            p[row, self.left - 4 : self.left] = _FRAME_RGB
            self.canvas.text(self.left - 6, row, label, size=10, anchor="rm")

    def labels(self, xlabel: str, ylabel: str) -> None:
        c = self.canvas
        c.text(
            self.left + self.width / 2, self.top + self.height + 22, xlabel, size=11, anchor="mt"
        )
        c.text(self.left - 8, self.top - 6, ylabel, size=11, anchor="ls")

    def span(self, x0: float, x1: float, rgb: tuple[int, int, int], alpha: float) -> None:
        a, b = int(round(self.x(x0))), int(round(self.x(x1)))
        region = self.canvas.pixels[self.top : self.top + self.height, max(a, self.left) : b]
        region[:] = (region * (1 - alpha) + np.array(rgb) * alpha).astype(np.uint8)

    def vline(self, value: float, rgb: tuple[int, int, int], dash: int) -> None:
        col = int(round(self.x(value)))
        rows = np.arange(self.top, self.top + self.height)
        if dash:
            rows = rows[(rows - self.top) % (2 * dash) < dash]
        self.canvas.pixels[rows, col : col + 2] = rgb

    def line(self, points: list[tuple[float, float]], rgb, width: int = 2) -> None:  # noqa: ANN001
        self._lines.append(([(self.x(a), self.y(b)) for a, b in points], rgb, width, "line"))

    def dot(self, x: float, y: float, rgb: tuple[int, int, int]) -> None:
        self._dots.append((self.x(x), self.y(y), rgb))

    def frame(self) -> None:
        self.canvas.frame(self.top, self.left, self.height, self.width)

    def draw_vectors(self) -> None:
        """Lines and dots (anti-aliasing is not needed at this size), drawn with Pillow."""
        if not (self._lines or self._dots):
            return
        from PIL import Image, ImageDraw

        image = Image.fromarray(self.canvas.pixels)
        draw = ImageDraw.Draw(image)
        for points, rgb, width, _ in self._lines:
            if len(points) > 1:
                draw.line(points, fill=rgb, width=width)
        for x, y, rgb in self._dots:
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=rgb)
        self.canvas.pixels = np.asarray(image).copy()


def _int_ticks(m: int, most: int = 12) -> list[int]:
    step = max(1, math.ceil(m / most))
    return list(range(0, m, step))


def _legend(canvas: _Canvas, right: int, bottom: int, entries: list) -> None:
    """A framed legend box whose lower right corner is at (right, bottom)."""
    if not entries:
        return
    width = max(_text_width(text, 10) for text, _, _ in entries) + 40
    height = 16 * len(entries) + 6
    top, left = bottom - height, right - width
    canvas.pixels[top:bottom, left:right] = _WHITE
    canvas.frame(top, left, height, width)
    for j, (text, rgb, dash) in enumerate(entries):
        y = top + 11 + 16 * j
        for x in range(left + 6, left + 28):
            if not dash or (x - left) % (2 * dash) < dash:
                canvas.pixels[y - 1 : y + 1, x] = rgb
        canvas.text(left + 32, y, text, size=10, anchor="lm")


def spectrum_image(
    relative_spectrum: object, reference_dim: int | None = None, symmetry_dim: int | None = None
) -> np.ndarray:
    """The relative spectrum on a log scale, as :func:`lightning_liegg.plotting.plot_spectrum`.

    Marks the symmetry dimension (shaded, dotted line, the gap in decades) and the reference
    algebra's dimension (dashed), with a legend. Zeros are drawn at ``LOG_FLOOR``.

    Returns:
        ``(H, W, 3)`` uint8.
    """
    spec = _check_spectrum(relative_spectrum, reference_dim, symmetry_dim)
    m = spec.shape[0]
    shown = _log_clip(spec)
    logs = np.log10(shown)
    finite = logs[np.isfinite(logs)]
    lo, hi = (math.floor(finite.min()), math.ceil(finite.max())) if finite.size else (-16, 1)
    if hi - lo < 2:
        lo, hi = lo - 1, hi + 1
    width = max(330, min(620, 24 * m + 220))
    canvas = _Canvas(256, width)
    ax = _Axes(canvas, (24, 64, 184, width - 80), (-0.7, m - 0.3), (lo - 0.2, hi + 0.2))
    every = max(1, math.ceil((hi - lo) / 8))
    decades = list(range(hi, lo - 1, -every))
    ax.yticks(decades, [f"1e{e}" for e in decades])
    ticks = _int_ticks(m)
    ax.xticks(ticks, [str(t) for t in ticks])
    entries = []
    if symmetry_dim is not None:
        d = int(symmetry_dim)
        if d > 0:
            ax.span(-0.7, d - 0.5, _C2, 0.12)
        ax.vline(d - 0.5, _C2, dash=2)
        entries.append((f"symmetry dim {d}", _C2, 2))
        if 0 < d < m and np.isfinite(logs[d - 1]) and np.isfinite(logs[d]):
            low, high = logs[d - 1], logs[d]
            ax.line([(d - 0.5, low), (d - 0.5, high)], _C2, width=1)
            canvas.text(
                ax.x(d - 0.35), ax.y((low + high) / 2), f"gap {high - low:.1f} decades", size=10,
                anchor="lm", fill=_C2,
            )  # fmt: skip
    if reference_dim is not None:
        ax.vline(int(reference_dim) - 0.5, _C3, dash=5)
        entries.append(("reference dim", _C3, 5))
    points = [(i, v) for i, v in enumerate(logs) if np.isfinite(v)]
    ax.line(points, _C0)
    for i, v in points:
        ax.dot(i, v, _C0)
    ax.frame()
    ax.labels("generator index (ascending)", "relative variance (log scale)")
    ax.draw_vectors()
    _legend(canvas, ax.left + ax.width - 4, ax.top + ax.height - 4, entries)
    return canvas.finish()


def bias_image(biases: object) -> np.ndarray:
    """Bars of the symmetry bias of each generator, as :func:`lightning_liegg.plotting.plot_bias`.

    Returns:
        ``(H, W, 3)`` uint8; NaN entries get no bar.
    """
    bias = _to_numpy(biases, "biases")
    _check_ndim(bias, (1,), "biases", "(m,)")
    m = bias.shape[0]
    width = max(300, min(620, 22 * m + 200))
    canvas = _Canvas(240, width)
    ax = _Axes(canvas, (24, 56, 168, width - 72), (-0.7, m - 0.3), (0.0, 1.05))
    values = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    ax.yticks(values, [f"{v:.1f}" for v in values])
    ticks = _int_ticks(m)
    ax.xticks(ticks, [str(t) for t in ticks])
    base = int(round(ax.y(0.0)))
    for i, value in enumerate(bias):
        if not np.isfinite(value):
            continue
        a, b = int(round(ax.x(i - 0.4))), int(round(ax.x(i + 0.4)))
        top = int(round(ax.y(float(np.clip(value, 0.0, 1.05)))))
        canvas.pixels[top : base + 1, a : b + 1] = _C1
    ax.frame()
    ax.labels("generator index (ascending variance)", "symmetry bias")
    return canvas.finish()
