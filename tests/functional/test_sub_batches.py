"""Sub-batches on CPU (functional/_autodiff/memory.py): same rows, bounded temporaries.

The analysis splits a batch on CPU so that its largest temporary stays under
``_memory.BUDGET_BYTES`` (tensors above tens of megabytes are page-faulted in afresh at every
op). Here the budget is made tiny, so that a dozen samples split into sub-batches of a few,
and every path must give the rows of the whole batch.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import Tensor, nn

import lightning_liegg as lg
from lightning_liegg.functional._autodiff import memory as _memory
from lightning_liegg.functional.layers import resolve_layers

from .engine import gram, grams, output_rows

DT = torch.float64


def image_net(outputs: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 8 * 8, outputs)
    ).to(DT)


class Recorder(nn.Module):
    """Records the batch size of every call; a vector model underneath."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.sizes: list[int] = []

    def forward(self, x: Tensor) -> Tensor:
        self.sizes.append(int(x.shape[0]))
        return self.net(x)


@pytest.fixture
def tiny_budget(monkeypatch: pytest.MonkeyPatch) -> int:
    """A budget of 20 KB: 2 samples of the image net's largest temporary, 4 tangents each
    (batches over 40 KB are split)."""
    budget = 20_000
    monkeypatch.setattr(_memory, "BUDGET_BYTES", budget)
    return budget


def rows_with_budget(monkeypatch: pytest.MonkeyPatch, budget: int, *args, **kwargs) -> Tensor:
    monkeypatch.setattr(_memory, "BUDGET_BYTES", budget)
    return output_rows(*args, **kwargs)


@pytest.mark.parametrize("mode", ["auto", "forward", "reverse"])
@pytest.mark.parametrize("reduction", ["none", "sum"])
def test_sub_batches_give_the_rows_of_the_whole_batch(monkeypatch, mode, reduction) -> None:
    model, action = image_net(), lg.ImageAction()
    x = torch.randn(12, 1, 8, 8, dtype=DT)
    whole = rows_with_budget(monkeypatch, 1 << 40, model, x, action, reduction, ad_mode=mode)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lg.LieGGWarning)  # "sum" of 3 outputs
        split = rows_with_budget(monkeypatch, 40_000, model, x, action, reduction, ad_mode=mode)
    assert split.shape == whole.shape
    torch.testing.assert_close(split, whole, rtol=1e-12, atol=1e-12)


def test_the_budget_sets_the_sub_batch_size(monkeypatch) -> None:
    """Largest temporary per sample: the conv's output, 4 x 8 x 8 float64 = 2,048 bytes; with 4
    tangents, 40,000 bytes hold 4 samples: 12 samples (98 KB, over twice the budget) go in 3
    sub-batches of 4 (after the one-sample probe)."""
    monkeypatch.setattr(_memory, "BUDGET_BYTES", 40_000)
    model = Recorder(image_net())
    x = torch.randn(12, 1, 8, 8, dtype=DT)
    output_rows(model, x, lg.ImageAction(), ad_mode="forward")
    assert model.sizes == [1, 4, 4, 4]
    model.sizes.clear()
    output_rows(model, x, lg.ImageAction(), ad_mode="forward")  # the probe is remembered
    assert model.sizes == [4, 4, 4]


def test_largest_tensor_is_recorded() -> None:
    lin = nn.Linear(10, 1000).to(DT)
    probe = _memory.LargestTensor()
    with probe:
        lin(torch.randn(1, 10, dtype=DT))
    assert probe.largest == 1000 * 8


