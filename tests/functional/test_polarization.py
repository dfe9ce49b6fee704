import warnings

import pytest
import torch
from torch import nn

import lightning_liegg as lg
from lightning_liegg import algebras

from ..conftest import rel_err
from .toys import o5_target


def mlp(d_in, k, dtype=torch.float64):
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Linear(d_in, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, k)
    ).to(dtype)


def cnn(k, dtype=torch.float64):
    torch.manual_seed(2)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Flatten(),
        nn.Linear(4 * 10 * 12, k),
    ).to(dtype)


def naive_rows(model, x, action, reduction="none"):
    """One autograd.grad per sample and output, contracted with explicit tangents."""
    tangents = action.basis_tangents(x)  # (m, N, ...)
    rows = []
    for b in range(x.shape[0]):
        xb = x[b : b + 1].clone().requires_grad_(True)
        out = model(xb).reshape(1, -1)
        if reduction == "sum":
            out = out.sum(1, keepdim=True)
        for k in range(out.shape[1]):
            (g,) = torch.autograd.grad(out[0, k], xb, retain_graph=True)
            rows.append(torch.stack([(g[0] * t[b]).sum() for t in tangents]))
    return torch.stack(rows).double()


CASES = {
    "vector": (
        lambda dt: mlp(10, 3, dt),
        lambda dt: torch.randn(6, 10, dtype=dt),
        lg.VectorAction(5, 2),
    ),
    "vector-subspace": (
        lambda dt: mlp(6, 4, dt),
        lambda dt: torch.randn(5, 6, dtype=dt),
        lg.VectorAction(3, 2, basis=algebras.so(3)),
    ),
    "image": (
        lambda dt: cnn(5, dt),
        lambda dt: torch.rand(4, 1, 10, 12, dtype=dt),
        lg.ImageAction(),
    ),
    "image-affine": (
        lambda dt: cnn(7, dt),
        lambda dt: torch.rand(4, 1, 10, 12, dtype=dt),
        lg.ImageAction(affine=True),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("reduction", ["none", "sum"])
def test_forward_reverse_and_naive_agree(case, reduction, dtype, tol):
    make_model, make_x, action = CASES[case]
    model, x = make_model(dtype), make_x(dtype)
    fwd = lg.polarization_matrix(model, x, action, reduction=reduction, ad_mode="forward")
    rev = lg.polarization_matrix(model, x, action, reduction=reduction, ad_mode="reverse")
    auto = lg.polarization_matrix(model, x, action, reduction=reduction)
    ref = naive_rows(model.eval(), x, action, reduction)
    assert fwd.dtype == torch.float64 and fwd.shape == ref.shape
    assert rel_err(fwd, ref) < tol, f"forward vs naive: {rel_err(fwd, ref):.3g}"
    assert rel_err(rev, ref) < tol, f"reverse vs naive: {rel_err(rev, ref):.3g}"
    assert rel_err(auto, ref) < tol


def test_shapes_none_and_sum():
    model, x = mlp(10, 3), torch.randn(6, 10, dtype=torch.float64)
    assert lg.polarization_matrix(model, x, lg.VectorAction(5, 2)).shape == (18, 25)
    assert lg.polarization_matrix(model, x, lg.VectorAction(5, 2), reduction="sum").shape == (6, 25)


def test_sum_is_paper_definition():
    """reduction="sum": rows of d(sum_k F_k)/dx . (A x), i.e. the per-output rows summed."""
    model, x, action = mlp(10, 3), torch.randn(6, 10, dtype=torch.float64), lg.VectorAction(5, 2)
    none = lg.polarization_matrix(model, x, action).reshape(6, 3, 25)
    summed = lg.polarization_matrix(model, x, action, reduction="sum")
    assert rel_err(summed, none.sum(1)) < 1e-12


def test_outputs_of_any_shape_are_flattened():
    x = torch.randn(4, 6, dtype=torch.float64)
    model = lambda v: v.reshape(-1, 2, 3) ** 2  # noqa: E731  (N, 2, 3) -> K = 6
    assert lg.polarization_matrix(model, x, lg.VectorAction(3, 2)).shape == (24, 9)
    assert lg.polarization_matrix(lambda v: (v**2).sum(1), x, lg.VectorAction(3, 2)).shape == (4, 9)


def test_output_transform_is_applied_first():
    model, x, action = mlp(10, 3), torch.randn(6, 10, dtype=torch.float64), lg.VectorAction(5, 2)
    norm = lambda y: torch.nn.functional.normalize(y, dim=1)  # noqa: E731
    got = lg.polarization_matrix(model, x, action, output_transform=norm)
    ref = lg.polarization_matrix(lambda v: norm(model(v)), x, action)
    assert rel_err(got, ref) < 1e-12


def test_streaming_metric_equals_direct_svd():
    model, x, action = mlp(10, 3), torch.randn(50, 10, dtype=torch.float64), lg.VectorAction(5, 2)
    E = lg.polarization_matrix(model, x, action)
    _, s, vh = torch.linalg.svd(E, full_matrices=False)
    metric = lg.LieGG(action, reference=algebras.so(5))
    for chunk in x.split(7):
        metric.update(model, chunk)
    rep = metric.compute()
    assert rel_err(rep.spectrum, (s**2).flip(0) / 50) < 1e-10
    for i in range(5):  # same generators up to sign
        v = vh.flip(0)[i]
        assert abs(abs(float(v @ rep.generators[i].flatten())) - 1) < 1e-8
    once = lg.liegg(model, x, action, reference=algebras.so(5))
    batched = lg.liegg(model, x, action, reference=algebras.so(5), chunk_size=13)
    assert rel_err(batched.spectrum, once.spectrum) < 1e-12
    assert rel_err(rep.spectrum, once.spectrum) < 1e-12
    metric.reset()
    with pytest.raises(lg.LieGGError, match="at least one update"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            metric.compute()


# -- side effects ---------------------------------------------------------------------------
def _snapshot(model, x):
    return {
        "params": [p.detach().clone() for p in model.parameters()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "buffers": [b.clone() for b in model.buffers()],
        "modes": [m.training for m in model.modules()],
        "x": x.clone(),
        "x_requires_grad": x.requires_grad,
        "x_grad": None if x.grad is None else x.grad.clone(),
        "rng": torch.get_rng_state(),
    }


def _assert_same(before, after):
    for key in before:
        a, b = before[key], after[key]
        if isinstance(a, list):
            assert len(a) == len(b)
            for u, v in zip(a, b, strict=True):
                assert (u is None and v is None) or (
                    u == v if isinstance(u, bool) else torch.equal(u, v)
                ), key
        elif isinstance(a, torch.Tensor):
            assert torch.equal(a, b), key
        else:
            assert a == b, key


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_no_side_effects(mode):
    model = cnn(5)
    model.train()
    model[1].eval()  # a mixed-mode model: each submodule's own mode must come back
    x = torch.rand(4, 1, 10, 12, dtype=torch.float64)
    x.requires_grad_(True)
    model(x).sum().backward()  # existing grads must be kept as they are
    before = _snapshot(model, x)
    lg.polarization_matrix(model, x, lg.ImageAction(), ad_mode=mode)
    _assert_same(before, _snapshot(model, x))


class WritesIntoInput(nn.Module):
    """Adds 1 to its input in place first (autograd refuses that on a leaf that needs grad)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 4))

    def forward(self, v):
        return self.body(v.add_(1.0))


@pytest.mark.parametrize("mode", ["auto", "forward", "reverse"])
@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_a_model_writing_into_its_input_leaves_the_input_alone(mode, reduction):
    model = WritesIntoInput().double()
    x = torch.randn(6, 3, dtype=torch.float64)
    keep = x.clone()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lg.LieGGWarning)  # the sum of 4 outputs
        if mode == "forward":
            rows = lg.polarization_matrix(model, x, lg.VectorAction(dim=3), reduction, ad_mode=mode)
            # the rows of the same model without the write, on the shifted inputs
            expected = lg.polarization_matrix(
                lambda v: model.body(v + 1.0), x, lg.VectorAction(dim=3), reduction, ad_mode=mode
            )
            assert torch.allclose(rows, expected, rtol=1e-10, atol=1e-12)
        else:  # autograd refuses to differentiate through the write
            with pytest.raises(RuntimeError, match="in-place"):
                lg.polarization_matrix(model, x, lg.VectorAction(dim=3), reduction, ad_mode=mode)
    assert torch.equal(x, keep)


class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = cnn(5)

    def forward(self, v):
        self.body(v)
        raise RuntimeError("boom")


def test_no_side_effects_when_it_raises():
    model = Broken().train()
    x = torch.rand(4, 1, 10, 12, dtype=torch.float64)
    before = _snapshot(model, x)
    with pytest.raises(RuntimeError, match="boom"):
        lg.polarization_matrix(model, x, lg.ImageAction())
    _assert_same(before, _snapshot(model, x))
    assert all(m.training for m in model.modules())


def test_dropout_model_rng_untouched_and_deterministic():
    model = nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.5), nn.Linear(8, 2)).double().train()
    x = torch.randn(5, 6, dtype=torch.float64)
    state = torch.get_rng_state()
    a = lg.polarization_matrix(model, x, lg.VectorAction(3, 2))
    assert torch.equal(state, torch.get_rng_state())
    assert torch.equal(a, lg.polarization_matrix(model, x, lg.VectorAction(3, 2)))
    assert model.training


def test_under_no_grad_and_inference_mode():
    model, action = mlp(10, 3), lg.VectorAction(5, 2)
    x = torch.randn(6, 10, dtype=torch.float64)
    ref = lg.polarization_matrix(model, x, action)
    with torch.no_grad():
        assert torch.equal(lg.polarization_matrix(model, x, action), ref)
    with torch.inference_mode():
        xi = x.clone()
        assert xi.is_inference()
        got = lg.polarization_matrix(model, xi, action, ad_mode="forward")
        got2 = lg.polarization_matrix(model, xi, action, ad_mode="reverse")
        metric = lg.LieGG(action)
        metric.update(model, xi)
    assert rel_err(got, ref) < 1e-12 and rel_err(got2, ref) < 1e-12
    assert rel_err(metric.compute().gram, ref.T @ ref) < 1e-12
    metric.update(model, x)  # states made in inference mode still accept updates outside


@pytest.mark.parametrize("low", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def test_low_precision_models(low):
    model64 = mlp(10, 3)
    x = torch.randn(32, 10, dtype=torch.float64)
    ref = lg.polarization_matrix(model64, x, lg.VectorAction(5, 2))
    got = lg.polarization_matrix(mlp(10, 3, low), x.to(low), lg.VectorAction(5, 2))
    assert got.dtype == torch.float64
    assert rel_err(got, ref) < 0.05


# -- errors ------------------------------------------------------------------------------------
def test_constant_model_warns_and_flags():
    x = torch.randn(8, 3, dtype=torch.float64)
    with pytest.warns(lg.DegenerateWarning, match="does not depend on its input"):
        rep = lg.liegg(lambda v: v.sum(1) * 0 + 1, x, lg.VectorAction(3), reference=algebras.so(3))
    assert rep.degenerate
    assert torch.isnan(rep.generators).all()
    assert rep.symmetry_variance == 0.0


def test_nan_outputs_are_counted():
    x = torch.rand(10, 3, dtype=torch.float64) + 0.1
    x[[2, 5, 7], 0] = -1.0

    def model(v):
        return torch.sqrt(v[:, :1])

    with pytest.raises(
        lg.NonFiniteError, match=r"3 of 10 samples gave NaN or inf \(first: sample 2\)"
    ):
        lg.polarization_matrix(model, x, lg.VectorAction(3))


def test_nan_gradients_are_counted():
    x = torch.randn(10, 3, dtype=torch.float64)
    x[[1, 4], 0] = 0.0

    def model(v):  # finite output, infinite gradient at 0
        return torch.sqrt(v[:, 0].abs()).unsqueeze(1)

    with pytest.raises(lg.NonFiniteError, match=r"2 of 10 rows"):
        lg.polarization_matrix(model, x, lg.VectorAction(3))


def test_wrong_output_batch():
    with pytest.raises(
        lg.LieGGError, match=r"batch size first, shape \(4, \.\.\.\).*got shape \(\)"
    ):
        lg.polarization_matrix(lambda v: v.sum(), torch.randn(4, 3), lg.VectorAction(3))


def test_bad_options():
    with pytest.raises(lg.LieGGError, match="reduction to be one of"):
        lg.polarization_matrix(lambda v: v, torch.randn(4, 3), lg.VectorAction(3), reduction="mean")
    with pytest.raises(lg.LieGGError, match="ad_mode to be one of"):
        lg.polarization_matrix(lambda v: v, torch.randn(4, 3), lg.VectorAction(3), ad_mode="fast")
    with pytest.raises(lg.LieGGError, match="chunk_size"):
        lg.liegg(lambda v: v, torch.randn(4, 3), lg.VectorAction(3), chunk_size=0)


def test_o5_with_float32_is_close():
    x = torch.randn(400, 10)
    rep = lg.liegg(o5_target, x, lg.VectorAction(5, 2), reference=algebras.so(5))
    assert rep.symmetry_dim == 10
    assert rep.subspace_distance() < 1e-3


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_under_cpu_autocast_with_batchnorm(mode):
    """vmap has no batching rule for some ops under autocast; the analysis falls back to a loop."""
    model = cnn(5, torch.float32).eval()
    x = torch.rand(4, 1, 10, 12)
    ref = lg.polarization_matrix(model, x, lg.ImageAction(), ad_mode=mode)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = lg.polarization_matrix(model, x, lg.ImageAction(), ad_mode=mode)
    assert rel_err(got, ref) < 0.05


# -- renamed arguments (the callback's names everywhere) -----------------------------------------
def test_metric_checks_ad_mode():
    with pytest.raises(lg.LieGGError, match="ad_mode to be one of"):
        lg.LieGG(lg.VectorAction(dim=3), ad_mode="sideways")
