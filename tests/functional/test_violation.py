"""Per-sample violations: their mean is the report's relative variance; which samples break."""

import pytest
import torch
from torch import nn

import lightning_liegg as lg


def _mlp() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).double()


def _half_invariant_data(n: int = 32) -> torch.Tensor:
    """Pairs of 2-vectors (a, b) ``(n, 4)``; the first half has b = 0."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g, dtype=torch.float64)
    x[:, 2:] *= 0.3  # small enough that the most symmetric generator is near a rotation
    x[: n // 2, 2:] = 0.0
    return x


def half_invariant(x: torch.Tensor) -> torch.Tensor:
    """|a|^2 + b_1^2: rotation invariant where b = 0 (the first half), not elsewhere."""
    return (x[:, :2] ** 2).sum(dim=1) + x[:, 2] ** 2


@pytest.mark.parametrize("reduction", ["none", "sum"])
def test_mean_is_the_reports_relative_variance(reduction):
    net, action = _mlp(), lg.VectorAction(dim=3, channels=2)
    x = torch.randn(40, 6, dtype=torch.float64)
    rep = lg.liegg(net, x, action, reduction=reduction, reference=lg.algebras.so(3))
    v = lg.symmetry_violation(net, x, action, rep.generators, reduction=reduction)
    assert v.shape == (40, 9) and v.dtype == torch.float64
    assert torch.allclose(v.mean(dim=0), rep.relative_spectrum, rtol=0, atol=1e-10)
    ref = lg.symmetry_violation(net, x, action, rep.reference, reduction=reduction)
    assert torch.allclose(ref.mean(dim=0), rep.reference_variance(relative=True), atol=1e-10)
    assert bool((v >= 0).all())


def test_generators_are_unit_normalised_and_chunks_do_not_matter():
    net, action = _mlp(), lg.VectorAction(dim=3, channels=2)
    x = torch.randn(20, 6, dtype=torch.float64)
    h = lg.algebras.so(3)[0]
    one = lg.symmetry_violation(net, x, action, h)
    scaled = lg.symmetry_violation(net, x, action, 7.0 * h, chunk_size=6)
    assert one.shape == (20, 1)
    assert torch.allclose(one, scaled, rtol=1e-10, atol=1e-14)


def test_equivariance_and_images():
    # rotation equivariant map of 3-vectors: zero violation along so(3) on every sample
    model = lambda x: x * (x**2).sum(dim=1, keepdim=True)  # noqa: E731
    x = torch.randn(16, 3, dtype=torch.float64)
    act = lg.VectorAction(dim=3)
    v = lg.symmetry_violation(model, x, act, lg.algebras.so(3), output_action=act)
    assert float(v.max()) < 1e-12
    images = torch.rand(6, 1, 9, 9, dtype=torch.float64)
    cnn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(98, 2)).double()
    w = lg.symmetry_violation(cnn, images, lg.ImageAction(), lg.algebras.rotation2d())
    rep = lg.liegg(cnn, images, lg.ImageAction(), reference="rotation2d")
    assert float(w.mean()) == pytest.approx(float(rep.reference_variance(relative=True)[0]))


def test_half_invariant_samples():
    x = _half_invariant_data()
    action = lg.VectorAction(dim=2, channels=2)
    v = lg.symmetry_violation(half_invariant, x, action, lg.algebras.so(2))[:, 0]
    assert float(v[:16].max()) < 1e-14  # exactly invariant where b = 0
    assert float(v[16:].median()) > 1e-5 and float(v[16:].min()) > 1e-10
    rep = lg.liegg(half_invariant, x, action)
    top = lg.symmetry_violation(half_invariant, x, action, rep.generators[0])[:, 0]
    assert set(torch.topk(top, 4).indices.tolist()) <= set(range(16, 32))


def test_bad_generators_and_no_side_effects():
    net, action = _mlp(), lg.VectorAction(dim=3, channels=2)
    x = torch.randn(5, 6, dtype=torch.float64)
    with pytest.raises(lg.LieGGError, match=r"Expected generators .* shape \(k, 3, 3\)"):
        lg.symmetry_violation(net, x, action, torch.zeros(2, 2, 2, dtype=torch.float64))
    with pytest.raises(lg.LieGGError, match="non-zero generators"):
        lg.symmetry_violation(net, x, action, torch.zeros(3, 3, dtype=torch.float64))
    with pytest.raises(lg.LieGGError, match="Expected generators"):
        lg.symmetry_violation(net, x, action, [[1.0]])
    net.train()
    before = x.clone()
    lg.symmetry_violation(net, x, action, lg.algebras.so(3))
    assert net.training and all(p.grad is None for p in net.parameters())
    assert torch.equal(x, before)


def test_constant_model_gives_nan_with_a_warning():
    x = torch.randn(4, 3, dtype=torch.float64)
    with pytest.warns(lg.DegenerateWarning):
        v = lg.symmetry_violation(lambda t: 0.0 * t.sum(1), x, lg.VectorAction(3), torch.eye(3))
    assert bool(v.isnan().all())
