"""compile=True: the compiled row computation equals eager, reuses its graph, falls back.

Compilation is slow on a 2-core CPU (seconds per graph), so the models are tiny and every
test compiles few graphs.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import Tensor, nn

import lightning_liegg as lg
from lightning_liegg.exceptions import LieGGError, LieGGWarning
from lightning_liegg.functional._autodiff import compiled as _compiled

from ..conftest import rel_err
from .test_model_zoo import images, small_cnn

pytestmark = pytest.mark.slow

TOL64 = 1e-10


@pytest.fixture(autouse=True)
def _fresh_cache():
    _compiled.clear_cache()
    yield
    _compiled.clear_cache()


def both(model, x, action, **kw) -> tuple[Tensor, Tensor, list]:
    """Eager and compiled polarization matrices, and the warnings of the compiled call."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LieGGWarning)
        eager = lg.polarization_matrix(model, x, action, **kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = lg.polarization_matrix(model, x, action, compile=True, **kw)
    fallbacks = [w for w in caught if "compile=True" in str(w.message)]
    return eager, compiled, fallbacks


class Norms(nn.Module):
    """Rotation-equivariant map of 3-vectors: y = x * mlp(|x|)."""

    def __init__(self) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.mlp(x.norm(dim=1, keepdim=True))


def test_cnn_forward_mode_equals_eager_and_leaves_no_trace() -> None:
    """BatchNorm, GELU, Dropout in eval, convolutions: forward mode (4 JVPs < 10 outputs)."""
    torch.manual_seed(0)
    model = small_cnn().double()
    model.train()  # analysed in eval mode, train mode back afterwards
    x = images().double()
    x0 = x.clone()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    eager, compiled, caught = both(model, x, lg.ImageAction())
    assert not caught, [str(w.message) for w in caught]
    assert rel_err(compiled, eager) < TOL64
    assert torch.equal(x, x0)
    assert model.training and all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert torch.equal(torch.get_rng_state(), rng)


class TinyViT(nn.Module):
    """Patch embedding, a pre-norm transformer layer (LayerNorm, attention, GELU), a head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(1, 8, 4, 4)
        layer = nn.TransformerEncoderLayer(
            8, 2, 16, dropout=0.1, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: Tensor) -> Tensor:
        t = self.embed(x).flatten(2).transpose(1, 2)
        return self.head(self.norm(self.encoder(t)).mean(dim=1))


def test_transformer_compiles_and_equals_eager() -> None:
    """LayerNorm's forward-AD rule fails under dynamo in torch 2.13: the formula replaces it."""
    torch.manual_seed(0)
    model = TinyViT().double().eval()
    x = torch.randn(6, 1, 8, 8, dtype=torch.float64)
    eager, compiled, caught = both(model, x, lg.ImageAction())
    assert not caught, [str(w.message) for w in caught]
    assert rel_err(compiled, eager) < TOL64


def test_sub_batches_share_one_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    """On CPU a large batch is split as on the eager path; the last, smaller sub-batch is
    padded to the same shape, so one graph serves all (no recompilation), same rows."""
    from lightning_liegg.functional._autodiff import memory as _memory

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)
    ).double()
    x = torch.randn(11, 1, 8, 8, dtype=torch.float64)
    monkeypatch.setattr(_memory, "BUDGET_BYTES", 20_000)  # sub-batches of a few samples
    sizes = []
    real = _compiled.compiled_rows

    def spy(model, part, *args, **kwargs):
        sizes.append(int(part.shape[0]))
        return real(model, part, *args, **kwargs)

    monkeypatch.setattr(_compiled, "compiled_rows", spy)
    eager, compiled, caught = both(model, x, lg.ImageAction())
    assert not caught, [str(w.message) for w in caught]
    assert len(sizes) >= 2 and len(set(sizes)) == 1 and sizes[0] * (len(sizes) - 1) < 11
    assert rel_err(compiled, eager) < TOL64
    assert len(_compiled._entries(model)) == 1  # one graph


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (lambda p: lg.ImageAction(padding=p), (2, 1, 5, 6)),
        (lambda p: lg.SignalAction(padding=p), (2, 2, 7)),
        (lambda p: lg.VolumeAction(padding=p), (1, 1, 4, 5, 3)),
    ],
    ids=["image", "signal", "volume"],
)
def test_grid_differences_under_the_compiler_equal_eager(make, shape) -> None:
    """Under the compiler the central differences are padded shifts (pointwise, fused): the
    same numbers as the eager edges for every padding."""
    x = torch.randn(*shape, dtype=torch.float64)
    paddings = ("border", "zeros", "reflection") + (("circular",) if len(shape) == 3 else ())
    for padding in paddings:
        action = make(padding)
        torch._dynamo.reset()
        compiled = torch.compile(action.grid_gradient, fullgraph=True, backend="aot_eager")
        assert torch.equal(compiled(x), action.grid_gradient(x)), padding


