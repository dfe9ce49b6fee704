import dataclasses

import numpy as np
import pytest
import torch

import lightning_liegg as lg
from lightning_liegg._media import FigurePayload, MediaRenderer, render_media


def _payload(frames=True):
    rep = lg.liegg(
        lambda x: x.flatten(1)[:, :3].sin(),
        torch.rand(16, 1, 8, 8, dtype=torch.float64),
        lg.ImageAction(),
        reference="rotation2d",
    )
    return FigurePayload(
        generators=rep.generators[:2].numpy(),
        variances=rep.spectrum[:2].numpy(),
        biases=rep.symmetry_bias.numpy(),
        relative_spectrum=rep.relative_spectrum.numpy(),
        reference_dim=1,
        symmetry_dim=rep.symmetry_dim,
        steps=np.array([0, 5]),
        spectra=np.stack([rep.relative_spectrum.numpy()] * 2),
        frames=np.random.rand(3, 2, 1, 8, 8) if frames else None,
        times=np.linspace(0, 1, 3) if frames else None,
    )


def test_render_media_gives_every_figure():
    images = render_media(_payload())
    assert set(images) == {"generators", "spectrum", "evolution", "bias", "filmstrip"}
    for image in images.values():
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert "filmstrip" not in render_media(_payload(frames=False))


def test_background_process_matches_in_place_and_keeps_order():
    payload = _payload()
    background, in_place = MediaRenderer(background=True), MediaRenderer(background=False)
    try:
        for step in (3, 7):
            background.submit(step, payload)
            in_place.submit(step, payload)
        a, b = background.collect(wait=True), in_place.collect(wait=True)
    finally:
        background.close()
    assert [s for s, _ in a] == [3, 7] == [s for s, _ in b]
    assert background.pending == 0
    for (_, x), (_, y) in zip(a, b, strict=True):
        assert set(x) == set(y)
        for name in x:
            assert np.array_equal(x[name], y[name]), name


def test_a_failed_render_comes_back_as_its_exception():
    renderer = MediaRenderer(background=True)
    try:
        broken = dataclasses.replace(_payload(), spectra=np.zeros(3))  # (S, m) expected
        renderer.submit(1, broken)
        ((step, result),) = renderer.collect(wait=True)
    finally:
        renderer.close()
    assert step == 1 and isinstance(result, Exception)


def test_callback_pickles_without_its_renderer():
    import pickle

    cb = lg.LieGGCallback(lg.ImageAction())
    cb.engine.figures.renderer = MediaRenderer(background=False)
    clone = pickle.loads(pickle.dumps(cb))
    assert clone.engine.figures.renderer is None and cb.engine.figures.renderer is not None


@pytest.mark.parametrize("background", [True, False], ids=["process", "in-place"])
def test_no_pyplot_figures_left(background):
    import matplotlib.pyplot as plt

    renderer = MediaRenderer(background=background)
    try:
        for step in range(5):
            renderer.submit(step, _payload())
        assert len(renderer.collect(wait=True)) == 5
    finally:
        renderer.close()
    assert plt.get_fignums() == []
