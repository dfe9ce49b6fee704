"""No stale monitors: a skipped evaluation leaves no old ``liegg/`` value for ModelCheckpoint
and EarlyStopping, and a non-strict failure never ends the fit; both Lightning namespaces."""

from __future__ import annotations

import math
import warnings

import pytest

import lightning_liegg as lg

from .helpers import trainer

pytestmark = pytest.mark.slow

KEY = "liegg/relative_variance"


def _namespace(name):
    if name == "pytorch_lightning":
        import pytorch_lightning as pl

        from .models import TinyDataModule, TinyImageModel

        return pl, TinyImageModel, TinyDataModule
    L = pytest.importorskip("lightning.pytorch")
    from .models_lightning import LTinyDataModule, LTinyImageModel

    return L, LTinyImageModel, LTinyDataModule


def _fit(tmp_path, namespace, monitor, nan_from_epoch, strict=False):
    """Fit 3 epochs with the monitor; record what it sees at each validation end."""
    ns, model_cls, data_cls = _namespace(namespace)
    seen: list[float | None] = []

    class Probe(ns.Callback):
        def on_validation_end(self, trainer, pl_module):
            if not trainer.sanity_checking:
                value = trainer.callback_metrics.get(KEY)
                seen.append(None if value is None else float(value))

    cb = lg.LieGGCallback(lg.ImageAction(), num_samples=16, log_images=False, strict=strict)
    if monitor == "checkpoint":
        mon = ns.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor=KEY, save_top_k=1)
    else:
        mon = ns.callbacks.EarlyStopping(monitor=KEY, patience=1, check_on_train_epoch_end=False)
    t = trainer(
        tmp_path,
        trainer_cls=ns.Trainer,
        max_epochs=3,
        logger=False,
        callbacks=[cb, mon, Probe()],
        num_sanity_val_steps=0,
        enable_checkpointing=monitor == "checkpoint",
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t.fit(model_cls(nan_from_epoch=nan_from_epoch), data_cls())
    said = [str(w.message) for w in caught if issubclass(w.category, lg.LieGGWarning)]
    return t, cb, mon, seen, said


NAMESPACES = ["pytorch_lightning", "lightning.pytorch"]


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_model_checkpoint_sees_nan_never_the_stale_value(tmp_path, namespace):
    t, cb, mon, seen, said = _fit(tmp_path, namespace, "checkpoint", nan_from_epoch=1)
    assert t.state.finished and t.current_epoch == 3
    assert [e.step for e in cb.history] == [0, 6]  # epochs 1 and 2 skipped
    assert seen[0] == pytest.approx(cb.history[-1].scalars["relative_variance"])
    assert all(math.isnan(v) for v in seen[1:]) and len(seen) == 3  # not the epoch-0 value
    # ModelCheckpoint ranks NaN last: the kept checkpoint is epoch 0's, with its real score
    assert "epoch=0" in mon.best_model_path
    assert float(mon.best_model_score) == pytest.approx(seen[0])
    (note,) = [m for m in said if "monitors of its metrics" in m]
    assert f"ModelCheckpoint(monitor='{KEY}') gets NaN and ranks it last" in note


@pytest.mark.parametrize("namespace", NAMESPACES)
@pytest.mark.parametrize("nan_from_epoch", [0, 1], ids=["fails-from-start", "fails-later"])
def test_early_stopping_skips_its_check_and_training_goes_on(tmp_path, namespace, nan_from_epoch):
    t, cb, mon, seen, said = _fit(tmp_path, namespace, "stopping", nan_from_epoch=nan_from_epoch)
    # patience=1: a stale (repeated) value would have stopped the fit after epoch 1
    assert t.state.finished and t.current_epoch == 3 and not mon.stopped_epoch
    assert seen[-2:] == [None, None]  # removed while the analysis fails: nothing stale
    assert mon.wait_count == 0  # failed analyses do not use up the patience
    assert mon.strict is True  # its own setting back after the fit
    (note,) = [m for m in said if "monitors of its metrics" in m]
    assert f"EarlyStopping(monitor='{KEY}') skips its check" in note
    if nan_from_epoch == 0:
        assert cb.history == [] and seen == [None, None, None]  # never a value, never a stop


@pytest.mark.parametrize(
    ("namespace", "monitor"),
    [("pytorch_lightning", "checkpoint"), ("lightning.pytorch", "stopping")],
    ids=["pl-checkpoint", "lightning-stopping"],
)
def test_strict_callback_ends_the_fit_on_a_failed_analysis(tmp_path, namespace, monitor):
    with pytest.raises(lg.NonFiniteError):
        _fit(tmp_path, namespace, monitor, nan_from_epoch=1, strict=True)
