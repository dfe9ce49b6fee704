"""The layer-wise figures: shapes, NaN cells, errors."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_liegg import _fast_figures as _draw
from lightning_liegg import plotting


def test_layer_heatmap_one_and_two_panels() -> None:
    names = ["net.1", "net.3", "output"]
    values = np.array([[1e-1, 1e-2, np.nan], [1e-3, 1e-4, 1e-5], [0.5, 0.2, 0.1]])
    for reference in (None, values * 10):
        fig = plotting.plot_layer_heatmap(names, [0, 10, 20], values, reference, title="t")
        assert len(fig.axes) == 1  # the image of the one drawing
        image = _draw.layer_heatmap_image(names, [0, 10, 20], values, reference, title="t")
        assert np.array_equal(plotting.figure_to_array(fig), image)
        # the NaN cell (not evaluated) is drawn light gray, in the first row, last column
        gray = np.argwhere((image == _draw._NAN_RGB).all(axis=-1))
        dark = np.argwhere((image == _draw._lut("magma")[0]).all(axis=-1))  # 1e-5: row 2
        assert len(gray) >= 50 and gray[:, 0].mean() < dark[:, 0].min()


def test_layer_heatmap_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"shape \(L, S\) = \(2, 3\)"):
        plotting.plot_layer_heatmap(["a", "b"], [0, 1, 2], np.ones((3, 2)))


def test_layer_generators_grid() -> None:
    gens = np.random.default_rng(0).normal(size=(3, 4, 2, 2))
    fig = plotting.plot_layer_generators(["a", "b", "c"], gens, np.ones((3, 4)), max_generators=2)
    image = _draw.layer_generators_image(["a", "b", "c"], gens, np.ones((3, 4)), max_generators=2)
    assert len(fig.axes) == 1 and np.array_equal(plotting.figure_to_array(fig), image)
    with pytest.raises(ValueError, match=r"\(L, k, p, q\)"):
        plotting.plot_layer_generators(["a"], gens)
