"""Tests of lightning_liegg.plotting: figures built from tensors, without pyplot."""

from __future__ import annotations

import gc
import pathlib
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

from lightning_liegg.plotting import (
    figure_to_array,
    plot_bias,
    plot_evolution,
    plot_filmstrip,
    plot_generators,
    plot_history,
    plot_spectrum,
)

PLOTTING_FILE = pathlib.Path(__file__).resolve().parents[1] / "lightning_liegg" / "plotting.py"

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


@pytest.mark.parametrize(
    ("shape", "max_generators"),
    [((6, 2, 2), 1), ((3, 2, 3), 10), ((16, 4, 4), 4), ((25, 5, 5), 2)],
    ids=["2x2", "2x3-all", "4x4", "5x5"],
)
def test_plot_generators_panels(shape: tuple[int, int, int], max_generators: int) -> None:
    g = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    k = shape[0]
    fig = plot_generators(g, torch.rand(k), torch.rand(k), max_generators=max_generators, title="t")
    assert isinstance(fig, Figure)
    n = min(k, max_generators)
    assert len(_image_axes(fig)) == n
    assert len(fig.axes) == n + 1  # one shared colorbar


def test_plot_generators_annotations_and_titles(generators: torch.Tensor) -> None:
    variances = torch.tensor([1.2e-4, 3e-3, 0.1, 0.2, 0.5, 1.0])
    biases = torch.tensor([0.02, 0.5, 1.0, 1.0, 1.0, 1.0])
    fig = plot_generators(generators, variances, biases, max_generators=3)
    for i, ax in enumerate(_image_axes(fig)):
        texts = [t.get_text() for t in ax.texts]
        expected = [f"{v:.2f}" for v in generators[i].flatten().tolist()]
        assert texts == expected
        assert ax.get_title() == f"#{i}  var {variances[i].item():.1e}  bias {biases[i].item():.2f}"
    assert _image_axes(fig)[0].get_title() == "#0  var 1.2e-04  bias 0.02"


def test_plot_generators_shared_symmetric_scale(generators: torch.Tensor) -> None:
    generators = generators.clone()
    generators[2, 1, 0] = -3.0  # the largest |entry| is negative
    fig = plot_generators(generators, max_generators=4)
    clims = [ax.get_images()[0].get_clim() for ax in _image_axes(fig)]
    assert len(clims) == 4
    assert all(c == clims[0] for c in clims)
    low, high = clims[0]
    assert low == -high
    assert high == pytest.approx(3.0)


def test_plot_generators_zero_and_nan() -> None:
    g = torch.zeros(2, 2, 2)
    fig = plot_generators(g)
    assert fig.axes[0].get_images()[0].get_clim() == (-1.0, 1.0)
    g[0, 0, 0] = float("nan")
    figure_to_array(plot_generators(g, variances=[float("nan"), 0.0]))


def test_inputs_untouched(generators: torch.Tensor) -> None:
    g = generators.clone().requires_grad_(True)
    before = g.detach().clone()
    array = generators.numpy().copy()
    plot_generators(g)
    plot_generators(array)
    assert torch.equal(g.detach(), before) and g.grad is None
    np.testing.assert_array_equal(array, generators.numpy())


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
        (ax,) = fig.axes
        assert ax.get_yscale() == "log"
    image = figure_to_array(fig)
    assert image.std() > 0


def test_plot_spectrum_marks() -> None:
    spectrum = torch.cat([torch.tensor([1e-14, 1e-13]), torch.logspace(-4, 0, 8)])
    fig = plot_spectrum(spectrum, reference_dim=3, symmetry_dim=2)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "reference dim" in labels
    assert "symmetry dim 2" in labels
    vlines = {line.get_label(): line.get_xdata()[0] for line in ax.get_lines()[1:]}
    assert vlines["reference dim"] == pytest.approx(2.5)
    assert vlines["symmetry dim 2"] == pytest.approx(1.5)
    assert any("gap" in t.get_text() for t in ax.texts)
    assert plot_spectrum(spectrum).axes[0].get_legend() is None


