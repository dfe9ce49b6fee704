"""Any model signature: a second input held fixed per sample (``input_fn`` returns
``(x, extra)``, ``forward_fn``), dict and tuple outputs with clear errors."""

from __future__ import annotations

import warnings

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightning_liegg as lg
from lightning_liegg.functional.analysis import _compute, gram_update

from ..functional.engine import output_rows
from ..functional.test_model_zoo import ScaledReLU
from .helpers import single_and_ddp, trainer


def _two_input_data(n: int = 40, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 6, 6, generator=g)
    w = torch.randn(n, 3, generator=g)  # the second input: a per-sample weighting
    y = torch.randint(0, 3, (n,), generator=g)
    return TensorDataset(x, w, y)


class TwoInputModel(pl.LightningModule):
    """``forward(x, w)``: image features scaled per sample by the second input ``w``."""

    def __init__(self, output: str = "tensor") -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(36, 8), nn.Tanh(), nn.Linear(8, 3))
        self.output = output

    def forward(self, x, w):
        logits = self.net(x) * w
        if self.output == "dict":
            return {"logits": logits, "features": self.net[1](x.flatten(1))}
        if self.output == "tuple":
            return logits, x.mean()
        return logits

    def _logits(self, out):
        return out["logits"] if isinstance(out, dict) else out[0] if isinstance(out, tuple) else out

    def training_step(self, batch, batch_idx):
        x, w, y = batch
        return nn.functional.cross_entropy(self._logits(self(x, w)), y)

    def validation_step(self, batch, batch_idx):
        x, w, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self._logits(self(x, w)), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loaders(batch_size: int = 6):
    train = DataLoader(_two_input_data(40, 0), batch_size=batch_size)
    val = DataLoader(_two_input_data(20, 1), batch_size=batch_size)
    return train, val


def _reference_gram(model, x, w, action):
    """Sample by sample: each sample's own w, the model as a function of x alone."""
    model.eval()
    gram = torch.zeros(action.dim, action.dim, dtype=torch.float64)
    for i in range(x.shape[0]):
        rows = output_rows(lambda xi, i=i: model(xi, w[i : i + 1]), x[i : i + 1], action)
        gram += gram_update(rows)
    return gram


@pytest.mark.parametrize("with_forward_fn", [True, False], ids=["forward_fn", "default"])
def test_two_input_model_holds_the_second_input_per_sample(tmp_path, with_forward_fn):
    options = {"forward_fn": lambda m, x, w: m(x, w)} if with_forward_fn else {}
    cb = lg.LieGGCallback(
        lg.ImageAction(),
        num_samples=16,  # 6 + 6 + 4 of three validation batches
        chunk_size=5,  # chunks cut across batches: the second input is sliced with x
        input_fn=lambda batch: (batch[0], batch[1]),
        log_images=False,
        strict=True,
        **options,
    )
    model = TwoInputModel()
    t = trainer(tmp_path, max_epochs=1, logger=False, callbacks=[cb], enable_checkpointing=False)
    t.fit(model, *_loaders())
    assert [e.step for e in cb.history] == [0, 7]
    val = _two_input_data(20, 1).tensors
    assert torch.equal(cb.samples, val[0][:16]) and torch.equal(cb.engine.extra, val[1][:16])
    action = lg.ImageAction()
    expected = _compute(_reference_gram(model, val[0][:16], val[1][:16], action), 16, action)
    assert cb.last_report.spectrum == pytest.approx(expected.spectrum, rel=1e-4, abs=1e-9)
    # a different second input gives a different answer: it is really used, row for row
    shuffled = _compute(
        _reference_gram(model, val[0][:16], val[1][:16].flip(0), action), 16, action
    )
    assert not torch.allclose(cb.last_report.spectrum, shuffled.spectrum, rtol=1e-3)


def test_extra_rows_must_match(tmp_path):
    cb = lg.LieGGCallback(
        lg.ImageAction(),
        num_samples=8,
        input_fn=lambda batch: (batch[0], batch[1][:2]),
        log_images=False,
        strict=True,
    )
    t = trainer(tmp_path, max_epochs=1, logger=False, callbacks=[cb], enable_checkpointing=False)
    with pytest.raises(lg.LieGGError, match=r"one row per sample, shape \(6, \.\.\.\).*\(2, 3\)"):
        t.fit(TwoInputModel(), *_loaders())


@pytest.mark.parametrize(
    ("output", "hint"),
    [("dict", "out['logits']"), ("tuple", "out[0]")],
)
def test_dict_and_tuple_outputs(tmp_path, output, hint):
    options = dict(
        num_samples=12,
        input_fn=lambda batch: (batch[0], batch[1]),
        log_images=False,
        strict=True,
    )
    cb = lg.LieGGCallback(lg.ImageAction(), **options)
    t = trainer(tmp_path, max_epochs=1, logger=False, callbacks=[cb], enable_checkpointing=False)
    with pytest.raises(lg.LieGGError) as info:
        t.fit(TwoInputModel(output), *_loaders())
    message = str(info.value)
    assert f"output_transform=lambda out: {hint}" in message
    assert "tensor(" not in message  # shapes, never values
    if output == "dict":
        assert (
            "keys ['logits', 'features']" in message and "logits: tensor (12, 3) float32" in message
        )
    else:
        assert "a tuple of 2 (tensor (12, 3) float32, tensor () float32)" in message
    pick = (lambda out: out["logits"]) if output == "dict" else (lambda out: out[0])
    cb = lg.LieGGCallback(lg.ImageAction(), output_transform=pick, **options)
    t = trainer(tmp_path, max_epochs=1, logger=False, callbacks=[cb], enable_checkpointing=False)
    t.fit(TwoInputModel(output), *_loaders())
    assert [e.step for e in cb.history] == [0, 7]


