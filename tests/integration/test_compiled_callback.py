"""``LieGGCallback(compile=True)`` in a real fit: the same history as eager, in both namespaces.

The tiny MLP (BatchNorm, dropout) trains two epochs under each setting from the same seed;
the compiled run must compile (no fallback warning, a cached graph for the model), record the
same evaluations as the eager run to 1e-5, and train bitwise-identical weights.
"""

from __future__ import annotations

import warnings

import lightning.pytorch as L
import pytest
import pytorch_lightning as pl
import torch

import lightning_liegg as lg
from lightning_liegg.functional._autodiff import compiled as _compiled

from .helpers import trainer
from .models import TinyDataModule, TinyImageModel
from .models_lightning import LTinyDataModule, LTinyImageModel

pytestmark = [pytest.mark.slow, pytest.mark.integration]

NAMESPACES = {
    "pytorch_lightning": (pl.Trainer, TinyImageModel, TinyDataModule),
    "lightning.pytorch": (L.Trainer, LTinyImageModel, LTinyDataModule),
}


def _fit(tmp_path, namespace: str, compile: bool):
    trainer_cls, model_cls, data_cls = NAMESPACES[namespace]
    torch.manual_seed(0)
    model = model_cls()
    cb = lg.LieGGCallback(
        lg.ImageAction(),
        reference="rotation2d",
        num_samples=16,
        log_images=False,
        print_summary=False,
        compile=compile,
    )
    t = trainer(
        tmp_path / f"{namespace}-{compile}",
        trainer_cls=trainer_cls,
        callbacks=[cb],
        logger=False,
        enable_checkpointing=False,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t.fit(model, data_cls())
    liegg_warnings = [w for w in caught if issubclass(w.category, lg.LieGGWarning)]
    return model, cb, liegg_warnings


@pytest.mark.parametrize("namespace", list(NAMESPACES))
def test_compiled_fit_matches_eager(tmp_path, namespace):
    _compiled.clear_cache()
    try:
        eager_model, eager, _ = _fit(tmp_path, namespace, compile=False)
        model, cb, caught = _fit(tmp_path, namespace, compile=True)
        assert cb.compile is True
        assert not [str(w.message) for w in caught if "compile=True" in str(w.message)]
        entries = _compiled._CACHE.get(model)
        assert entries, "no compiled graph was cached for the model"
        assert all(fn is not _compiled._FAILED for fn in entries.values())
    finally:
        _compiled.clear_cache()

    assert len(cb.history) == len(eager.history) == 3
    for got, want in zip(cb.history, eager.history, strict=True):
        assert (got.step, got.epoch, got.stage) == (want.step, want.epoch, want.stage)
        assert got.scalars.keys() == want.scalars.keys()
        for key, value in want.scalars.items():
            if key == "seconds":
                continue
            assert got.scalars[key] == pytest.approx(value, rel=1e-5, abs=1e-5, nan_ok=True), key
        assert got.relative_spectrum == pytest.approx(want.relative_spectrum, rel=1e-5, abs=1e-5)
        assert got.bias == pytest.approx(want.bias, rel=1e-5, abs=1e-5)
    # the analysis is side-effect free under the compiler too: the same training
    want_state = eager_model.state_dict()
    for name, a in model.state_dict().items():
        assert torch.equal(a, want_state[name]), name
