"""Tests of lightning_liegg.plotting: figures built from tensors, without pyplot."""

from __future__ import annotations

import gc
import textwrap
import tracemalloc
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from lightning_liegg import _fast_figures as _draw
from lightning_liegg.plotting import (
    figure_to_array,
    plot_bias,
    plot_evolution,
    plot_filmstrip,
    plot_generators,
    plot_history,
    plot_spectrum,
)

# Figures are drawn repeatedly during training; these bound what one call may leave behind.
# (A leaked figure of plot_generators holds about 0.75 MB of traced Python memory.)
LEAK_ITERATIONS = 20
TRACED_ITERATIONS = 5
TRACED_GROWTH_LIMIT = 2e6  # bytes over TRACED_ITERATIONS calls


def _image_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if any(isinstance(a, AxesImage) for a in ax.get_images())]


@pytest.fixture
def generators() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    g = torch.randn(6, 2, 2, generator=gen, dtype=torch.float64)
    return g / g.flatten(1).norm(dim=1)[:, None, None]


def _shows(fig: Figure, image: np.ndarray) -> bool:
    """The figure is one image axes that renders to exactly ``image`` (one drawing path)."""
    return len(_image_axes(fig)) == 1 and np.array_equal(figure_to_array(fig), image)


def _pixels(image: np.ndarray, rgb: Any) -> np.ndarray:
    return np.argwhere((image == np.asarray(rgb, dtype=np.uint8)).all(axis=-1))


@pytest.mark.parametrize(
    ("shape", "max_generators"),
    [((6, 2, 2), 1), ((3, 2, 3), 10), ((16, 4, 4), 4), ((25, 5, 5), 2)],
    ids=["2x2", "2x3-all", "4x4", "5x5"],
)
def test_plot_generators_panels(shape: tuple[int, int, int], max_generators: int) -> None:
    g = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    k = shape[0]
    var, bias = torch.rand(k), torch.rand(k)
    fig = plot_generators(g, var, bias, max_generators=max_generators, title="t")
    assert isinstance(fig, Figure)
    assert _shows(fig, _draw.generators_image(g, var, bias, max_generators, "t"))
    # one full-blue or full-red block per panel: the largest entry of each shown panel
    n = min(k, max_generators)
    image = _draw.generators_image(g, var, bias, max_generators)
    panels = image[:, : image.shape[1] - 70]  # leave out the colour bar
    lut = _draw._lut("RdBu_r")
    largest = [g[i].abs().max() for i in range(n)]
    i = int(np.argmax(largest))  # the panel holding vmax
    colour = lut[255] if g[i].flatten()[g[i].abs().argmax()] > 0 else lut[0]
    assert len(_pixels(panels, colour)) >= 12 * 12


def test_plot_generators_annotations_and_titles(generators: torch.Tensor) -> None:
    assert _draw.generator_caption(0, 1.2e-4, 0.02) == ["#0", "var 1.2e-04", "bias 0.02"]
    assert _draw.generator_caption(3, None, None) == ["#3"]
    # entries are written where "-0.00" fits the cell (2 x 2 to 5 x 5), at 9 pixels or more
    for size in (2, 3, 4, 5):
        assert _draw._entry_font(_draw._cell_size(size, size)) >= 9, size
    # captions and entries are drawn: ink beside each panel, and inside light cells
    plain = _draw.generators_image(generators[:1])
    captioned = _draw.generators_image(generators[:1], [1.2e-4], [0.02])
    assert captioned.shape[1] > plain.shape[1]  # the longer caption is written beside it


def test_plot_generators_shared_symmetric_scale(generators: torch.Tensor) -> None:
    generators = generators.clone()
    generators[2, 1, 0] = -3.0  # the largest |entry| is negative: full blue
    image = figure_to_array(plot_generators(generators, max_generators=4))
    lut = _draw._lut("RdBu_r")
    blue = _pixels(image[:, : image.shape[1] - 70], lut[0])
    assert len(blue) >= 20 * 20  # the -3 entry, upscaled
    # no other entry reaches the end of the scale (|entry| <= 1 for unit generators)
    assert len(_pixels(image[:, : image.shape[1] - 70], lut[255])) == 0
    # the same entry in a panel of its own is full blue too: the scale is the panels' vmax
    ones = _draw.generators_image(generators[2:3])
    assert len(_pixels(ones[:, : ones.shape[1] - 70], lut[0])) >= 20 * 20


def test_plot_generators_zero_and_nan() -> None:
    g = torch.zeros(2, 2, 2)
    image = figure_to_array(plot_generators(g))
    centre = _draw.colorize(np.zeros(1), -1.0, 1.0, "RdBu_r")[0]
    assert len(_pixels(image, centre)) >= 2 * 4 * 30 * 30  # every entry at the scale's middle
    g[0, 0, 0] = float("nan")
    image = figure_to_array(plot_generators(g, variances=[float("nan"), 0.0]))
    assert len(_pixels(image, _draw._NAN_RGB)) >= 30 * 30


