"""The callback's figures for every domain: generator heatmaps of each shape, the filmstrip
drawn as the domain needs (or none), inputs beside outputs for image and volume outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lightning_liegg as lg
from lightning_liegg import plotting
from lightning_liegg._fast_figures import _NAN_RGB as _NAN_GRAY
from lightning_liegg._media import FigurePayload, draw_figures, filmstrip_kind, render_media
from lightning_liegg.history import Evaluation


def _model(x: torch.Tensor) -> torch.Tensor:
    flat = x.flatten(1)
    return torch.stack([(flat**2).sum(1), flat[:, : flat.shape[1] // 2].sin().sum(1)], 1)


# action, samples shape, generator shape, filmstrip kind
CASES = {
    "signal 1x1": (lg.SignalAction(), (6, 2, 16), (1, 1), "signal"),
    "signal 1x2": (lg.SignalAction(affine=True), (6, 16), (1, 2), "signal"),
    "image 2x2": (lg.ImageAction(), (6, 1, 8, 8), (2, 2), "image"),
    "volume 3x3": (lg.VolumeAction(), (6, 1, 5, 6, 7), (3, 3), "volume"),
    "volume 3x4": (lg.VolumeAction(affine=True), (6, 5, 6, 7), (3, 4), "volume"),
    "colour 3x3": (lg.ChannelAction(3), (6, 3, 5, 5), (3, 3), "image"),
    "channels 5x5 signal": (lg.ChannelAction(5), (6, 5, 9), (5, 5), "signal"),
    "channels 4x4 vector": (lg.ChannelAction(4), (6, 4), (4, 4), None),
    "vector 3x3": (lg.VectorAction(dim=3, channels=2), (6, 6), (3, 3), None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_figures_for_every_domain(case):
    action, shape, generator_shape, kind = CASES[case]
    x = torch.rand(*shape, dtype=torch.float64)
    rep = lg.liegg(_model, x, action)
    assert tuple(rep.generators.shape[1:]) == generator_shape
    assert filmstrip_kind(action, x) == kind
    history = [Evaluation.from_report(rep, 0, 0, "fit", 0.1, 4)]
    payload = FigurePayload.build(rep, history, action, x, 4, 3)
    images = render_media(payload)
    expected = {"generators", "spectrum", "evolution"} | ({"filmstrip"} if kind else set())
    assert set(images) == expected
    assert payload.generators.shape[1:] == generator_shape
    for image in images.values():
        assert image.dtype == np.uint8 and image.ndim == 3 and min(image.shape[:2]) > 50
    if kind is not None:
        assert payload.frames_kind == kind and payload.frames.shape[:2] == (5, 3)
        # frames are the samples moved along the most symmetric generator
        moved = action.transform(x[:3], rep.generators[0], torch.tensor(0.5))
        np.testing.assert_allclose(payload.frames[2], moved.numpy(), rtol=1e-5, atol=1e-6)


def test_filmstrip_draws_signals_as_lines_and_volumes_as_slices():
    for case, lines in (("signal 1x2", True), ("volume 3x3", False), ("image 2x2", False)):
        action, shape, _, _ = CASES[case]
        x = torch.rand(*shape, dtype=torch.float64)
        rep = lg.liegg(_model, x, action)
        history = [Evaluation.from_report(rep, 0, 0, "fit", 0.1, 4)]
        fig = draw_figures(FigurePayload.build(rep, history, action, x, 4, 2))["filmstrip"]
        axes = fig.axes
        assert bool(axes[0].lines) == lines, case
        assert bool(axes[0].images) != lines, case
        if not lines:  # images and volumes: the one drawing of render_media, shown
            (image,) = axes[0].images
            logged = render_media(FigurePayload.build(rep, history, action, x, 4, 2))
            assert np.array_equal(image.get_array(), logged["filmstrip"])
        if case.startswith("volume"):  # the three mid-slices, apart: gray gaps between
            assert (image.get_array() == _NAN_GRAY).all(axis=-1).sum() >= 2 * 5 * 2 * 8


@pytest.mark.parametrize("c_out", [1, 3])
def test_plot_output_filmstrip(c_out):
    inputs = np.random.rand(5, 2, 1, 8, 8)
    outputs = np.random.rand(5, 2, c_out, 6, 10)  # other sizes than the inputs
    fig = plotting.plot_output_filmstrip(inputs, outputs, np.linspace(0, 1, 5))
    left, right = fig.axes
    assert left.images[0].get_array().shape[:2] == (2 * 8 + 2, 5 * 8 + 8)
    assert right.images[0].get_array().shape[:2] == (2 * 6 + 2, 5 * 10 + 8)
    assert "input" in left.get_title() and "output" in right.get_title()
    assert plotting.figure_to_array(fig).shape[2] == 3
    with pytest.raises(ValueError, match=r"\(T, n\)"):
        plotting.plot_output_filmstrip(inputs, outputs[:, :1], np.linspace(0, 1, 5))
    with pytest.raises(ValueError, match="times"):
        plotting.plot_output_filmstrip(inputs, outputs, np.linspace(0, 1, 4))


def test_volume_outputs_are_drawn_as_mid_slices_beside_the_inputs():
    action = lg.VolumeAction()
    x = torch.rand(4, 1, 5, 6, 7, dtype=torch.float64)

    def model(v):  # volume in, volume out: a scalar (the mean) times the volume
        return v.mean((1, 2, 3, 4)).reshape(-1, 1, 1, 1, 1) * v

    rep = lg.liegg(model, x, action, output_action=action)
    history = [Evaluation.from_report(rep, 0, 0, "fit", 0.1, 4)]
    frames = action.transform(x[:2], rep.generators[0], torch.linspace(0, 1, 5))
    payload = FigurePayload.build(rep, history, action, x, 4, 2, True, 2 * frames)
    fig = draw_figures(payload)["filmstrip"]
    assert "equivariance" in fig._suptitle.get_text()  # drawn with matplotlib axes
    left, right = fig.axes
    assert left.images[0].get_array().shape == right.images[0].get_array().shape


def test_signal_outputs_are_drawn_under_the_inputs():
    action = lg.SignalAction(affine=True)
    x = torch.rand(4, 2, 16, dtype=torch.float64)

    def model(s):  # sequence to sequence: 3 output channels, a shorter sequence
        return torch.tanh(s[:, :1, 2:-2]).expand(-1, 3, -1) * s.mean((1, 2)).reshape(-1, 1, 1)

    rep = lg.liegg(model, x, action, output_action=action)
    history = [Evaluation.from_report(rep, 0, 0, "fit", 0.1, 4)]
    frames = action.transform(x[:2], rep.generators[0], torch.linspace(0, 1, 5))
    outputs = model(frames.reshape(10, 2, 16)).reshape(5, 2, 3, 12)
    fig = draw_figures(FigurePayload.build(rep, history, action, x, 4, 2, True, outputs))
    axes = fig["filmstrip"].axes
    assert len(axes) == 4 and all(len(ax.lines) == 5 for ax in axes)
    assert "input" in axes[0].get_title() and "output" in axes[2].get_title()
    assert len(axes[2].lines[0].get_xdata()) == 12
    with pytest.raises(ValueError, match=r"\(T, n\)"):
        plotting.plot_signal_output_filmstrip(frames, outputs[:, :1], np.linspace(0, 1, 5))