def _image_and_weight(batch):
    return batch[0], batch[1]


def _call_with_weight(module, x, w):
    return module(x, w)


def _two_input_callback(**kwargs) -> lg.LieGGCallback:
    """The callback for :class:`TwoInputModel`: the weight goes to ``forward`` as well."""
    options = dict(
        num_samples=16,
        chunk_size=5,
        input_fn=_image_and_weight,
        forward_fn=_call_with_weight,
        log_images=False,
        strict=True,
    )
    options.update(kwargs)
    return lg.LieGGCallback(lg.ImageAction(), **options)


@pytest.mark.slow
def test_two_input_model_under_ddp_matches_one_process(tmp_path):
    """Each rank caches its own shard, second inputs included; the summed Gram matrix gives
    the spectrum one process gets on all samples."""
    from pytorch_lightning.loggers import TensorBoardLogger

    from .helpers import read_events

    spectra = {}
    for name, options, model in single_and_ddp(TwoInputModel, seed=0):
        # all 20 validation samples: 10 per rank under DDP
        cb = _two_input_callback(num_samples=20, chunk_size=3)
        logger = TensorBoardLogger(tmp_path / name, name="tb", version=0)
        t = trainer(
            tmp_path / name,
            max_epochs=1,
            logger=logger,
            callbacks=[cb],
            enable_checkpointing=False,
            **options,
        )
        t.validate(model, _loaders()[1], verbose=False)
        acc = read_events(logger.log_dir)
        spectra[name] = [acc.Scalars(f"liegg/spectrum/{i}")[0].value for i in range(4)]
    assert spectra["ddp"] == pytest.approx(spectra["single"], rel=1e-4)


class _CustomOpTwoInput(TwoInputModel):
    """Six outputs (forward mode first under ``mode="auto"``) through a custom autograd
    Function without a forward-AD rule: auto mode falls back to reverse mode."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(36, 6))

    def forward(self, x, w):
        return ScaledReLU.apply(self.net(x)) * w.repeat(1, 2)


def test_wrapped_model_falls_back_once(tmp_path):
    """The fallback is remembered for the user's model, not for each chunk's wrapper."""
    cb = _two_input_callback()
    t = trainer(tmp_path, max_epochs=2, logger=False, callbacks=[cb], enable_checkpointing=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", lg.LieGGWarning)
        t.fit(_CustomOpTwoInput(), *_loaders())
    ours = [str(w.message) for w in caught if issubclass(w.category, lg.LieGGWarning)]
    assert [e.step for e in cb.history] == [0, 7, 14]
    assert len(ours) == 1 and "_CustomOpTwoInput" in ours[0], ours


class _OneInputModel(pl.LightningModule):
    """``forward(x, scale)`` with a fixed scale: the case ``forward_fn=lambda m, x: m(x, 2.0)``."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(36, 3))

    def forward(self, x, scale):
        return self.net(x) * scale

    def training_step(self, batch, batch_idx):
        x, _, y = batch
        return nn.functional.cross_entropy(self(x, 2.0), y)

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit_one_input(tmp_path, forward_fn, strict):
    cb = lg.LieGGCallback(
        lg.ImageAction(),
        num_samples=8,
        input_fn=lambda batch: batch[0],
        forward_fn=forward_fn,
        log_images=False,
        print_summary=False,
        strict=strict,
    )
    t = trainer(tmp_path, max_epochs=1, logger=False, callbacks=[cb], enable_checkpointing=False)
    t.fit(_OneInputModel(), *_loaders())
    return cb


def test_forward_fn_without_extra_takes_module_and_x(tmp_path):
    cb = _fit_one_input(tmp_path, lambda m, x: m(x, 2.0), strict=True)
    assert [e.step for e in cb.history] == [0, 7]


def _broken_forward_fn(module, x):
    raise KeyError("scale")


def test_an_error_in_forward_fn_is_named_strict_or_skipped(tmp_path):
    with pytest.raises(lg.LieGGError, match=r"forward_fn\(module, x\)") as info:
        _fit_one_input(tmp_path / "strict", _broken_forward_fn, strict=True)
    assert isinstance(info.value.__cause__, KeyError)
    with pytest.warns(lg.LieGGWarning, match=r"Expected forward_fn to run as"):
        cb = _fit_one_input(tmp_path / "warn", _broken_forward_fn, strict=False)
    assert cb.history == []  # every evaluation skipped, training went on