def test_no_sub_batches_off_cpu_or_when_unknown() -> None:
    assert _memory.sub_batch(512, torch.device("cuda"), 4, 10**9) == 512
    assert _memory.sub_batch(512, torch.device("cpu"), 4, None) == 512
    assert _memory.sub_batch(512, torch.device("cpu"), 4, _memory.BUDGET_BYTES) == 1
    assert _memory.sub_batch(512, torch.device("cpu"), 4, _memory.BUDGET_BYTES // 400) == 100
    # a batch within twice the budget stays whole; one byte more per sample splits it
    assert _memory.sub_batch(512, torch.device("cpu"), 1, _memory.BUDGET_BYTES // 256) == 512
    assert _memory.sub_batch(512, torch.device("cpu"), 1, _memory.BUDGET_BYTES // 255) == 255


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_sub_batches_with_an_output_action(monkeypatch, mode) -> None:
    """Equivariance rows (the output term needs every sub-batch's outputs) match the whole:
    16 floats per sample, 9 or 3 directions, 1,000 bytes: sub-batches of 2 or 5."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 3)).to(DT)
    x = torch.randn(40, 3, dtype=DT)
    args = (model, x, lg.VectorAction(dim=3))
    opts = {"output_action": lg.VectorAction(dim=3), "ad_mode": mode}
    split = rows_with_budget(monkeypatch, 1_000, *args, **opts)
    whole = rows_with_budget(monkeypatch, 1 << 40, *args, **opts)
    torch.testing.assert_close(split, whole, rtol=1e-12, atol=1e-12)


def test_sub_batches_keep_each_samples_fixed_extra(tiny_budget) -> None:
    """A model with a second input per sample (the callback's forward_fn / extra): every
    sub-batch gets its own samples' rows of ``extra``, not the first ones."""
    net = image_net()

    def forward_fn(module: nn.Module, x: Tensor, shift: Tensor) -> Tensor:
        return module(x) * shift

    x = torch.randn(12, 1, 8, 8, dtype=DT)
    shift = torch.linspace(0.5, 2.0, 12, dtype=DT)[:, None]
    action = lg.ImageAction()
    gram_, n = gram(net, x, action, forward_fn=forward_fn, extra=shift)
    rows = torch.cat(
        [
            output_rows(lambda z, s=s: net(z) * s, xi[None], action)
            for xi, s in zip(x, shift, strict=True)
        ]
    )
    ref = torch.einsum("nkm,nkl->ml", rows, rows)
    assert n == 12
    torch.testing.assert_close(gram_, ref, rtol=1e-10, atol=1e-12)


def test_given_tangents_are_sliced_with_the_samples(monkeypatch, tiny_budget) -> None:
    model, action = image_net(), lg.ImageAction()
    x = torch.randn(12, 1, 8, 8, dtype=DT)
    tangents = action.basis_tangents(x)
    split = output_rows(model, x, action, ad_mode="forward", tangents=tangents)
    monkeypatch.setattr(_memory, "BUDGET_BYTES", 1 << 40)
    whole = output_rows(model, x, action, ad_mode="forward")
    torch.testing.assert_close(split, whole, rtol=1e-12, atol=1e-12)


class NoForwardRule(torch.autograd.Function):
    """tanh with a backward but no jvp: forward mode cannot run it."""

    @staticmethod
    def forward(x: Tensor) -> Tensor:  # type: ignore[override]
        return torch.tanh(x)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (y,) = ctx.saved_tensors
        return grad * (1 - y * y)


class Tanhish(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = image_net(outputs=6)  # more outputs than generators: auto tries forward

    def forward(self, x: Tensor) -> Tensor:
        return NoForwardRule.apply(self.net(x))


def test_auto_falls_back_once_across_sub_batches(tiny_budget) -> None:
    """The first sub-batch meets the missing forward rule; one warning, reverse for the rest."""
    model, action = Tanhish(), lg.ImageAction()
    x = torch.randn(12, 1, 8, 8, dtype=DT)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        auto = output_rows(model, x, action, ad_mode="auto")
    fallbacks = [w for w in caught if "Forward-mode differentiation" in str(w.message)]
    assert len(fallbacks) == 1
    reverse = output_rows(model, x, action, ad_mode="reverse")
    torch.testing.assert_close(auto, reverse, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_layerwise_sub_batches_give_the_grams_of_the_whole_batch(monkeypatch, mode) -> None:
    """layers=: every layer's rows (feature maps with their own action) split and joined."""
    model, action = image_net(outputs=6), lg.ImageAction()
    x = torch.randn(12, 1, 8, 8, dtype=DT)
    spec = resolve_layers(model, ["0", "2"], action, "none")
    monkeypatch.setattr(_memory, "BUDGET_BYTES", 1 << 40)
    whole, n = grams(model, x, action, layers=spec, ad_mode=mode)
    sizes: list[int] = []
    model[0].register_forward_pre_hook(lambda _, args: sizes.append(len(args[0])))
    monkeypatch.setattr(_memory, "BUDGET_BYTES", 20_000)
    split, n_split = grams(model, x, action, layers=spec, ad_mode=mode)
    assert len(sizes) > 2 and max(sizes) < 12  # it did split
    assert n == n_split == 12 and list(split) == list(whole)
    for name in whole:
        torch.testing.assert_close(split[name], whole[name], rtol=1e-10, atol=1e-12)


class BatchOfOneFails(nn.Module):
    """Rejects a batch of one sample (as some models with batch-dependent reshapes do)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = image_net()
        self.calls = 0

    def forward(self, x: Tensor) -> Tensor:
        self.calls += 1
        if x.shape[0] == 1:
            raise RuntimeError("this model needs more than one sample")
        return self.net(x)


def test_a_failed_probe_means_one_batch_and_no_second_probe(tiny_budget) -> None:
    model, action = BatchOfOneFails(), lg.ImageAction()
    x = torch.randn(12, 1, 8, 8, dtype=DT)
    rows = output_rows(model, x, action, ad_mode="forward")
    assert rows.shape == (12, 3, 4) and model.calls == 2  # the failed probe, one whole batch
    assert _memory.remembered(model, x) == 0
    output_rows(model, x, action, ad_mode="forward")
    assert model.calls == 3
