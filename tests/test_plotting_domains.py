"""Figures for signals, volumes and channel maps: generator shapes and filmstrips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

import lightning_liegg as lg
from lightning_liegg.plotting import (
    figure_to_array,
    plot_generators,
    plot_signal_filmstrip,
    plot_volume_filmstrip,
    volume_mid_slices,
)


def _image_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if any(isinstance(a, AxesImage) for a in ax.get_images())]


@pytest.mark.parametrize(
    "shape",
    [(1, 1, 1), (2, 1, 2), (9, 3, 3), (12, 3, 4), (9, 3, 3)],
    ids=["signal-1x1", "signal-affine-1x2", "volume-3x3", "volume-affine-3x4", "rgb-3x3"],
)
def test_generator_heatmaps_for_every_domain(shape: tuple[int, int, int]) -> None:
    g = torch.randn(*shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    k, p, q = shape
    fig = plot_generators(g, torch.rand(k), None, max_generators=4)
    axes = _image_axes(fig)
    assert len(axes) == min(k, 4)
    assert [t.get_text() for t in axes[0].texts] == [f"{v:.2f}" for v in g[0].flatten().tolist()]
    assert axes[0].get_images()[0].get_array().shape == (p, q)
    affine_line = any(line.get_linestyle() == "--" for line in axes[0].get_lines())
    assert affine_line == (q == p + 1)  # [A | b] is split before the translation column
    image = figure_to_array(fig)
    assert image.ndim == 3 and image.shape[2] == 3 and image.shape[0] > 20


@pytest.mark.parametrize("shape", [(3, 2, 1, 40), (4, 1, 25)], ids=["TnCL", "TnL"])
def test_plot_signal_filmstrip(shape: tuple[int, ...]) -> None:
    frames = torch.rand(*shape, dtype=torch.float64)
    times = torch.linspace(0, 1, shape[0])
    fig = plot_signal_filmstrip(frames, times)
    axes = [ax for ax in fig.axes if ax.get_lines()]
    assert len(axes) == shape[1]
    lines = axes[0].get_lines()
    assert [line.get_label() for line in lines] == [f"t={t:.3g}" for t in times.tolist()]
    first = frames[1, 0, 0] if len(shape) == 4 else frames[1, 0]
    assert np.allclose(lines[1].get_ydata(), first.numpy())
    assert np.allclose(lines[1].get_xdata(), np.linspace(-1, 1, shape[-1]))
    assert figure_to_array(fig).shape[2] == 3


def test_signal_filmstrip_of_a_shift() -> None:
    """The example's call: frames of SignalAction.transform with a 1-D tensor of times."""
    x = torch.sin(torch.linspace(0, 6, 32))[None].repeat(2, 1)
    times = torch.tensor([0.0, 0.2, 0.4])
    frames = lg.SignalAction(affine=True).transform(x, lg.algebras.translation1d()[0], times)
    fig = plot_signal_filmstrip(frames, times)
    assert len([ax for ax in fig.axes if ax.get_lines()]) == 2


def test_volume_mid_slices_layout() -> None:
    d, h, w = 5, 7, 9
    vol = torch.arange(d * h * w, dtype=torch.float64).reshape(d, h, w)
    out = volume_mid_slices(vol)
    assert out.shape == (max(h, d), 2 * w + h + 2)
    assert np.array_equal(out[:h, :w], vol[d // 2].numpy())  # x-y at the middle depth
    assert np.array_equal(out[:d, w + 1 : 2 * w + 1], vol[:, h // 2].numpy())  # x-z
    assert np.array_equal(out[:d, 2 * w + 2 :], vol[:, :, w // 2].numpy())  # y-z
    assert np.isnan(out[d:, w + 1 :]).all() and np.isnan(out[:, w]).all()
    assert volume_mid_slices(torch.zeros(2, 3, d, h, w)).shape == (2, 3, h, 2 * w + h + 2)
    with pytest.raises(ValueError, match=r"\(\.\.\., D, H, W\)"):
        volume_mid_slices(torch.zeros(4, 4))


@pytest.mark.parametrize("shape", [(2, 3, 1, 5, 6, 7), (3, 1, 6, 6, 6)], ids=["TnCDHW", "TnDHW"])
def test_plot_volume_filmstrip(shape: tuple[int, ...]) -> None:
    frames = torch.rand(*shape, dtype=torch.float64)
    times = torch.linspace(0, 1, shape[0])
    fig = plot_volume_filmstrip(frames, times)
    (ax,) = _image_axes(fig)
    d, h, w = shape[-3:]
    mosaic = ax.get_images()[0].get_array()
    cell_h, cell_w = max(h, d), 2 * w + h + 2
    assert mosaic.shape[:2] == (shape[1] * (cell_h + 2) - 2, shape[0] * (cell_w + 2) - 2)
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"t={t:.3g}" for t in times.tolist()]
    with pytest.raises(ValueError, match="Expected `frames`"):
        plot_volume_filmstrip(torch.rand(2, 1, 4, 4), [0.0, 1.0])
