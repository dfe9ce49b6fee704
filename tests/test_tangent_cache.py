"""Input tangents computed once per sample set: same numbers as fresh ones, recomputed on change."""

import pytest
import torch
from torch import nn

import lightning_liegg as lg
from lightning_liegg._samples import TangentCache
from lightning_liegg.functional.analysis import _compute
from lightning_liegg.functional.layers import resolve_layers

from .functional.engine import gram, layer_rows, output_rows
from .integration.helpers import trainer
from .integration.models import TinyDataModule, TinyImageModel

ACTIONS = {
    "image": (lg.ImageAction(), (12, 1, 9, 11)),
    "image-affine": (lg.ImageAction(affine=True), (12, 2, 8, 8)),
    "image-rotation-scaling": (
        lg.ImageAction(basis=torch.cat([lg.algebras.rotation2d(), lg.algebras.scaling2d()])),
        (12, 1, 8, 8),
    ),
    "vector": (lg.VectorAction(dim=3, channels=2), (12, 6)),
}


def _model(shape, outputs=3):
    torch.manual_seed(1)
    size = int(torch.tensor(shape[1:]).prod())
    return nn.Sequential(nn.Flatten(), nn.Linear(size, 16), nn.Tanh(), nn.Linear(16, outputs))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("reduction", ["none", "sum"])
@pytest.mark.parametrize("name", list(ACTIONS))
def test_precomputed_tangents_give_the_same_rows(name, reduction, mode):
    action, shape = ACTIONS[name]
    x = torch.rand(*shape, dtype=torch.float64)
    model = _model(shape, outputs=3 if reduction == "none" else 1).double()
    fresh = output_rows(model, x, action, reduction, ad_mode=mode)
    given = output_rows(
        model, x, action, reduction, ad_mode=mode, tangents=action.basis_tangents(x)
    )
    err = float((given - fresh).norm() / fresh.norm())
    assert err < 1e-12, err


def test_cached_tangents_give_the_same_spectrum_and_follow_the_samples():
    action, shape = ACTIONS["image"]
    model = _model(shape).double()
    cache = TangentCache()
    x = torch.rand(40, *shape[1:], dtype=torch.float64)

    def spectrum(samples, cached):
        tangents = cache.for_samples(samples, action) if cached else None
        state, n = gram(model, samples, action, chunk_size=16, tangents=tangents)
        return _compute(state, n, action).spectrum

    fresh = spectrum(x, cached=False)
    first = spectrum(x, cached=True)
    assert cache.computed == 3  # one per chunk (16 + 16 + 8 samples)
    with torch.no_grad():  # the model changes, the tangents stay valid
        model[1].weight.mul_(1.5)
    fresh = spectrum(x, cached=False)
    again = spectrum(x, cached=True)
    assert cache.computed == 3  # reused
    assert float((again - fresh).abs().max() / fresh.abs().max()) < 1e-12
    assert not torch.equal(first, again)

    y = torch.rand(40, *shape[1:], dtype=torch.float64)  # new samples: new tangents
    fresh_y = spectrum(y, cached=False)
    cached_y = spectrum(y, cached=True)
    assert cache.computed == 6
    assert float((cached_y - fresh_y).abs().max() / fresh_y.abs().max()) < 1e-12

    cache.max_mb = 0.0  # over budget: computed per evaluation, nothing kept
    assert cache.for_samples(y, action) is None and cache.nbytes == 0


def test_bad_tangents_are_reported():
    action, shape = ACTIONS["image"]
    x = torch.rand(*shape)
    with pytest.raises(lg.LieGGError, match=r"Expected tangents of shape \(4, 12, 1, 9, 11\)"):
        output_rows(_model(shape), x, action, tangents=torch.zeros(4, 3))
    with pytest.raises(lg.LieGGError, match="dtype"):
        output_rows(_model(shape), x, action, tangents=action.basis_tangents(x.double()))


@pytest.mark.parametrize("budget", [256.0, 0.0], ids=["cached", "no-cache"])
def test_callback_computes_tangents_once(tmp_path, budget):
    cb = lg.LieGGCallback(
        lg.ImageAction(), num_samples=40, chunk_size=16, log_images=False, tangent_cache_mb=budget
    )
    model = TinyImageModel()
    t = trainer(tmp_path, max_epochs=3, logger=False, callbacks=[cb])
    t.fit(model, TinyDataModule())
    assert len(cb.history) == 4
    assert cb.engine.cache.tangents.computed == (3 if budget else 0)
    # the last evaluation equals a fresh analysis of the same samples with the final weights
    report = lg.liegg(model, cb.samples, lg.ImageAction(), chunk_size=16)
    assert torch.allclose(
        torch.tensor(cb.history[-1].spectrum, dtype=torch.float64), report.spectrum, rtol=1e-5
    )


def test_callback_tangent_budget_validation():
    with pytest.raises(lg.LieGGError, match="tangent_cache_mb"):
        lg.LieGGCallback(lg.ImageAction(), tangent_cache_mb=-1)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_layerwise_analysis_takes_the_same_tangents(mode):
    """layers=: given tangents (pushed, or contracted in reverse mode) = fresh ones."""
    action, shape = ACTIONS["image"]
    x = torch.rand(*shape, dtype=torch.float64)
    model = _model(shape).double()
    spec = resolve_layers(model, ["1", "2"], action, "none")
    fresh = layer_rows(model, x, action, spec, ad_mode=mode)
    given = layer_rows(model, x, action, spec, ad_mode=mode, tangents=action.basis_tangents(x))
    assert list(given) == list(fresh)
    for name, rows in fresh.items():
        err = float((given[name] - rows).norm() / rows.norm())
        assert err < 1e-12, (name, err)
    with pytest.raises(lg.LieGGError, match="Expected tangents of shape"):
        layer_rows(model, x, action, spec, tangents=torch.zeros(4, 3, dtype=torch.float64))


def test_callback_with_layers_computes_tangents_once(tmp_path):
    cb = lg.LieGGCallback(
        lg.ImageAction(), num_samples=40, chunk_size=16, log_images=False, layers="auto"
    )
    model = TinyImageModel()
    t = trainer(tmp_path, max_epochs=2, logger=False, callbacks=[cb])
    t.fit(model, TinyDataModule())
    assert len(cb.history) == 3 and cb.last_layer_report is not None
    assert cb.engine.cache.tangents.computed == 3  # one per chunk, reused at every evaluation
