"""The layer-wise figures: shapes, NaN cells, errors."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_liegg import plotting


def test_layer_heatmap_one_and_two_panels() -> None:
    names = ["net.1", "net.3", "output"]
    values = np.array([[1e-1, 1e-2, np.nan], [1e-3, 1e-4, 1e-5], [0.5, 0.2, 0.1]])
    fig = plotting.plot_layer_heatmap(names, [0, 10, 20], values)
    assert len(fig.axes) == 2  # the heatmap and its colorbar
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == names
    image = plotting.figure_to_array(fig)
    assert image.ndim == 3 and image.shape[2] == 3
    fig = plotting.plot_layer_heatmap(names, [0, 10, 20], values, values * 10)
    assert len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes[:2]] == [
        "most symmetric generator",
        "reference algebra",
    ]
    plotting.figure_to_array(fig)


def test_layer_heatmap_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"shape \(L, S\) = \(2, 3\)"):
        plotting.plot_layer_heatmap(["a", "b"], [0, 1, 2], np.ones((3, 2)))


def test_layer_generators_grid() -> None:
    gens = np.random.default_rng(0).normal(size=(3, 4, 2, 2))
    fig = plotting.plot_layer_generators(["a", "b", "c"], gens, np.ones((3, 4)), max_generators=2)
    assert len(fig.axes) == 6
    assert fig.axes[0].get_ylabel() == "a"
    plotting.figure_to_array(fig)
    with pytest.raises(ValueError, match=r"\(L, k, p, q\)"):
        plotting.plot_layer_generators(["a"], gens)