@pytest.mark.parametrize(
    "spectrum",
    [
        torch.logspace(-12, 0, 10),
        torch.tensor([float("nan"), 0.0, -1e-18, 1e-20, 0.5, 1.0]),
        torch.full((4,), float("nan")),
        torch.zeros(1),
    ],
    ids=["logspace", "nan-zero-negative", "all-nan", "single-zero"],
)
def test_plot_spectrum_robust(spectrum: torch.Tensor) -> None:
    m = spectrum.shape[0]
    for reference_dim, symmetry_dim in [(1, 0), (m, 1)]:
        fig = plot_spectrum(spectrum, reference_dim=reference_dim, symmetry_dim=symmetry_dim)
        assert _shows(fig, _draw.spectrum_image(spectrum, reference_dim, symmetry_dim))
    assert figure_to_array(plot_spectrum(spectrum)).std() > 0


def test_plot_spectrum_marks() -> None:
    spectrum = torch.cat([torch.tensor([1e-14, 1e-13]), torch.logspace(-4, 0, 8)])
    marked = figure_to_array(plot_spectrum(spectrum, reference_dim=3, symmetry_dim=2))
    plain = figure_to_array(plot_spectrum(spectrum))
    assert len(_pixels(plain, _draw._C2)) == 0 and len(_pixels(plain, _draw._C3)) == 0
    green, red = _pixels(marked, _draw._C2), _pixels(marked, _draw._C3)
    assert len(green) > 100 and len(red) > 100
    # the symmetry line (after 2 entries) lies left of the reference line (after 3), one
    # index apart: the columns where each colour is most frequent
    g_col = np.bincount(green[:, 1]).argmax()
    r_col = np.bincount(red[:, 1]).argmax()
    dots = _pixels(marked, _draw._C0)
    step = (dots[:, 1].max() - dots[:, 1].min()) / (len(spectrum) - 1)
    assert abs((r_col - g_col) - step) <= 3
    titled = figure_to_array(plot_spectrum(spectrum, title="spectrum"))
    assert titled.shape[0] > plain.shape[0]


def test_plot_bias() -> None:
    fig = plot_bias(np.array([0.0, 0.3, 1.0, np.nan]))
    image = figure_to_array(fig)
    orange = (image == np.array(_draw._C1, dtype=np.uint8)).all(axis=-1)
    heights = orange.sum(axis=0)
    bars = heights[heights > 1]  # the 0.0 bar is one pixel high, NaN has none
    assert abs(bars.min() / bars.max() - 0.3) < 0.03  # 0.3 and 1.0
    assert len(np.unique(bars)) == 2


@pytest.mark.parametrize(
    "shape",
    [(5, 2, 28, 28), (5, 2, 1, 28, 28), (3, 1, 3, 8, 8), (3, 2, 2, 8, 10)],
    ids=["THW", "gray", "rgb", "two-channel"],
)
def test_plot_filmstrip(shape: tuple[int, ...]) -> None:
    frames = torch.rand(*shape, generator=torch.Generator().manual_seed(2))
    times = torch.linspace(0, 1, shape[0])
    fig = plot_filmstrip(frames, times, title="t")
    assert _shows(fig, _draw.filmstrip_image(frames, times, ["t"]))


def test_plot_filmstrip_time_label() -> None:
    plain = figure_to_array(plot_filmstrip(torch.rand(2, 1, 4, 4), [0.25, 0.5]))
    titled = figure_to_array(plot_filmstrip(torch.rand(2, 1, 4, 4), [0.25, 0.5], ["a", "b"]))
    assert titled.shape[0] > plain.shape[0]


@pytest.mark.parametrize("n_steps", [1, 7])
def test_plot_evolution(n_steps: int) -> None:
    spectra = torch.sort(torch.rand(n_steps, 9), dim=1).values
    spectra[:, 0] = 0.0
    steps = torch.arange(n_steps) * 100
    image = _draw.evolution_image(steps, spectra)
    assert _shows(plot_evolution(steps, spectra), image)
    # generator 0 (the exact zero, at the floor: the darkest colour) in the bottom row
    dark = _pixels(image, _draw._lut("viridis")[0])
    bright = _pixels(image, _draw._lut("viridis")[255])
    assert len(dark) > 0 and len(bright) > 0
    assert dark[:, 0].mean() > bright[:, 0].mean()


def test_inputs_untouched(generators: torch.Tensor) -> None:
    g = generators.clone().requires_grad_(True)
    before = g.detach().clone()
    array = generators.numpy().copy()
    plot_generators(g)
    plot_generators(array)
    assert torch.equal(g.detach(), before) and g.grad is None
    np.testing.assert_array_equal(array, generators.numpy())


