"""Known answers of the symmetry penalty (``lg.symmetry_loss``), in float64 on tiny models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lightning_liegg as lg
from lightning_liegg.exceptions import LieGGError

F64 = torch.float64
PAIRS = lg.VectorAction(dim=3, channels=2)  # two 3-vectors, gl(3): 9 directions


def mlp(inp: int = 6, out: int = 2, hidden: int = 8) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(inp, hidden), nn.Tanh(), nn.Linear(hidden, out)).to(F64)


class InvariantNet(nn.Module):
    """A trainable network of the O(3) invariants |x1|^2, |x2|^2, x1.x2: exactly invariant."""

    def __init__(self) -> None:
        super().__init__()
        self.head = mlp(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x.reshape(-1, 2, 3)
        feats = torch.stack(
            [v[:, 0].square().sum(1), v[:, 1].square().sum(1), (v[:, 0] * v[:, 1]).sum(1)], 1
        )
        return self.head(feats)


class EquivariantNet(InvariantNet):
    """Outputs a(x) x1 + b(x) x2 with invariant coefficients: exactly O(3) equivariant."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x.reshape(-1, 2, 3)
        coef = super().forward(x)  # (N, 2), invariant
        return coef[:, :1] * v[:, 0] + coef[:, 1:] * v[:, 1]


def data(n: int = 24, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 6, dtype=F64, generator=torch.Generator().manual_seed(seed))


def grads_of(loss: torch.Tensor, model: nn.Module) -> list[torch.Tensor]:
    return list(
        torch.autograd.grad(
            loss, list(model.parameters()), allow_unused=True, materialize_grads=True
        )
    )


@pytest.mark.parametrize("relative", [True, False])
@pytest.mark.parametrize("equivariant", [False, True])
def test_exact_symmetry_gives_zero_and_zero_gradient(relative, equivariant):
    net = EquivariantNet() if equivariant else InvariantNet()
    out_action = lg.VectorAction(dim=3) if equivariant else None
    loss = lg.symmetry_loss(
        net, data(), PAIRS, "so(3)", output_action=out_action, relative=relative
    )
    assert loss.dtype == F64 and loss.ndim == 0 and loss.requires_grad
    assert abs(loss.item()) < 1e-10
    assert max(float(g.abs().max()) for g in grads_of(loss, net)) < 1e-10
    # a network that is not symmetric is penalised, and its gradient is not zero
    plain = lg.symmetry_loss(mlp(6, 3 if equivariant else 2), data(), PAIRS, "so(3)",
                             output_action=out_action, relative=relative)  # fmt: skip
    assert plain.item() > 1e-3


def test_promote_finds_the_exact_symmetry():
    # so(3) is a 3-dimensional null space: the 3 smallest relative eigenvalues vanish, the 4th not
    net = InvariantNet()
    assert lg.symmetry_loss(net, data(), PAIRS, k=3).item() < 1e-10
    loss = lg.symmetry_loss(net, data(), PAIRS, k=3)
    assert max(float(g.abs().max()) for g in grads_of(loss, net)) < 1e-10
    assert lg.symmetry_loss(net, data(), PAIRS, k=4).item() > 1e-4


@pytest.mark.parametrize("ad_mode", ["forward", "reverse"])
@pytest.mark.parametrize("equivariant", [False, True])
def test_equals_the_reports_reference_variance(ad_mode, equivariant):
    torch.manual_seed(0)
    net = mlp(6, 3)
    out_action = lg.VectorAction(dim=3) if equivariant else None
    x = data(32)
    rep = lg.liegg(net, x, PAIRS, reference="so(3)", output_action=out_action)
    opts = dict(output_action=out_action, ad_mode=ad_mode)
    rel = lg.symmetry_loss(net, x, PAIRS, "so(3)", **opts)
    assert rel.item() == pytest.approx(
        float(rep.reference_variance(relative=True).mean()), rel=1e-10
    )
    raw = lg.symmetry_loss(net, x, PAIRS, lg.algebras.so(3), relative=False, **opts)
    assert raw.item() == pytest.approx(float(rep.reference_variance().mean()), rel=1e-10)
    for k in (1, 2, 5):
        promote = lg.symmetry_loss(net, x, PAIRS, k=k, **opts)
        assert promote.item() == pytest.approx(float(rep.relative_spectrum[:k].sum()), rel=1e-9)
        absolute = lg.symmetry_loss(net, x, PAIRS, k=k, relative=False, **opts)
        assert absolute.item() == pytest.approx(float(rep.spectrum[:k].sum()), rel=1e-9)