def test_new_weights_reuse_the_graph() -> None:
    """Weights are graph inputs: changed in place, the same graph gives the new eager rows."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.SiLU(), nn.Linear(8, 1)).double().eval()
    x = torch.randn(16, 6, dtype=torch.float64)
    action = lg.VectorAction(dim=3, channels=2)
    eager, compiled, _ = both(model, x, action, reduction="sum")
    assert rel_err(compiled, eager) < TOL64
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5).add_(0.1)
    eager2, compiled2, caught = both(model, x, action, reduction="sum")
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs
    assert rel_err(compiled2, eager2) < TOL64
    assert rel_err(compiled2, compiled) > 1e-3  # the new weights were used
    assert not caught


def test_equivariance_reverse_mode_with_output_term() -> None:
    """Output action (the output term inside the graph), reverse mode with 3 outputs."""
    torch.manual_seed(0)
    model = Norms().double().eval()
    x = torch.randn(12, 3, dtype=torch.float64)
    action = lg.VectorAction(dim=3)
    eager, compiled, caught = both(model, x, action, output_action=action, ad_mode="reverse")
    assert not caught, [str(w.message) for w in caught]
    assert rel_err(compiled, eager) < TOL64
    rep = lg.liegg(model, x, action, output_action=action, reference="so(3)", compile=True)
    assert rep.subspace_distance(3) < 1e-6  # the rotations are found


class GraphBreak(nn.Module):
    """A model dynamo cannot trace as one graph (a disabled function in its forward)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.lin(_opaque(x))


@torch._dynamo.disable
def _opaque(x: Tensor) -> Tensor:
    return torch.tanh(x)


def test_graph_break_falls_back_once_with_eager_numbers() -> None:
    torch.manual_seed(0)
    model = GraphBreak().double().eval()
    x = torch.randn(10, 4, dtype=torch.float64)
    action = lg.VectorAction(dim=2, channels=2)
    eager, compiled, caught = both(model, x, action)
    assert len(caught) == 1, [str(w.message) for w in caught]
    assert "could not be compiled" in str(caught[0].message)
    assert "GraphBreak" in str(caught[0].message)
    assert rel_err(compiled, eager) < TOL64
    _, again, caught = both(model, x, action)  # remembered: no second attempt, no warning
    assert not caught
    assert rel_err(again, eager) < TOL64


def test_metric_and_errors() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2)).double().eval()
    x = torch.randn(8, 4, dtype=torch.float64)
    action = lg.VectorAction(dim=2, channels=2)
    metric = lg.LieGG(action, compile=True)
    metric.update(model, x)
    ref = lg.liegg(model, x, action)
    assert rel_err(metric.compute().gram, ref.gram) < TOL64
    for make in (
        lambda: lg.LieGG(action, compile="yes"),
        lambda: lg.liegg(model, x, action, compile=1),
        lambda: lg.LieGGCallback(action, compile=None),
    ):
        with pytest.raises(LieGGError, match="Expected compile to be True or False"):
            make()
