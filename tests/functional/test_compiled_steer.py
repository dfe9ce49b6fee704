"""symmetry_loss(compile=True) and SymmetryRegularizer(compile=True): the compiled Lie
derivatives give the eager penalty and the eager gradients, reuse their graph, fall back.

Each test compiles one or two graphs (forward and backward), on tiny models.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import lightning_liegg as lg
from lightning_liegg.exceptions import LieGGError, LieGGWarning

from ..conftest import rel_err
from .test_compiled import GraphBreak, _fresh_cache  # noqa: F401 - the autouse fixture

pytestmark = pytest.mark.slow

TOL64 = 1e-10


def loss_and_grads(model, x, action, reference, **kw):
    """The penalty, the parameters' gradients, and the compile fallback warnings."""
    model.zero_grad(set_to_none=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loss = lg.symmetry_loss(model, x, action, reference, **kw)
    loss.backward()
    grads = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in model.parameters()]
    fallbacks = [w for w in caught if "compile=True" in str(w.message)]
    return loss.detach(), grads, fallbacks


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 3)).double()


@pytest.mark.parametrize(
    ("ad_mode", "relative", "reference"),
    [("forward", True, "so(3)"), ("reverse", False, "so(3)"), ("auto", True, None)],
)
def test_penalty_and_gradients_equal_eager(ad_mode, relative, reference) -> None:
    torch.manual_seed(0)
    model = mlp()
    x = torch.randn(16, 6, dtype=torch.float64)
    action = lg.VectorAction(dim=3, channels=2)
    kw = {"ad_mode": ad_mode, "relative": relative}
    eager, g_eager, _ = loss_and_grads(model, x, action, reference, **kw)
    compiled, g_comp, caught = loss_and_grads(model, x, action, reference, compile=True, **kw)
    assert not caught, [str(w.message) for w in caught]
    assert rel_err(compiled, eager) < TOL64
    for a, b in zip(g_comp, g_eager, strict=True):
        assert rel_err(a, b) < TOL64
    assert any(float(g.abs().max()) > 0 for g in g_comp)  # the penalty reached the weights

    # an optimizer step changes the weights in place: the same graph, the new numbers
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    eager2, g_eager2, _ = loss_and_grads(model, x, action, reference, **kw)
    compiled2, g_comp2, caught = loss_and_grads(model, x, action, reference, compile=True, **kw)
    assert not caught
    assert rel_err(compiled2, eager2) < TOL64
    assert abs(float(compiled2 - compiled)) > 1e-6 * abs(float(compiled))  # new weights used
    for a, b in zip(g_comp2, g_eager2, strict=True):
        assert rel_err(a, b) < TOL64


def test_equivariance_float32_and_regularizer() -> None:
    """An output action in float32 (1e-5), through SymmetryRegularizer(compile=True)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
    x = torch.randn(32, 6)
    action = lg.VectorAction(dim=3, channels=2)
    out_action = lg.VectorAction(dim=3)
    eager, g_eager, _ = loss_and_grads(model, x, action, "so(3)", output_action=out_action)
    reg = lg.SymmetryRegularizer(
        action, "so(3)", weight=2.0, num_samples=None, output_action=out_action, compile=True
    )
    model.zero_grad(set_to_none=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = reg(model, x)
    value.backward()
    assert not [w for w in caught if "compile=True" in str(w.message)]
    assert rel_err(value.detach(), 2.0 * eager) < 1e-5
    for p, g in zip(model.parameters(), g_eager, strict=True):
        assert rel_err(p.grad, 2.0 * g) < 1e-4
    assert callable(reg.compile)  # nn.Module.compile is not hidden by the option


def test_graph_break_falls_back_once_with_eager_numbers() -> None:
    torch.manual_seed(0)
    model = GraphBreak().double()
    x = torch.randn(10, 4, dtype=torch.float64)
    action = lg.VectorAction(dim=2, channels=2)
    eager, g_eager, _ = loss_and_grads(model, x, action, "so(2)")
    compiled, g_comp, caught = loss_and_grads(model, x, action, "so(2)", compile=True)
    assert len(caught) == 1, [str(w.message) for w in caught]
    assert issubclass(caught[0].category, LieGGWarning)
    assert "symmetry penalty" in str(caught[0].message)
    assert "GraphBreak" in str(caught[0].message)
    assert rel_err(compiled, eager) < TOL64
    for a, b in zip(g_comp, g_eager, strict=True):
        assert rel_err(a, b) < TOL64
    _, _, caught = loss_and_grads(model, x, action, "so(2)", compile=True)
    assert not caught  # remembered: no second attempt, no second warning


def test_user_errors_stay_user_errors() -> None:
    """A model whose outputs do not fit raises the eager error, not a compile fallback."""
    x = torch.randn(8, 6, dtype=torch.float64)
    action = lg.VectorAction(dim=3, channels=2)
    with pytest.raises(LieGGError, match="batch size first"):
        lg.symmetry_loss(lambda t: t.sum(), x, action, "so(3)", compile=True)
    with pytest.raises(LieGGError, match="Expected compile to be True or False"):
        lg.symmetry_loss(mlp(), x, action, "so(3)", compile="yes")
    with pytest.raises(LieGGError, match="Expected compile to be True or False"):
        lg.SymmetryRegularizer(action, "so(3)", compile=1)