def test_images_match_the_report_on_a_small_cnn():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 36, 4)
    ).to(F64)
    x = torch.randn(8, 1, 6, 6, dtype=F64)
    action = lg.ImageAction()
    rep = lg.liegg(net, x, action, reference="rotation2d")
    loss = lg.symmetry_loss(net, x, action, "rotation2d")
    assert loss.item() == pytest.approx(
        float(rep.reference_variance(relative=True).mean()), rel=1e-10
    )
    loss.backward()
    # every parameter but the last bias (which no Lie derivative depends on) gets a gradient
    assert all(bool(p.grad.abs().sum() > 0) for p in list(net.parameters())[:-1])
    assert net[-1].bias.grad is None


def test_output_scale():
    net = mlp(6, 2)
    x = data()

    def scaled(inp):
        return 10.0 * net(inp)

    for ref in ("so(3)", None):
        a, b = (lg.symmetry_loss(m, x, PAIRS, ref) for m in (net, scaled))
        assert b.item() == pytest.approx(a.item(), rel=1e-12)
        a, b = (lg.symmetry_loss(m, x, PAIRS, ref, relative=False) for m in (net, scaled))
        assert b.item() == pytest.approx(100.0 * a.item(), rel=1e-12)


@pytest.mark.parametrize(
    ("reference", "relative", "k", "ad_mode"),
    [("so(3)", True, 1, "forward"), ("so(3)", False, 1, "reverse"), (None, True, 2, "forward"),
     (None, False, 1, "reverse")],
)  # fmt: skip
def test_gradient_agrees_with_finite_differences(reference, relative, k, ad_mode):
    net = mlp(6, 2, hidden=4)
    names = [name for name, _ in net.named_parameters()]
    x = data(10)

    def loss_of(*params):
        def model(inp):
            return torch.func.functional_call(net, dict(zip(names, params, strict=True)), (inp,))

        return lg.symmetry_loss(model, x, PAIRS, reference, relative=relative, k=k, ad_mode=ad_mode)

    params = tuple(p.detach().clone().requires_grad_(True) for p in net.parameters())
    assert torch.autograd.gradcheck(loss_of, params, eps=1e-6, atol=1e-7, rtol=1e-5, fast_mode=True)


def test_side_effects():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 1))
    net = net.to(F64).train()
    x = data()
    before = x.clone()
    stats = net[1].running_mean.clone(), net[1].num_batches_tracked.clone()
    rng = torch.get_rng_state()
    a = lg.symmetry_loss(net, x, PAIRS, "so(3)")
    b = lg.symmetry_loss(net, x, PAIRS, "so(3)")
    assert a.item() == b.item()  # eval mode: no dropout noise
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(m.training for m in net.modules())
    assert torch.equal(net[1].running_mean, stats[0])
    assert torch.equal(net[1].num_batches_tracked, stats[1])
    assert torch.equal(x, before) and x.grad is None
    assert all(p.grad is None for p in net.parameters())
    a.backward()
    assert x.grad is None and net[0].weight.grad is not None
    with torch.no_grad():
        assert not lg.symmetry_loss(net, x, PAIRS, "so(3)").requires_grad


