"""Layer-wise LieGG (``layers=``): known answers, agreement with whole-model runs, hooks, errors."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

import lightning_liegg as lg
from lightning_liegg.functional.layers import auto_layers
from lightning_liegg.functional.layerwise_report import LayerwiseReport

from ..conftest import rel_err

F64 = torch.float64
MODES = ["forward", "reverse"]


class O5Invariants(nn.Module):
    """(|x1|^2, |x2|^2, x1 . x2) of two vectors in R^5, inputs (N, 10): O(5) invariant."""

    def forward(self, x: Tensor) -> Tensor:
        v = x.reshape(-1, 2, 5)
        a, b = v[:, 0], v[:, 1]
        return torch.stack([(a * a).sum(1), (b * b).sum(1), (a * b).sum(1)], dim=1)


def o5_model() -> nn.Sequential:
    """pre (a rotation R of both vectors: keeps the invariants) -> f (invariants) -> g (MLP)."""
    rot = torch.linalg.qr(torch.randn(5, 5, dtype=F64))[0]
    pre = nn.Linear(10, 10, bias=False).double()
    with torch.no_grad():
        pre.weight.copy_(torch.block_diag(rot, rot))
    model = nn.Sequential()
    model.add_module("pre", pre)
    model.add_module("f", O5Invariants())
    model.add_module("g", nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 2)).double())
    return model


def all_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


ACTION = lg.VectorAction(dim=5, channels=2)


@pytest.mark.parametrize("mode", MODES)
def test_o5_invariants_known_answer(mode: str) -> None:
    model = o5_model()
    x = torch.randn(64, 10, dtype=F64)
    rep = lg.liegg(model, x, ACTION, reference="so(5)", layers=["pre", "f", "g.0"], ad_mode=mode)
    assert isinstance(rep, LayerwiseReport)
    assert list(rep) == ["pre", "f", "g.0", "output"]
    for name in ("f", "g.0", "output"):
        assert rep[name].symmetry_dim == 10, (name, rep[name].relative_spectrum)
        assert rep[name].subspace_distance() < 1e-10, name
        assert float(rep[name].reference_variance(relative=True).max()) < 1e-14
    pre = rep["pre"]  # the raw (rotated) vectors: no generator leaves them unchanged
    assert pre.symmetry_dim == 0
    assert pre.relative_variance > 0.1
    assert pre.subspace_distance() > 1.0
    assert float(pre.reference_variance(relative=True).min()) > 0.1
    table = rep.to_table()
    header = ["layer", "relative_variance", "gap", "symmetry_dim"]
    assert table.splitlines()[0].split()[:4] == header
    assert [line.split()[0] for line in table.splitlines()[1:]] == list(rep)


@pytest.mark.parametrize("mode", MODES)
def test_layers_equal_whole_model_runs(mode: str) -> None:
    model = o5_model()
    x = torch.randn(40, 10, dtype=F64)
    rep = lg.liegg(model, x, ACTION, reference="so(5)", layers=["g", "pre"], ad_mode=mode)
    whole = lg.liegg(model, x, ACTION, reference="so(5)", ad_mode=mode)
    assert list(rep) == ["pre", "g", "output"]  # forward order, whatever order was asked
    for name in ("g", "output"):
        assert rel_err(rep[name].gram, whole.gram) < 1e-10
        assert rel_err(rep[name].spectrum, whole.spectrum) < 1e-10
    pre = lg.liegg(model.pre, x, ACTION, ad_mode=mode)
    assert rel_err(rep["pre"].gram, pre.gram) < 1e-10


def test_reference_variance_is_the_lie_derivative_along_each_reference_element() -> None:
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    x = torch.randn(30, 6, dtype=F64)
    action = lg.VectorAction(dim=3, channels=2)
    rep = lg.liegg(model, x, action, reference="so(3)")
    rows = lg.polarization_matrix(model, x, action).reshape(30, 3, 9)
    ref = rep.reference.reshape(3, 9)  # orthonormal so(3) basis, coordinates in gl(3)
    direct = (rows @ ref.T).pow(2).sum(dim=(0, 1)) / 30  # (k,): E_x ||L_h F(x)||^2
    assert rel_err(rep.reference_variance(), direct) < 1e-10
    top = float(rep.spectrum[-1]) * 30
    assert rel_err(rep.reference_variance(relative=True), direct * 30 / top) < 1e-10
    with pytest.raises(lg.LieGGError, match="reference"):
        lg.liegg(model, x, action).reference_variance()


# -- a CNN: rotation equivariant feature maps layer by layer, or not --------------------------
def _isotropic(cout: int, cin: int, size: int = 5) -> Tensor:
    r = torch.arange(size, dtype=F64) - size // 2
    r2 = r[:, None] ** 2 + r[None, :] ** 2
    a, b = torch.randn(2, cout, cin, 1, 1, dtype=F64)
    k = a * torch.exp(-r2 / 2) + b * (r2 / 4) * torch.exp(-r2 / 2)
    return k / k.abs().sum(dim=(1, 2, 3), keepdim=True)  # pre-activations of order 1


def _cnn(isotropic: bool) -> nn.Sequential:
    convs = [nn.Conv2d(1, 4, 5, padding=2, padding_mode="circular")]
    convs += [nn.Conv2d(4, 4, 5, padding=2, padding_mode="circular")]
    model = nn.Sequential(convs[0], nn.Tanh(), convs[1], nn.Tanh()).double()
    if isotropic:
        with torch.no_grad():
            for conv in convs:
                conv.weight.copy_(_isotropic(*conv.weight.shape[:2]))
    return model


def _blobs(n: int, size: int = 24) -> Tensor:
    """Smooth images: three Gaussian bumps each, well inside the frame."""
    u = torch.linspace(-1, 1, size, dtype=F64)
    yy, xx = torch.meshgrid(u, u, indexing="ij")
    c = 0.4 * (2 * torch.rand(n, 3, 2, dtype=F64) - 1)
    s = 0.12 + 0.08 * torch.rand(n, 3, 1, 1, dtype=F64)
    amp = torch.randn(n, 3, 1, 1, dtype=F64)
    d2 = (xx - c[..., 0, None, None]) ** 2 + (yy - c[..., 1, None, None]) ** 2
    return (amp * torch.exp(-d2 / (2 * s**2))).sum(dim=1, keepdim=True)


CNN_LAYERS = dict.fromkeys(["0", "1", "2"], lg.ImageAction())


def test_isotropic_cnn_is_rotation_equivariant_layer_by_layer() -> None:
    x = _blobs(12)
    iso = lg.liegg(
        _cnn(True), x, lg.ImageAction(), reference="rotation2d",
        output_action=lg.ImageAction(), layers=CNN_LAYERS,
    )  # fmt: skip
    rand = lg.liegg(
        _cnn(False), x, lg.ImageAction(), reference="rotation2d",
        output_action=lg.ImageAction(), layers=CNN_LAYERS,
    )  # fmt: skip
    assert list(iso) == ["0", "1", "2", "output"]
    for name in iso:
        rep, other = iso[name], rand[name]
        rot = float(rep.reference_variance(relative=True)[0])
        # the most symmetric generator is the rotation, up to discretisation
        assert float(rep.symmetry_bias[0]) < 0.05, (name, rep)
        assert rot < 0.1, name
        # random kernels: the rotation is not a symmetry of the feature maps
        assert float(other.reference_variance(relative=True)[0]) > 10 * rot, (name, other)
        assert float(other.symmetry_bias[0]) > 0.5, (name, other)


def test_forward_and_reverse_agree_with_output_actions() -> None:
    model = _cnn(False)
    x = _blobs(4, size=10)
    kwargs = {"output_action": lg.ImageAction(), "layers": {"0": lg.ImageAction(), "1": None}}
    fwd = lg.liegg(model, x, lg.ImageAction(), ad_mode="forward", **kwargs)
    rev = lg.liegg(model, x, lg.ImageAction(), ad_mode="reverse", **kwargs)
    for name in fwd:
        assert rel_err(fwd[name].gram, rev[name].gram) < 1e-10, name


def test_sum_reduction_per_layer() -> None:
    model = o5_model()
    x = torch.randn(20, 10, dtype=F64)
    rep = lg.liegg(model, x, ACTION, reduction="sum", layers=["f"])
    with pytest.warns(lg.LieGGWarning, match="adds up 3 outputs"):
        direct = lg.liegg(lambda t: model.f(model.pre(t)), x, ACTION, reduction="sum")
    assert rel_err(rep["f"].gram, direct.gram) < 1e-10


# -- conventions -----------------------------------------------------------------------------
class TupleOut(nn.Module):
    def forward(self, x: Tensor) -> tuple[Tensor, dict]:
        return torch.tanh(x), {"note": 1}


class WithTuple(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 6).double()
        self.pair = TupleOut()
        self.head = nn.Linear(6, 2).double()
        self.loss = nn.CrossEntropyLoss()  # never runs in forward

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.pair(self.lin(x))[0])


def test_tuple_output_takes_the_first_tensor_and_auto_drops_unused_modules() -> None:
    model = WithTuple()
    x = torch.randn(10, 6, dtype=F64)
    action = lg.VectorAction(dim=3, channels=2)
    rep = lg.liegg(model, x, action, layers=["pair"])
    direct = lg.liegg(lambda t: torch.tanh(model.lin(t)), x, action)
    assert rel_err(rep["pair"].gram, direct.gram) < 1e-10
    auto = lg.liegg(model, x, action, layers="auto")
    assert list(auto) == ["lin", "pair", "head", "output"]


def test_auto_takes_leaf_modules_of_a_single_sequential() -> None:
    model = lg.demos.DigitMLP(input_dim=16, width=8, depth=2)
    assert auto_layers(model) == [f"net.{i}" for i in range(6)]
    model.loss_fn = nn.CrossEntropyLoss()  # bookkeeping children do not count
    model.metric = lg.LieGG(lg.ImageAction())
    assert auto_layers(model) == [f"net.{i}" for i in range(6)]
    x = torch.randn(5, 1, 4, 4)
    rep = lg.liegg(model, x, lg.ImageAction(), layers="auto")
    assert list(rep) == [*(f"net.{i}" for i in range(6)), "output"]


def test_inplace_activation_does_not_change_the_captured_layer() -> None:
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(inplace=True), nn.Linear(8, 2)).double()
    x = torch.randn(12, 6, dtype=F64)
    action = lg.VectorAction(dim=3, channels=2)
    for mode in MODES:
        rep = lg.liegg(model, x, action, layers=["0"], ad_mode=mode)
        assert rel_err(rep["0"].gram, lg.liegg(model[0], x, action).gram) < 1e-10


def test_layerwise_metric_streams_like_liegg() -> None:
    model = o5_model()
    x = torch.randn(48, 10, dtype=F64)
    for layers in (["g.0", "f"], {"f": None}, "auto"):
        metric = lg.LieGG(ACTION, reference="so(5)", layers=layers)
        metric.update(model, x[:20])
        metric.update(model, x[20:])
        got = metric.compute()
        want = lg.liegg(model, x, ACTION, reference="so(5)", layers=layers)
        assert list(got) == list(want)
        for name in want:
            assert rel_err(got[name].gram, want[name].gram) < 1e-10, (layers, name)
        metric.reset()
        metric.update(model, x[:20])
        assert got["output"].num_samples == 48 and metric.compute()["output"].num_samples == 20


def test_no_side_effects_and_no_hooks_left() -> None:
    model = o5_model().train()
    x = torch.randn(8, 10, dtype=F64)
    before = x.clone()
    lg.liegg(model, x, ACTION, layers="auto", ad_mode="forward")
    lg.liegg(model, x, ACTION, layers="auto", ad_mode="reverse")
    assert all_hooks(model) == 0
    assert all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(x, before)


class Fails(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 6).double()
        self.calls = 0

    def forward(self, x: Tensor) -> Tensor:
        self.calls += 1
        h = self.lin(x)
        if self.calls > 1:  # the probe passes, the analysis fails
            raise RuntimeError("boom inside the analysis")
        return h


def test_hooks_removed_after_an_exception() -> None:
    model = Fails()
    with pytest.raises(RuntimeError, match="boom"):
        lg.liegg(model, torch.randn(4, 6, dtype=F64), lg.VectorAction(dim=6), layers=["lin"])
    assert all_hooks(model) == 0


# -- errors ----------------------------------------------------------------------------------
class Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(6, 6).double()
        self.unused = nn.Linear(6, 6).double()
        self.meta = TupleOut()

    def forward(self, x: Tensor) -> Tensor:
        return self.encoder(x)


class DictOut(nn.Module):
    def forward(self, x: Tensor) -> dict:
        return {"y": x}


@pytest.mark.parametrize(
    ("layers", "match"),
    [
        (["encodr"], r"no submodule 'encodr'.*Close names: \['encoder'\]"),
        (["unused"], r"never ran"),
        (["output"], r"always analysed, under the name \"output\""),
        ("everything", r'"auto"'),
        ({"encoder": "rotation"}, r"For layer 'encoder'.*output_action"),
        ({"encoder": lg.ImageAction()}, r"For layer 'encoder'.*generators of the input"),
    ],
    ids=["unknown", "never-runs", "reserved", "bad-spec", "bad-action", "shape-mismatch"],
)
def test_clear_errors(layers: object, match: str) -> None:
    model = Branchy()
    with pytest.raises(lg.LieGGError, match=match):
        lg.liegg(model, torch.randn(4, 6, dtype=F64), lg.VectorAction(dim=6), layers=layers)
    assert all_hooks(model) == 0


def test_non_tensor_output_and_non_module_are_errors() -> None:
    model = nn.Sequential(nn.Linear(4, 4), DictOut(), nn.Identity()).double()
    model.forward = lambda x: model[0](x) if model[1](x) else x  # type: ignore[method-assign]
    with pytest.raises(lg.LieGGError, match="layer '1' to output a tensor"):
        lg.liegg(model, torch.randn(3, 4, dtype=F64), lg.VectorAction(dim=4), layers=["1"])
    assert all_hooks(model) == 0
    with pytest.raises(lg.LieGGError, match="nn.Module"):
        lg.liegg(lambda t: t, torch.randn(3, 4), lg.VectorAction(dim=4), layers=["0"])


class NanSide(nn.Module):
    """A side branch whose (unused) output is NaN for negative inputs; the output is finite."""

    def __init__(self) -> None:
        super().__init__()
        self.side = nn.Tanh()
        self.head = nn.Linear(6, 2).double()

    def forward(self, x: Tensor) -> Tensor:
        self.side(torch.log(x))  # NaN where x < 0, never reaches the output
        return self.head(x)


def test_non_finite_layer_is_reported_by_name() -> None:
    model = NanSide()
    x = torch.randn(8, 6, dtype=F64)
    with pytest.raises(lg.NonFiniteError, match="'side' are NaN or inf"):
        lg.liegg(model, x, lg.VectorAction(dim=6), layers=["side"])
    assert all_hooks(model) == 0
    rep = lg.liegg(model, x.abs() + 0.1, lg.VectorAction(dim=6), layers=["side"])
    assert list(rep) == ["side", "output"]


class _NoJvp(torch.autograd.Function):
    """tanh with a backward but no jvp: forward mode cannot differentiate it."""

    @staticmethod
    def forward(x: Tensor) -> Tensor:  # type: ignore[override]
        return torch.tanh(x)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # type: ignore[no-untyped-def]
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[no-untyped-def, override]
        (y,) = ctx.saved_tensors
        return grad * (1 - y * y)


class NoJvpTanh(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return _NoJvp.apply(x)


def test_auto_falls_back_to_reverse_without_a_forward_rule() -> None:
    model = nn.Sequential(nn.Linear(6, 8), NoJvpTanh(), nn.Linear(8, 16)).double()
    x = torch.randn(10, 6, dtype=F64)
    action = lg.VectorAction(dim=3, channels=2)  # m = 9 < K: auto tries forward mode first
    with pytest.raises(lg.LieGGError, match='ad_mode="reverse"'):
        lg.liegg(model, x, action, layers=["1"], ad_mode="forward")
    with pytest.warns(lg.LieGGWarning, match="no forward-AD"):
        auto = lg.liegg(model, x, action, layers=["1"], ad_mode="auto")
    rev = lg.liegg(model, x, action, layers=["1"], ad_mode="reverse")
    for name in rev:
        assert rel_err(auto[name].gram, rev[name].gram) < 1e-10
    assert all_hooks(model) == 0


def test_a_resolved_spec_is_kept_for_its_model_only():
    """The engine gets the spec of every chunk: resolved once per model, re-checked otherwise."""
    import copy
    import pickle

    from lightning_liegg.functional.layers import resolve_layers

    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    spec = resolve_layers(model, ["0", "2"], lg.VectorAction(3), "none")
    assert resolve_layers(model, spec, lg.VectorAction(3), "none") is spec
    other = nn.Sequential(nn.Linear(3, 4))
    with pytest.raises(lg.LieGGError, match="no submodule '2'"):
        resolve_layers(other, spec, lg.VectorAction(3), "none")
    for plain in (copy.deepcopy(spec), pickle.loads(pickle.dumps(spec))):
        assert type(plain) is dict and plain == dict(spec)  # no model travels with it
