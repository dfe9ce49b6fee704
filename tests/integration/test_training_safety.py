"""The callback never changes training, and never stops it unless asked to."""

import warnings

import pytest
import torch

import lightning_liegg as lg

from .helpers import trainer
from .models import TinyDataModule, TinyImageModel


def _train(tmp_path, callbacks, seed=7, **kwargs):
    torch.manual_seed(seed)
    model = TinyImageModel()
    t = trainer(
        tmp_path,
        max_epochs=3,
        logger=False,
        callbacks=callbacks,
        enable_checkpointing=False,
        **kwargs,
    )
    t.fit(model, TinyDataModule(shuffle=True))
    return model, t


@pytest.mark.parametrize("trigger", [{}, {"every_n_train_steps": 2}], ids=["epochs", "steps"])
def test_bitwise_identical_weights_and_optimizer_state(tmp_path, trigger):
    """Dropout, BatchNorm and a shuffled loader all draw on the RNG: any leak shows up here."""
    plain, t_plain = _train(tmp_path / "a", [])
    cb = lg.LieGGCallback(lg.ImageAction(), reference="rotation2d", num_samples=32, **trigger)
    watched, t_watched = _train(tmp_path / "b", [cb])
    assert len(cb.history) >= 3
    for (name, p), q in zip(plain.state_dict().items(), watched.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    opt_a = t_plain.optimizers[0].state_dict()["state"]
    opt_b = t_watched.optimizers[0].state_dict()["state"]
    for key in opt_a:
        for field in opt_a[key]:
            assert torch.equal(
                torch.as_tensor(opt_a[key][field]), torch.as_tensor(opt_b[key][field])
            ), (key, field)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in watched.parameters())