def test_errors():
    net = mlp()
    x = data()
    rot = lg.ImageAction(basis=lg.algebras.rotation2d())
    img = torch.randn(2, 1, 5, 5, dtype=F64)
    conv = nn.Sequential(nn.Flatten(), nn.Linear(25, 1)).to(F64)
    with pytest.raises(LieGGError, match="Expected a reference inside the algebra"):
        lg.symmetry_loss(conv, img, rot, "scaling2d")
    with pytest.raises(LieGGError, match=r"Expected inputs of shape \(N, 6\)"):
        lg.symmetry_loss(net, torch.randn(4, 5, dtype=F64), PAIRS, "so(3)")
    with pytest.raises(LieGGError, match=r"Expected reference .* shape \(k, 3, 3\)"):
        lg.symmetry_loss(net, x, PAIRS, lg.algebras.so(4))
    for k in (0, 9, True, 1.0):
        with pytest.raises(LieGGError, match=r"Expected k to be an integer in \[1, 8\]"):
            lg.symmetry_loss(net, x, PAIRS, k=k)
    with pytest.raises(LieGGError, match="Expected k .* but got 1"):
        lg.symmetry_loss(conv, img, rot)  # one direction: nothing to promote
    with pytest.raises(LieGGError, match="Expected relative to be True or False"):
        lg.symmetry_loss(net, x, PAIRS, "so(3)", relative=1)
    with pytest.raises(LieGGError, match="Expected ad_mode"):
        lg.symmetry_loss(net, x, PAIRS, "so(3)", ad_mode="sideways")
    with pytest.raises(LieGGError, match="Expected model outputs with the batch size first"):
        lg.symmetry_loss(lambda v: v.sum(), x, PAIRS, "so(3)")
    with pytest.raises(LieGGError, match="Expected output_action to take generators"):
        lg.symmetry_loss(net, x, PAIRS, "so(3)", output_action=lg.VectorAction(dim=2))


class Cube(torch.autograd.Function):
    """x ** 3 with a once-differentiable backward: autograd cannot differentiate it twice."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x**3

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])
        ctx.save_for_forward(inputs[0])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 3 * x**2 * grad

    @staticmethod
    def jvp(ctx, tangent):
        (x,) = ctx.saved_tensors
        return 3 * x**2 * tangent


class CubeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.a, self.b = nn.Linear(6, 5), nn.Linear(5, 3)

    def forward(self, x):
        return self.b(Cube.apply(self.a(x)))


def _small_cnn() -> nn.Module:
    torch.manual_seed(3)
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * 9, 5), nn.SiLU(), nn.Linear(5, 4),
    )  # fmt: skip
    net[1].running_mean.uniform_(-1, 1)  # eval-mode statistics that are not the identity
    return net.to(F64)


ENGINE_CASES = {
    # name: (model, inputs, action, reference, options); "reverse": 1 output < 9 directions
    "mlp-forward": (lambda: mlp(6, 3), lambda: data(12), PAIRS, "so(3)", {}),
    "mlp-reverse": (lambda: mlp(6, 1), lambda: data(12), PAIRS, None, {"k": 2}),
    "equivariant": (
        lambda: mlp(6, 3), lambda: data(12), PAIRS, "so(3)",
        {"output_action": lg.VectorAction(dim=3)},
    ),
    "cnn": (
        _small_cnn, lambda: torch.randn(5, 1, 6, 6, dtype=F64), lg.ImageAction(), "rotation2d",
        {},
    ),
    "once-differentiable": (CubeNet, lambda: data(12).to(F64), PAIRS, "so(3)", {}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ENGINE_CASES))
@pytest.mark.parametrize("relative", [True, False])
def test_engines_agree(case, relative):
    # the double backward (autograd) and torch.func give the same value and gradients;
    # a once-differentiable op makes the autograd engine fall back to torch.func
    make, inputs, action, reference, opts = ENGINE_CASES[case]
    net = make().to(F64)
    x = inputs()
    values, grads = [], []
    for engine in ("autograd", "functorch", "auto"):
        loss = lg.symmetry_loss(net, x, action, reference, relative=relative, engine=engine, **opts)
        values.append(loss.item())
        grads.append(torch.cat([g.flatten() for g in grads_of(loss, net)]))
    assert values[0] > 1e-6
    for v, g in zip(values[1:], grads[1:], strict=True):
        assert v == pytest.approx(values[0], rel=1e-10)
        assert float((g - grads[0]).abs().max()) <= 1e-10 * float(grads[0].abs().max())


def test_engine_errors():
    with pytest.raises(LieGGError, match="Expected engine to be one of"):
        lg.symmetry_loss(mlp(), data(), PAIRS, "so(3)", engine="jax")
    with pytest.raises(LieGGError, match="Expected engine to be one of"):
        lg.SymmetryRegularizer(PAIRS, "so(3)", engine=None)