def test_plot_bias() -> None:
    fig = plot_bias(np.array([0.0, 0.3, 1.0, np.nan]))
    (ax,) = fig.axes
    assert len(ax.patches) == 4
    assert ax.get_ylim() == (0.0, 1.05)
    assert figure_to_array(fig).std() > 0


@pytest.mark.parametrize(
    "shape",
    [(5, 2, 28, 28), (5, 2, 1, 28, 28), (3, 1, 3, 8, 8), (3, 2, 2, 8, 10)],
    ids=["THW", "gray", "rgb", "two-channel"],
)
def test_plot_filmstrip(shape: tuple[int, ...]) -> None:
    n_times, n_samples = shape[:2]
    frames = torch.rand(*shape, generator=torch.Generator().manual_seed(2))
    times = torch.linspace(0, 1, n_times)
    fig = plot_filmstrip(frames, times)
    (ax,) = _image_axes(fig)  # the grid is one image
    labels = [label.get_text() for label in ax.get_xticklabels()]
    assert labels == [f"t={t:.3g}" for t in times.tolist()]
    assert [label.get_text() for label in ax.get_yticklabels()] == [
        f"#{i}" for i in range(n_samples)
    ]
    mosaic = ax.get_images()[0].get_array()
    h, w = shape[-2:]
    assert mosaic.shape[:2] == (n_samples * (h + 2) - 2, n_times * (w + 2) - 2)
    # frame (t=1, sample 0) sits in row 0, column 1 of the grid
    frame = frames[1, 0, 0] if len(shape) == 5 and shape[2] != 3 else frames[1, 0]
    if len(shape) == 5 and shape[2] == 3:
        return
    assert np.allclose(mosaic[:h, w + 2 : 2 * w + 2], frame.numpy())


def test_plot_filmstrip_time_label() -> None:
    fig = plot_filmstrip(torch.rand(2, 1, 4, 4), [0.25, 0.5])
    assert fig.axes[0].get_xticklabels()[0].get_text() == "t=0.25"


@pytest.mark.parametrize("n_steps", [1, 7])
def test_plot_evolution(n_steps: int) -> None:
    spectra = torch.sort(torch.rand(n_steps, 9), dim=1).values
    spectra[:, 0] = 0.0
    fig = plot_evolution(torch.arange(n_steps) * 100, spectra)
    assert len(fig.axes) == 2  # the heatmap and its colorbar
    (ax,) = _image_axes(fig)
    assert ax.get_images()[0].get_array().shape == (9, n_steps)
    assert fig.axes[1].get_ylabel() == "log10 relative variance"


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
        f"""
        import importlib.util, sys
        import matplotlib
        def forbidden(*args, **kwargs):
            raise AssertionError("matplotlib.use was called")
        matplotlib.use = forbidden
        spec = importlib.util.spec_from_file_location("plotting", {str(PLOTTING_FILE)!r})
        plotting = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(plotting)
        import numpy as np
        figs = [
            plotting.plot_generators(np.ones((2, 2, 3))),
            plotting.plot_spectrum(np.array([0.0, 1e-3, 1.0]), 1, 1),
            plotting.plot_bias(np.array([0.1, 0.9])),
            plotting.plot_filmstrip(np.random.rand(2, 1, 3, 4, 4), [0.0, 1.0]),
            plotting.plot_evolution([0], np.array([[1e-3, 1.0]])),
            plotting.plot_history([0, 1], {{"symmetry_variance": [1.0, 0.1]}}),
        ]
        for fig in figs:
            plotting.figure_to_array(fig)
        assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
        print(matplotlib.get_backend())
        """
    )
    result = run_script("-c", script, env={"MPLBACKEND": "svg"}, timeout=120)
    assert result.stdout.strip().lower() == "svg"
