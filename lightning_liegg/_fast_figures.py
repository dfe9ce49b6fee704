"""The library's figures, drawn as arrays: cheap enough for every evaluation, and the only drawing.

Each of the callback's figures (generators, spectrum, bias, evolution, image filmstrip,
layer heatmap, layer generators) is drawn here and nowhere else: the callback logs these
arrays, and :mod:`lightning_liegg.plotting` shows the same arrays in a matplotlib figure for
notebooks. Heatmaps are colour lookup tables upscaled by repetition, text is drawn with
Pillow in matplotlib's own DejaVu Sans, and axes, ticks, legends and colour bars are drawn
by the small helpers below (:class:`_Axes`, :func:`_legend`, :func:`_colorbar`).

Why not matplotlib's axes: a set must cost at most 0.15 s (the callback's budget), and
matplotlib is an order of magnitude over it. Measured on the 2-core development machine
(shared, loaded) at commit 4c45e89, where both drawings existed, for one payload of the
rotated-digits shapes (4 generators 2 x 2, 7 evaluations, an 8-frame filmstrip): the set as
matplotlib figures rendered with ``figure_to_array`` (``draw_figures``, fixed layouts where
cheap) took 1.44 s, the arrays 0.064 s; with the two layer figures of 10 layers 7.8 s and
0.18 s. Even a single matplotlib axes with fixed ticks, no layout engine and a reused figure
costs about 0.1 s of CPU there (tick, text and line objects). ``benchmarks/bench_callback.py``
times a set of these figures.

The layouts are made for TensorBoard's Time Series cards (about 380 x 215 pixels, an image
scaled to fit): the generator grid, the spectrum and the layer heatmap are near 16:9 and about
430-480 pixels wide, with 14-pixel text, so text reads at about 11 pixels in a card; small
generators are upscaled, filmstrip rows are labelled by sample and the strip's title names the
generator.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np

from ._figure_data import (
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
from .exceptions import LieGGError  # a ValueError

__all__ = [
    "bias_image",
    "colorize",
    "evolution_image",
    "filmstrip_image",
    "filmstrip_title",
    "generator_caption",
    "generators_image",
    "layer_generators_image",
    "layer_heatmap_image",
    "spectrum_image",
    "titled",
]

_WHITE = 255
_NAN_RGB = np.array([200, 200, 200], dtype=np.uint8)
_FRAME_RGB = np.array([60, 60, 60], dtype=np.uint8)
#: text and title sizes in pixels: at least 11 pixels once TensorBoard's Time Series card
#: (about 380 x 215) has scaled an image of about 470 x 260 down
_TEXT, _TITLE = 14, 15


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
        canvas.text(left + 18, y, text, size=_TEXT, anchor="lm")


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


def generator_caption(index: int, variance: float | None, bias: float | None) -> list[str]:
    """The lines written beside generator ``#index``: its number, variance and bias."""
    lines = [f"#{index}"]
    if variance is not None:
        lines.append(f"var {variance:.1e}")
    if bias is not None:
        lines.append(f"bias {bias:.2f}")
    return lines


def _entry_font(cell: int, most: int = 14) -> int:
    """The largest font (9 to ``most`` pixels) whose "-0.00" fits a ``cell``; 0 if none."""
    for size in range(most, 8, -1):
        if _text_width("\u22120.00", size) <= cell - 4:
            return size
    return 0