def test_broken_analysis_warns_and_training_finishes(tmp_path):
    """A model that returns NaN in eval mode (on the cached samples) from epoch 1 on."""
    cb = lg.LieGGCallback(lg.ImageAction(), num_samples=16, log_images=False)
    model = TinyImageModel(nan_from_epoch=1)
    t = trainer(
        tmp_path,
        max_epochs=3,
        logger=False,
        callbacks=[cb],
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t.fit(model, TinyDataModule())
    assert t.current_epoch == 3 and t.state.finished
    assert [e.step for e in cb.history] == [0, 6]  # epoch 0 only; later evaluations skipped
    msgs = [str(w.message) for w in caught if issubclass(w.category, lg.LieGGWarning)]
    cause = "NonFiniteError: Expected finite model outputs, but 16 of 16 samples gave NaN"
    # the first skipped evaluation warns; the second is counted, and the end of fit says so
    assert [m for m in msgs if "skipped the evaluation" in m] == [
        m for m in msgs if m.startswith(f"LieGG skipped the evaluation at step 12: {cause}")
    ]
    assert len([m for m in msgs if "skipped the evaluation" in m]) == 1
    assert [m for m in msgs if "evaluations:" in m] == [
        m for m in msgs if m.startswith(f"LieGG skipped 2 of 4 evaluations: {cause}")
    ]
    assert len([m for m in msgs if "evaluations:" in m]) == 1


def test_summary_table_after_fit(tmp_path, capfd):
    cb = lg.LieGGCallback(lg.ImageAction(), reference="rotation2d", num_samples=16)
    t = trainer(tmp_path, max_epochs=1, logger=False, callbacks=[cb])
    t.fit(TinyImageModel(), TinyDataModule())
    out = capfd.readouterr().out
    table = out[out.index("LieGG summary") :]
    last = cb.history[-1]
    assert "evaluations     2 done, 0 skipped" in table
    assert f"step {last.step}, epoch 0 (fit), 16 samples" in table
    assert f"symmetry dim    {int(last.scalars['symmetry_dim'])}" in table
    assert f"symmetry bias   {last.scalars['symmetry_bias']:.3g}" in table
    top = last.generators[0]
    assert "top generator   [" + " ".join(f"{v:6.2f}" for v in top[0]) + " ]" in table
    assert len(top) == 2 and " ".join(f"{v:6.2f}" for v in top[1]) in table
    # print_summary=False: no table
    cb = lg.LieGGCallback(lg.ImageAction(), num_samples=16, print_summary=False)
    trainer(tmp_path, max_epochs=1, logger=False, callbacks=[cb]).fit(
        TinyImageModel(), TinyDataModule()
    )
    assert "LieGG summary" not in capfd.readouterr().out


def test_summary_table_says_why_nothing_was_analysed(tmp_path, capfd):
    cb = lg.LieGGCallback(lg.ImageAction(), num_samples=16, input_fn=lambda batch: batch[1])
    t = trainer(tmp_path, max_epochs=2, logger=False, callbacks=[cb])
    with pytest.warns(lg.LieGGWarning, match=r"LieGG skipped 3 of 3 evaluations: LieGGError"):
        t.fit(TinyImageModel(), TinyDataModule())
    table = capfd.readouterr().out.split("LieGG summary")[1]
    assert "evaluations     0 done, 3 skipped" in table
    assert "nothing analysed: LieGGError: " in table and "floating-point" in table
    assert "(3 of 3)" in table


def test_strict_mode_raises(tmp_path):
    cb = lg.LieGGCallback(lg.ImageAction(), num_samples=16, log_images=False, strict=True)
    t = trainer(tmp_path, max_epochs=3, logger=False, callbacks=[cb], limit_val_batches=0)
    with pytest.raises(lg.NonFiniteError):
        t.fit(TinyImageModel(nan_from_epoch=1), TinyDataModule())


def test_bad_input_fn_warns_once_and_training_finishes(tmp_path):
    cb = lg.LieGGCallback(
        lg.ImageAction(), num_samples=16, input_fn=lambda batch: batch[1]
    )  # labels
    t = trainer(tmp_path, max_epochs=2, logger=False, callbacks=[cb])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t.fit(TinyImageModel(), TinyDataModule())
    msgs = [str(w.message) for w in caught if issubclass(w.category, lg.LieGGWarning)]
    assert all("floating-point" in m for m in msgs), msgs
    # three evaluations skipped for one cause: one warning at the first, one count at the end
    first = [m for m in msgs if "LieGG skipped the evaluation at step 0" in m]
    assert len(first) == 1 and len(msgs) == 2, msgs
    assert "LieGG skipped 3 of 3 evaluations" in msgs[1], msgs
    assert cb.history == [] and t.state.finished


def test_flat_inputs_error_is_clear_and_skipped(tmp_path):
    """An ImageAction on flat batches: the shape error reaches the user as a warning."""
    cb = lg.LieGGCallback(lg.ImageAction(), num_samples=16, input_fn=lambda b: b[0].flatten(1))
    t = trainer(tmp_path, max_epochs=1, logger=False, callbacks=[cb])
    with pytest.warns(
        lg.LieGGWarning,
        match=r"Expected images of shape \(N, C, H, W\).*\(16, 64\).*\(N, 1, 8, 8\)",
    ):
        t.fit(TinyImageModel(), TinyDataModule())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"every_n_epochs": 1, "every_n_train_steps": 5}, "one trigger.*got both"),
        ({"every_n_epochs": 0}, "every_n_epochs to be a positive integer"),
        ({"every_n_train_steps": -3}, "every_n_train_steps to be a positive integer"),
        ({"num_samples": 0}, "num_samples to be a positive integer"),
        ({"num_generators": 0}, "num_generators"),
        ({"reduction": "mean"}, "reduction to be one of"),
        (
            {"reference": torch.zeros(1, 3, 3)},
            r"reference for ImageAction\(affine=False\) to have shape \(k, 2, 2\)",
        ),
        ({"reference": "so(7"}, "reference algebra name"),
        ({"output_transform": 3}, "output_transform to be callable"),
        ({"input_fn": "x"}, "input_fn to be callable"),
    ],
    ids=[
        "both-triggers",
        "epochs-zero",
        "steps-negative",
        "num-samples",
        "num-generators",
        "reduction",
        "reference-shape",
        "reference-name",
        "output-transform",
        "input-fn",
    ],
)
def test_configuration_errors(kwargs, match):
    with pytest.raises(lg.LieGGError, match=match):
        lg.LieGGCallback(lg.ImageAction(), **kwargs)


def test_not_an_action():
    with pytest.raises(lg.LieGGError, match="Expected action to be an Action"):
        lg.LieGGCallback("ImageAction")


@pytest.mark.parametrize("precision", ["bf16-mixed", "bf16-true", "64-true"])
def test_precision_plugins(tmp_path, precision):
    """Inputs are converted and the forward runs in the plugin's context, as in validation."""
    cb = lg.LieGGCallback(lg.ImageAction(), num_samples=16, log_images=False)
    t = trainer(tmp_path, max_epochs=1, logger=False, callbacks=[cb], precision=precision)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t.fit(TinyImageModel(), TinyDataModule())
    assert [str(w.message) for w in caught if issubclass(w.category, lg.LieGGWarning)] == []
    assert [e.step for e in cb.history] == [0, 6]
    assert all(0 <= v <= 1 for v in cb.history[-1].relative_spectrum)
