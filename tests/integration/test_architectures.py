"""The callback in a real Trainer on models that used to make it skip or mislead.

A custom autograd.Function without a forward-AD rule (the default ``mode="auto"`` now falls back
to reverse mode instead of skipping every evaluation) and a layer that, like escnn's
``R2Conv``, builds its filter in ``train(False)`` and deletes it in ``train()`` (evaluations
between training steps used to raise or log values of a stale filter).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

import lightning_liegg as lg
from lightning_liegg.exceptions import LieGGWarning

from ..functional.test_model_zoo import FilterConv, ScaledReLU
from .helpers import trainer
from .models import Classifier, image_data


class Net(Classifier):
    def __init__(self, layer: str) -> None:
        super().__init__()
        self.layer = layer
        self.conv = FilterConv() if layer == "filter" else nn.Conv2d(3, 6, 3, padding=1)
        self.head = nn.Linear(6 * 8 * 8, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        h = ScaledReLU.apply(h) if self.layer == "custom" else torch.tanh(h)
        return self.head(h.flatten(1))


def loaders():
    data = image_data(48)
    x = data.tensors[0].expand(-1, 3, -1, -1).contiguous()
    ds = torch.utils.data.TensorDataset(x, data.tensors[1])
    return torch.utils.data.DataLoader(ds, batch_size=16), torch.utils.data.DataLoader(ds, 16)


def fit(tmp_path, layer: str, mode: str = "auto") -> tuple[list[dict], list[str]]:
    torch.manual_seed(0)
    model = Net(layer)
    cb = lg.LieGGCallback(lg.ImageAction(), num_samples=16, every_n_train_steps=2, ad_mode=mode)
    t = trainer(tmp_path, max_epochs=2, logger=False, callbacks=[cb], enable_checkpointing=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LieGGWarning)
        t.fit(model, *loaders())
    ours = [str(w.message) for w in caught if issubclass(w.category, LieGGWarning)]
    return cb.history, ours


def test_custom_function_without_jvp_falls_back_once_and_evaluates(tmp_path):
    history, ours = fit(tmp_path / "auto", "custom")
    assert len(history) >= 3, ours
    assert len(ours) == 1 and "autograd.Function" in ours[0], ours
    reverse, ours_reverse = fit(tmp_path / "reverse", "custom", mode="reverse")
    assert ours_reverse == []
    assert len(reverse) == len(history)
    for a, b in zip(history, reverse, strict=True):
        va, vb = a.scalars["symmetry_variance"], b.scalars["symmetry_variance"]
        assert abs(va - vb) <= 1e-4 * abs(vb), (va, vb)


def test_filter_built_in_train_false_evaluates_between_steps(tmp_path):
    history, ours = fit(tmp_path, "filter")
    assert ours == [], ours  # no skipped evaluation
    assert len(history) >= 3
    assert all(h.scalars["symmetry_variance"] > 0 for h in history)