def _cell_size(p: int, q: int) -> int:
    """Pixels per entry of a ``(p, q)`` generator panel: 44 up to 3 x 3, 32 for 5 x 5."""
    return int(np.clip(160 // max(p, q), 12, 44))


def _check_count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise LieGGError(f"Expected `{name}` to be a positive integer, but got {value!r}")
    return int(value)


def generators_image(
    generators: object,
    variances: object | None = None,
    biases: object | None = None,
    max_generators: int = 4,
    title: str | None = None,
) -> np.ndarray:
    """Annotated heatmaps of the most symmetric generators, in a grid near 16:9.

    One symmetric colour scale ``RdBu_r`` for all panels (``vmax`` = the largest entry shown,
    in absolute value), each entry written in its cell where the text fits, the generator's
    number, variance and bias beside it (:func:`generator_caption`), one colour bar. The grid
    has the columns that bring the image closest to 16:9, the shape of a TensorBoard card,
    which scales an image to fit: four 2 x 2 generators make one row about 470 pixels wide,
    so 14-pixel text reads at about 11 pixels in a 380 x 215 card.

    Args:
        generators: ``(k, p, q)``, most symmetric first.
        variances: ``(k,)`` or None.
        biases: ``(k,)`` or None.
        max_generators: how many panels (the first ones), at least 1.
        title: optional title above the grid.

    Returns:
        ``(H, W, 3)`` uint8.

    Raises:
        ValueError: if a shape is wrong or ``max_generators < 1``.
    """
    gens = _to_numpy(generators, "generators")
    _check_ndim(gens, (3,), "generators", "(k, p, q)")
    n = min(gens.shape[0], _check_count(max_generators, "max_generators"))
    k, p, q = gens.shape
    var, bias = _per_generator(variances, biases, k)
    shown = gens[:n]
    vmax = _symmetric_scale(shown)

    cell = _cell_size(p, q)
    font = _entry_font(cell)
    panel_h, panel_w = p * cell, q * cell
    captions = [
        generator_caption(
            i, None if var is None else float(var[i]), None if bias is None else float(bias[i])
        )
        for i in range(n)
    ]
    caption_w = max(_text_width(line, _TEXT) for lines in captions for line in lines)
    line_h = _TEXT + 4
    slot_w = panel_w + 8 + caption_w + 12
    slot_h = max(panel_h, line_h * len(captions[0])) + 14
    margin, top0 = 10, 10 + (_TITLE + 10 if title else 0)
    bar_w = 12 + 8 + _text_width(f"{-vmax:.2f}", _TEXT)

    def shape(cols: int) -> tuple[int, int]:
        return top0 + math.ceil(n / cols) * slot_h + margin, margin + cols * slot_w + bar_w + 10

    cols = min(range(1, n + 1), key=lambda c: abs(math.log(shape(c)[1] / shape(c)[0] / (16 / 9))))
    height, width = shape(cols)
    canvas = _Canvas(height, max(width, (_text_width(title, _TITLE) + 20) if title else 0))
    if title:
        canvas.text(canvas.pixels.shape[1] / 2, 8, title, size=_TITLE, anchor="mt")
    for i in range(n):
        r, c = divmod(i, cols)
        left = margin + c * slot_w + 1
        top = top0 + r * slot_h + 1
        _generator_panel(canvas, shown[i], top, left, cell, vmax, font)
        for j, line in enumerate(captions[i]):
            canvas.text(left + panel_w + 8, top + line_h * j, line, size=_TEXT)
    bar_left = margin + cols * slot_w
    ticks = [(vmax, f"{vmax:.2f}"), (0.0, "0"), (-vmax, f"{-vmax:.2f}")]
    bar_h = math.ceil(n / cols) * slot_h - 14
    _colorbar(canvas, top0 + 1, bar_left, bar_h, -vmax, vmax, "RdBu_r", ticks)
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
    width = max(image.shape[1], _text_width(title, _TITLE) + 20)
    head = _TITLE + 10
    canvas = _Canvas(image.shape[0] + head, width)
    canvas.paste(image, head, 0)
    canvas.text(width / 2, 6, title, size=_TITLE, anchor="mt")
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
    fit = math.ceil((max(_text_width(f"{v:g}", _TEXT) for v in steps) + 8) / cell_w)
    every = max(1, fit, math.ceil(n_steps / 8))
    ticks = list(range(0, n_steps, every))
    if ticks[-1] != n_steps - 1 and len(ticks) > 1:
        ticks[-1] = n_steps - 1
    for j in ticks:
        canvas.text(left + (j + 0.5) * cell_w, bottom + 4, f"{steps[j]:g}", size=_TEXT, anchor="mt")
    canvas.text(left + n_steps * cell_w / 2, bottom + 22, "step", size=_TEXT, anchor="mt")


def _fit_label(text: str, size: int, most: int) -> str:
    """``text``, or its end after an ellipsis, within ``most`` pixels.

    Layer names end in the informative part (``...layers.3.linear2``).
    """
    if _text_width(text, size) <= most:
        return text
    while len(text) > 1 and _text_width("…" + text, size) > most:
        text = text[1:]
    return "…" + text


#: the layer heatmap's panel names, short enough for two panels in a TensorBoard card
_PANEL_NAMES = {"most symmetric generator": "most symmetric"}


def layer_heatmap_image(
    layers: object,
    steps: object,
    variances: object,
    reference_variances: object | None = None,
    title: str | None = None,
) -> np.ndarray:
    """Layer x evaluation heatmap of the log10 relative variance: where a symmetry sits, when.

    One row per layer (forward order, the first layer at the top, the output at the bottom),
    one column per evaluation, ``magma``, NaN (not evaluated) light gray. Dark cells are nearly
    symmetric representations, so invariance spreading through the network shows as a dark
    region growing over training and depth. With a reference, a second panel ("reference
    algebra") sits *beside* the first, on the same colour scale and rows: the image stays near
    16:9, the shape of a TensorBoard card (about 470 x 260 pixels for 10 layers).

    Args:
        layers: layer names ``(L,)``.
        steps: evaluation steps ``(S,)``.
        variances: ``(L, S)``, the relative variance of each layer's most symmetric generator.
        reference_variances: optional ``(L, S)``, the same along the reference algebra (mean
            over its basis).
        title: optional title line above.

    Returns:
        ``(H, W, 3)`` uint8.

    Raises:
        ValueError: if the shapes do not match.
    """
    names, s, logs, (lo, hi) = _layer_panels(layers, steps, variances, reference_variances)
    n_layers, n_steps, n_panels = len(names), len(s), len(logs)
    cell_w = int(np.clip((280 // n_panels) // n_steps, 2, 40))
    cell_h = int(np.clip(170 // n_layers, 6, 28))
    labels = [_fit_label(n, _TEXT, 150) for n in names]
    label_w = max(_text_width(t, _TEXT) for t in labels) + 16
    margin, gap = 10, 14
    map_w, map_h = cell_w * n_steps, cell_h * n_layers
    shown = {key: _PANEL_NAMES.get(key, key) for key in logs}
    slot_w = max(map_w, *(_text_width(name, _TEXT) for name in shown.values())) + gap
    head = _TEXT + 8  # each panel's name (with two) and the colour bar's unit above
    top = margin + (_TITLE + 10 if title else 0) + head
    left0 = margin + label_w
    bar_left = left0 + n_panels * slot_w
    width = bar_left + 12 + 14 + _text_width("-00.0", _TEXT)
    height = top + map_h + 2 * _TEXT + 20
    canvas = _Canvas(height, max(width, (_text_width(title, _TITLE) + 20) if title else 0))
    if title:
        canvas.text(canvas.pixels.shape[1] / 2, margin, title, size=_TITLE, anchor="mt")
    for p, (key, values) in enumerate(logs.items()):
        left = left0 + p * slot_w
        if n_panels > 1:
            canvas.text(left, top - head, shown[key], size=_TEXT)
        canvas.paste(_upscale(colorize(values, lo, hi, "magma"), cell_h, cell_w), top, left)
        canvas.frame(top, left, map_h, map_w)
        _step_axis(canvas, s, left, top + map_h, cell_w)
    every = max(1, math.ceil((_TEXT + 2) / cell_h))  # label every row when the text fits
    for i in range(0, n_layers, every):
        canvas.text(left0 - 6, top + (i + 0.5) * cell_h, labels[i], size=_TEXT, anchor="rm")
    _colorbar(canvas, top, bar_left, map_h, lo, hi, "magma", _log_ticks(lo, hi))
    canvas.text(bar_left, top - 4, "log10", size=_TEXT, anchor="ls")
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
            self.canvas.text(col, bottom + 5, label, size=_TEXT, anchor="mt")

    def yticks(self, values: list[float], labels: list[str]) -> None:
        p = self.canvas.pixels
        for value, label in zip(values, labels, strict=True):
            row = int(round(self.y(value)))
            p[row, self.left : self.left + self.width] = _GRID
            p[row, self.left - 4 : self.left] = _FRAME_RGB
            self.canvas.text(self.left - 6, row, label, size=_TEXT, anchor="rm")

    def labels(self, xlabel: str, ylabel: str) -> None:
        c = self.canvas
        c.text(
            self.left + self.width / 2, self.top + self.height + 24, xlabel, size=_TEXT, anchor="mt"
        )
        c.text(self.left - 8, self.top - 6, ylabel, size=_TEXT, anchor="ls")

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
    width = max(_text_width(text, _TEXT) for text, _, _ in entries) + 40
    height = (_TEXT + 6) * len(entries) + 6
    top, left = bottom - height, right - width
    canvas.pixels[top:bottom, left:right] = _WHITE
    canvas.frame(top, left, height, width)
    for j, (text, rgb, dash) in enumerate(entries):
        y = top + 3 + (_TEXT + 6) * j + (_TEXT + 6) // 2
        for x in range(left + 6, left + 28):
            if not dash or (x - left) % (2 * dash) < dash:
                canvas.pixels[y - 1 : y + 1, x] = rgb
        canvas.text(left + 32, y, text, size=_TEXT, anchor="lm")


def spectrum_image(
    relative_spectrum: object, reference_dim: int | None = None, symmetry_dim: int | None = None
) -> np.ndarray:
    """The relative spectrum on a log scale, as :func:`lightning_liegg.plotting.plot_spectrum`.

    Marks the symmetry dimension (shaded, dotted line, the gap as a ratio, ``x42.6``, as
    printed) and the reference algebra's dimension (dashed), with a legend. Zeros are drawn at
    ``LOG_FLOOR``.

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
    width = max(430, min(620, 24 * m + 310))  # near 16:9 with a title line (TensorBoard cards)
    canvas = _Canvas(226, width)
    ax = _Axes(canvas, (26, 72, 146, width - 88), (-0.7, m - 0.3), (lo - 0.2, hi + 0.2))
    every = max(1, math.ceil((hi - lo) / 6))
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
                ax.x(d - 0.35), ax.y((low + high) / 2), f"gap x{10.0 ** (high - low):.3g}",
                size=_TEXT, anchor="lm", fill=_C2,
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
    width = max(400, min(620, 22 * m + 290))
    canvas = _Canvas(226, width)
    ax = _Axes(canvas, (26, 60, 146, width - 76), (-0.7, m - 0.3), (0.0, 1.05))
    values = [0.0, 0.25, 0.5, 0.75, 1.0]
    ax.yticks(values, [f"{v:g}" for v in values])
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
