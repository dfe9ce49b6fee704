"""Figures for signals, volumes and channel maps: generator shapes and filmstrips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

import lightning_liegg as lg
from lightning_liegg import _fast_figures as _draw
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
    var = torch.rand(k)
    fig = plot_generators(g, var, None, max_generators=4)
    image = _draw.generators_image(g, var, None, 4)
    assert len(_image_axes(fig)) == 1 and np.array_equal(figure_to_array(fig), image)
    cell = _draw._cell_size(p, q)
    assert _draw._entry_font(cell) >= 9  # every entry written, up to 5 x 5
    # the first panel's entries, upscaled: the colour of entry (0, 0) fills a cell at the
    # panel's top left corner (the first framed block)
    frame = np.argwhere((image == _draw._FRAME_RGB).all(axis=-1))
    top, left = frame.min(axis=0) + 1
    vmax = float(g[:4].abs().max())
    colour = _draw.colorize(g[0, :1, :1].numpy(), -vmax, vmax, "RdBu_r")[0, 0]
    corner = image[top : top + 4, left : left + 4]
    assert (corner == colour).all()
    separator = (image[top : top + p * cell, left + p * cell - 1] == 40).all()
    assert bool(separator) == (q == p + 1)  # [A | b] is split before the translation column


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
    image = _draw.filmstrip_image(volume_mid_slices(frames), times)
    assert len(_image_axes(fig)) == 1 and np.array_equal(figure_to_array(fig), image)
    middle = _draw.filmstrip_image(frames[..., shape[-3] // 2, :, :], times)  # x-y slice only
    gaps = (image == _draw._NAN_RGB).all(axis=-1).sum()  # between the slices: NaN, gray
    assert gaps >= 2 * (middle == _draw._NAN_RGB).all(-1).sum() + shape[0] * shape[1] * 2 * 6
    with pytest.raises(ValueError, match="Expected `frames`"):
        plot_volume_filmstrip(torch.rand(2, 1, 4, 4), [0.0, 1.0])