def test_plot_history() -> None:
    values = {
        "liegg/symmetry_variance": [1e-1, 1e-3, 0.0],
        "liegg/symmetry_bias": [None, 0.5, 0.2],
        "liegg/symmetry_dim": torch.tensor([0, 1, 1]),
        "liegg/subspace_distance": np.array([1.0, 0.5, 0.1]),
    }
    fig = plot_history([0, 10, 20], values)
    assert len(fig.axes) == 4
    scales = {ax.get_title(): ax.get_yscale() for ax in fig.axes}
    assert scales["liegg/symmetry_variance"] == "log"
    assert scales["liegg/symmetry_bias"] == "linear"
    assert len(plot_history(torch.arange(2), {"a": [1.0, 2.0]}).axes) == 1


def test_figure_to_array(generators: torch.Tensor) -> None:
    fig = plot_generators(generators)
    width, height = (fig.get_size_inches() * fig.dpi).round().astype(int)
    image = figure_to_array(fig, close=False)
    assert image.dtype == np.uint8
    assert image.shape == (height, width, 3)
    assert image.std() > 0
    assert fig.axes  # still usable
    np.testing.assert_array_equal(figure_to_array(fig), image)
    assert not fig.axes  # released


def test_figure_to_array_foreign_canvas() -> None:
    fig = Figure(figsize=(1, 1), dpi=50)  # no canvas attached by the caller
    fig.add_subplot().plot([0, 1], [1, 0])
    assert figure_to_array(fig).shape == (50, 50, 3)


@pytest.mark.parametrize(
    ("function", "args"),
    [
        (plot_generators, (torch.zeros(2, 2),)),
        (plot_generators, (torch.zeros(0, 2, 2),)),
        (plot_generators, (torch.zeros(3, 2, 2), torch.zeros(2))),
        (plot_generators, (torch.zeros(3, 2, 2), None, torch.zeros(3, 1))),
        (plot_generators, (torch.zeros(3, 2, 2), None, None, 0)),
        (plot_spectrum, (torch.zeros(3, 2),)),
        (plot_spectrum, (torch.zeros(3), 4)),
        (plot_spectrum, (torch.zeros(3), None, -1)),
        (plot_bias, (torch.zeros(2, 2),)),
        (plot_filmstrip, (torch.zeros(3, 2, 4), torch.zeros(3))),
        (plot_filmstrip, (torch.zeros(3, 2, 4, 4), torch.zeros(2))),
        (plot_evolution, (torch.zeros(3), torch.zeros(3))),
        (plot_evolution, (torch.zeros(2), torch.zeros(3, 4))),
        (plot_history, (torch.zeros(3), {"a": [1.0, 2.0]})),
        (plot_history, (torch.zeros(3), {})),
        (plot_bias, ("abc",)),
    ],
    ids=lambda v: getattr(v, "__name__", None) or "",
)
def test_bad_arguments(function: Callable[..., Figure], args: tuple[Any, ...]) -> None:
    with pytest.raises(ValueError, match="Expected"):
        function(*args)


def test_no_pyplot_figures_and_no_leak() -> None:
    pyplot = pytest.importorskip("matplotlib.pyplot")  # only to read its registry
    gens = torch.randn(2, 2, 2)
    assert pyplot.get_fignums() == []
    refs = []
    for _ in range(LEAK_ITERATIONS):
        fig = plot_generators(gens, torch.rand(2), torch.rand(2), max_generators=1)
        refs.append(weakref.ref(fig))
        figure_to_array(fig)
        del fig
    assert pyplot.get_fignums() == []
    gc.collect()
    assert sum(r() is not None for r in refs) == 0, "figures were kept alive"


def test_traced_memory_bounded() -> None:
    gens = torch.randn(1, 2, 2)
    for _ in range(2):  # warm caches (fonts, text layout)
        figure_to_array(plot_generators(gens))
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(TRACED_ITERATIONS):
            figure_to_array(plot_generators(gens))
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert growth < TRACED_GROWTH_LIMIT, f"traced memory grew by {growth / 1e6:.2f} MB"


def test_module_never_switches_backend(run_script) -> None:
    """In a fresh interpreter: no pyplot import, no matplotlib.use, backend unchanged."""
    script = textwrap.dedent(
        """
        import sys
        import matplotlib
        def forbidden(*args, **kwargs):
            raise AssertionError("matplotlib.use was called")
        matplotlib.use = forbidden
        from lightning_liegg import plotting
        import numpy as np
        figs = [
            plotting.plot_generators(np.ones((2, 2, 3))),
            plotting.plot_spectrum(np.array([0.0, 1e-3, 1.0]), 1, 1),
            plotting.plot_bias(np.array([0.1, 0.9])),
            plotting.plot_filmstrip(np.random.rand(2, 1, 3, 4, 4), [0.0, 1.0]),
            plotting.plot_evolution([0], np.array([[1e-3, 1.0]])),
            plotting.plot_history([0, 1], {"symmetry_variance": [1.0, 0.1]}),
        ]
        for fig in figs:
            plotting.figure_to_array(fig)
        assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
        print(matplotlib.get_backend())
        """
    )
    result = run_script("-c", script, env={"MPLBACKEND": "svg"}, timeout=120)
    assert result.stdout.strip().lower() == "svg"
