"""The lean forward-mode rules for linear layers and convolutions with constant weights.

They are a speed-up only: every test compares against PyTorch's generic rules (the same
function with the rules switched off) and against reverse mode.
"""

import contextlib

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import lightning_liegg as lg
from lightning_liegg.functional import polarization as pol
from lightning_liegg.functional._autodiff import constant_weights as cw

from ..conftest import rel_err


@pytest.fixture
def count_lean(monkeypatch):
    """Reroute every layer (no size threshold) and count the lean JVPs that run."""
    monkeypatch.setattr(cw, "MIN_WORK", 0)
    monkeypatch.setattr(cw, "MIN_BN_ELEMENTS", 0)
    rules = {
        "linear": cw._Linear,
        "conv": cw._Conv,
        "batch_norm": cw._BatchNorm,
        "layer_norm": cw._LayerNorm,
        "gelu": cw._Gelu,
        "attention": cw._Attention,
    }
    calls = dict.fromkeys(rules, 0)
    for key, cls in rules.items():
        jvp = cls.jvp

        def counted(*args, _jvp=jvp, _key=key):
            calls[_key] += 1
            return _jvp(*args)

        monkeypatch.setattr(cls, "jvp", staticmethod(counted))
    return calls


def generic(model, x, action, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(pol, "_push_constant_weights", lambda *a: None)
        return lg.polarization_matrix(model, x, action, ad_mode="forward")


class Functional(nn.Module):
    """F.linear with a keyword bias, and a layer whose weight is computed in the forward."""

    def __init__(self):
        super().__init__()
        self.w1, self.b1 = nn.Parameter(torch.randn(16, 12)), nn.Parameter(torch.randn(16))
        self.w2 = nn.Parameter(torch.randn(3, 16))

    def forward(self, x):
        h = torch.tanh(F.linear(x.flatten(1), weight=self.w1, bias=self.b1))
        return F.linear(h, self.w2 * 2)  # a weight made in the forward: not rerouted


class Transformer(nn.Module):
    """Token embedding, a pre-norm encoder layer (GELU), LayerNorms with and without affine."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(6, 8)
        self.layer = nn.TransformerEncoderLayer(
            8, 2, 16, dropout=0.1, activation="gelu", batch_first=True, norm_first=True
        )
        self.norm = nn.LayerNorm(8, elementwise_affine=False)
        self.head = nn.Linear(16, 5)
        for p in [*self.layer.norm1.parameters(), *self.layer.norm2.parameters()]:
            nn.init.uniform_(p, 0.5, 1.5)  # affine parameters away from (1, 0)

    def forward(self, x):
        h = self.norm(self.layer(self.embed(x)))
        return self.head(F.gelu(h, approximate="tanh").flatten(1))


MODELS = {
    "mlp": (
        lambda: nn.Sequential(nn.Flatten(), nn.Linear(120, 32), nn.ReLU(), nn.Linear(32, 5)),
        lambda: torch.rand(6, 1, 10, 12),
        lg.ImageAction(),
        {"linear": 2},
    ),
    "cnn": (
        lambda: nn.Sequential(
            nn.Conv2d(1, 4, 3, padding="same"),
            nn.Tanh(),
            nn.Conv2d(4, 4, 3, stride=2, groups=2, padding=1, bias=False),
            nn.Tanh(),
            nn.Flatten(),
            nn.Linear(4 * 5 * 6, 7),
        ),
        lambda: torch.rand(5, 1, 10, 12),
        lg.ImageAction(affine=True),
        {"linear": 1, "conv": 2},
    ),
    "conv1d": (
        lambda: nn.Sequential(
            nn.Conv1d(3, 8, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(32, 30)
        ),
        lambda: torch.randn(7, 3, 4),
        lg.VectorAction(dim=4, channels=3),
        {"linear": 1, "conv": 1},
    ),
    "batchnorm": (
        lambda: with_running_stats(
            nn.Sequential(
                nn.Conv2d(2, 4, 3, padding=1),
                nn.BatchNorm2d(4),
                nn.Tanh(),
                nn.BatchNorm2d(4, affine=False),
                nn.Flatten(),
                nn.Linear(4 * 6 * 5, 8),
                nn.BatchNorm1d(8),
                nn.Tanh(),
                nn.Linear(8, 5),
            )
        ),
        lambda: torch.rand(6, 2, 6, 5),
        lg.ImageAction(),
        {"linear": 2, "conv": 1, "batch_norm": 3},
    ),
    "functional": (
        Functional,
        lambda: torch.randn(6, 2, 6),
        lg.VectorAction(dim=6, channels=2),
        {"linear": 1},
    ),
    "transformer": (
        Transformer,
        lambda: torch.randn(6, 2, 6),
        lg.VectorAction(dim=6, channels=2),
        {"linear": 6, "layer_norm": 3, "gelu": 2, "attention": 1},
    ),
}


def with_running_stats(model):
    """Running statistics and affine parameters away from their defaults (0, 1)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            if m.affine:
                nn.init.uniform_(m.weight, 0.5, 2)
                nn.init.uniform_(m.bias, -1, 1)
    return model


@pytest.mark.parametrize("name", list(MODELS))
def test_lean_rules_agree_with_generic_and_reverse(name, count_lean, monkeypatch):
    make_model, make_x, action, expected = MODELS[name]
    torch.manual_seed(3)
    model, x = make_model().double().eval(), make_x().double()
    lean = lg.polarization_matrix(model, x, action, ad_mode="forward")
    assert {k: v for k, v in count_lean.items() if v} == expected
    assert rel_err(lean, generic(model, x, action, monkeypatch)) < 1e-12
    assert rel_err(lean, lg.polarization_matrix(model, x, action, ad_mode="reverse")) < 1e-10


def test_small_layers_keep_pytorch_rules():
    model = nn.Sequential(nn.Flatten(), nn.Linear(120, 8), nn.ReLU(), nn.Linear(8, 5))
    calls = []
    with cw.ConstantWeights(list(model.parameters())) as mode:
        mode_lean = mode._lean
        calls = [mode_lean([torch.rand(4, 120), model[1].weight, model[1].bias])]
    assert calls == [False]  # 4 * 120 * 8 multiply-adds: below MIN_WORK


def test_not_used_under_outer_transforms_or_autocast():
    x = torch.randn(3, 4)
    assert cw.usable(x)
    with torch.autograd.forward_ad.dual_level():
        assert not cw.usable(x)
    assert not torch.func.vmap(lambda v: torch.tensor(cw.usable(v)))(x).any()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not cw.usable(x)


@pytest.mark.parametrize("batched", [False, True])
def test_vmap_rules(batched, monkeypatch):
    """The explicit vmap rules, also for inputs batched at a dimension other than 0."""
    monkeypatch.setattr(cw, "MIN_WORK", 0)
    torch.manual_seed(0)
    lin, conv = nn.Linear(5, 3).double(), nn.Conv2d(2, 4, 3, padding=1).double()
    xl, xc = (
        torch.randn(6, 4, 5, dtype=torch.float64),
        torch.randn(3, 6, 2, 7, 7, dtype=torch.float64),
    )
    mode = cw.ConstantWeights([*lin.parameters(), *conv.parameters()])
    ctx = mode if batched else contextlib.nullcontext()
    with torch.no_grad(), ctx:
        got_l = torch.func.vmap(lin, in_dims=1)(xl)
        got_c = torch.func.vmap(conv, in_dims=1)(xc)  # (N, C, H, W) samples
        got_u = torch.func.vmap(conv)(xc[0])  # unbatched (C, H, W) samples
    with torch.no_grad():
        assert torch.allclose(got_l, lin(xl.transpose(0, 1)))
        ref = conv(xc.transpose(0, 1).reshape(-1, 2, 7, 7)).reshape(6, 3, 4, 7, 7)
        assert torch.allclose(got_c, ref)
        assert torch.allclose(got_u, ref[:, 0])


@pytest.mark.parametrize("batched", [False, True])
def test_vmap_rules_layer_norm_gelu(batched, monkeypatch):
    monkeypatch.setattr(cw, "MIN_BN_ELEMENTS", 0)
    torch.manual_seed(0)
    norm = nn.LayerNorm((3, 5)).double()
    nn.init.uniform_(norm.weight, 0.5, 1.5)
    x = torch.randn(4, 6, 3, 5, dtype=torch.float64)
    ctx = cw.ConstantWeights(list(norm.parameters())) if batched else contextlib.nullcontext()
    with torch.no_grad(), ctx:
        got_n = torch.func.vmap(norm, in_dims=1)(x)
        got_g = torch.func.vmap(F.gelu, in_dims=2)(x)
    with torch.no_grad():
        assert torch.allclose(got_n, norm(x.transpose(0, 1)))
        assert torch.allclose(got_g, F.gelu(x.movedim(2, 0)))


def test_bind():
    names, defaults = cw._LINEAR_ARGS, cw._LINEAR_DEFAULTS
    x, w, b = object(), object(), object()
    assert cw._bind((x, w), {}, names, defaults) == [x, w, None]
    assert cw._bind((x,), {"weight": w, "bias": b}, names, defaults) == [x, w, b]
    assert cw._bind((x, w), {"weight": w}, names, defaults) is None  # given twice
    assert cw._bind((x,), {}, names, defaults) is None  # weight missing
    assert cw._bind((x, w), {"other": 1}, names, defaults) is None


class Attention(nn.Module):
    """nn.MultiheadAttention (sequence first), optionally with a key padding mask."""

    def __init__(self, masked):
        super().__init__()
        self.attn, self.masked = nn.MultiheadAttention(4, 2), masked

    def forward(self, x):  # (N, L, E) -> (N, L * E)
        seq = x.transpose(0, 1)
        mask = torch.zeros(x.shape[0], x.shape[1], dtype=torch.bool) if self.masked else None
        mask = None if mask is None else mask.index_fill(1, torch.tensor([0]), True)
        return (
            self.attn(seq, seq, seq, key_padding_mask=mask, need_weights=False)[0]
            .transpose(0, 1)
            .flatten(1)
        )


@pytest.mark.parametrize("masked", [False, True])
def test_attention_rule_only_for_plain_self_attention(masked, count_lean, monkeypatch):
    torch.manual_seed(1)
    model, x = Attention(masked).double().eval(), torch.randn(5, 3, 4, dtype=torch.float64)
    action = lg.VectorAction(dim=4, channels=3)
    lean = lg.polarization_matrix(model, x, action, ad_mode="forward")
    assert count_lean["attention"] == (0 if masked else 1)
    assert rel_err(lean, generic(model, x, action, monkeypatch)) < 1e-12
    assert rel_err(lean, lg.polarization_matrix(model, x, action, ad_mode="reverse")) < 1e-10


def test_vmap_rules_attention_and_products():
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 2, 4, 5, 6, dtype=torch.float64) for _ in range(3))
    a, b = torch.randn(2, 4, 3, 5, dtype=torch.float64), torch.randn(2, 5, 7, dtype=torch.float64)
    with torch.no_grad():
        got, _ = torch.func.vmap(cw._Attention.apply, in_dims=(1, None, 0, None))(
            q.transpose(0, 1), k[0], v, 0.3
        )
        ref = F.scaled_dot_product_attention(q, k[0], v, scale=0.3)
        assert torch.allclose(got, ref)
        rows = torch.func.vmap(cw._Matmul.apply, in_dims=(2, None))(a, b)
        assert torch.allclose(rows, torch.matmul(a.movedim(2, 0), b))
        bb = torch.randn(2, 3, 5, 7, dtype=torch.float64)  # batched at dim 1
        cols = torch.func.vmap(cw._Matmul.apply, in_dims=(None, 1))(a[:, :, 0], bb)
        assert torch.allclose(cols, torch.matmul(a[:, :, 0], bb.movedim(1, 0)))
        both = torch.func.vmap(cw._Matmul.apply, in_dims=(2, 1))(a, bb)
        assert torch.allclose(both, torch.matmul(a.movedim(2, 0), bb.movedim(1, 0)))


@pytest.mark.parametrize("which", ["q", "k", "v", "qk", "qkv"])
def test_attention_rule_for_each_tangent(which):
    """The rule's JVP for tangents of any of q, k, v (alone or together), vmapped over several
    tangents as in an analysis: PyTorch's own forward AD of the same attention to 1e-12."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 4, dtype=torch.float64) for _ in range(3))
    tangents = {name: torch.randn(6, 2, 3, 5, 4, dtype=torch.float64) for name in which}

    def run(attend):
        def push(*ts):
            given = dict(zip(which, ts, strict=True))
            primals = {"q": q, "k": k, "v": v}

            def f(*xs):
                args = {**primals, **dict(zip(which, xs, strict=True))}
                return attend(args["q"], args["k"], args["v"])

            return torch.func.jvp(f, tuple(primals[n] for n in which), tuple(given.values()))[1]

        return torch.func.vmap(push)(*tangents.values())

    lean = run(lambda a, b, c: cw._Attention.apply(a, b, c, 0.3)[0])
    plain = run(lambda a, b, c: torch.softmax(a @ b.transpose(-2, -1) * 0.3, dim=-1) @ c)
    assert rel_err(lean, plain) < 1e-12
