"""Equivariance: output actions, known answers in float64, both AD modes, checks and errors."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

import lightning_liegg as lg
from lightning_liegg.testing import assert_equivariant, bordered_images, equivariance_error

F64 = torch.float64


def pair_vectors(x: torch.Tensor) -> torch.Tensor:
    """F(x1, x2) = (x1 . x2) x1 + |x2|^2 x2 in R^5: O(5) equivariant, (N, 10) -> (N, 5)."""
    x1, x2 = x[:, :5], x[:, 5:]
    return (x1 * x2).sum(1, keepdim=True) * x1 + (x2 * x2).sum(1, keepdim=True) * x2


def pair_tensor(x: torch.Tensor, n: int = 4) -> torch.Tensor:
    """(x1 . x2)(x1 x2^T + x2 x1^T): O(n) equivariant rank-2 tensors, (N, 2n) -> (N, 1, n, n)."""
    x1, x2 = x[:, :n], x[:, n:]
    outer = x1[:, :, None] * x2[:, None, :]
    return ((x1 * x2).sum(1)[:, None, None] * (outer + outer.transpose(1, 2)))[:, None]


def so_fixing_first(n: int) -> torch.Tensor:
    """so(n-1) inside so(n): the rotations that fix e_1, ((n-1)(n-2)/2, n, n)."""
    out = []
    for i in range(1, n):
        for j in range(i + 1, n):
            h = torch.zeros(n, n, dtype=F64)
            h[i, j], h[j, i] = 1.0, -1.0
            out.append(h)
    return torch.stack(out)


def vectors(n: int = 64, d: int = 10, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, dtype=F64, generator=torch.Generator().manual_seed(seed))


def gaussian_blur(sx: float, sy: float, radius: int = 6):
    s = torch.arange(-radius, radius + 1, dtype=F64)
    k = torch.exp(-(s[:, None] ** 2) / (2 * sy**2) - s[None, :] ** 2 / (2 * sx**2))
    k = (k / k.sum())[None, None]
    return lambda images: nn.functional.conv2d(images, k, padding=radius)


def images(n: int = 16) -> torch.Tensor:
    x = bordered_images(n, 33, 33, border=8, generator=torch.Generator().manual_seed(0))
    return nn.functional.avg_pool2d(x, 3, stride=1, padding=1)  # smoother, still zero outside


def image_moment(images: torch.Tensor) -> torch.Tensor:
    """sum_u I(u) u: (N, 1, H, W) -> (N, 2); equivariant under sl(2) (mass scales by det)."""
    u = lg.ImageAction().coords(*images.shape[-2:], images.dtype, images.device)
    return torch.einsum("nchw,khw->nk", images, u)


SL2 = torch.tensor([[[1.0, 0], [0, -1]], [[0, 1], [0, 0]], [[0, 0], [1, 0]]], dtype=F64)


# -- known answers ---------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_vector_output_null_space_is_exactly_so5(mode):
    rep = lg.liegg(
        pair_vectors,
        vectors(),
        lg.VectorAction(dim=5, channels=2),
        output_action=lg.VectorAction(dim=5),
        reference="so(5)",
        ad_mode=mode,
    )
    assert rep.symmetry_dim == 10, rep
    assert rep.subspace_distance() < 1e-10, rep
    assert float(rep.relative_spectrum[9]) < 1e-14 < 1e-3 < float(rep.relative_spectrum[10])


def test_vector_output_without_output_action_shows_no_so5():
    rep = lg.liegg(pair_vectors, vectors(), lg.VectorAction(dim=5, channels=2), reference="so(5)")
    assert rep.symmetry_dim != 10
    assert rep.subspace_distance() > 0.3, rep
    assert float(rep.relative_spectrum[9]) > 1e-2, rep


@pytest.mark.parametrize("layout", ["channels_first", "flat"])
def test_tensor_output_null_space_is_exactly_so4(layout):
    model = pair_tensor if layout == "channels_first" else lambda x: pair_tensor(x).flatten(1)
    rep = lg.liegg(
        model,
        vectors(d=8),
        lg.VectorAction(dim=4, channels=2),
        output_action=lg.TensorAction(dim=4),
        reference="so(4)",
    )
    assert rep.symmetry_dim == 6, rep
    assert rep.subspace_distance() < 1e-10, rep


def test_broken_equivariance_keeps_the_rotations_fixing_the_offset():
    """F(x) + e_1: L_h = L_h F - h e_1, zero exactly for h in so(5) with h e_1 = 0: so(4), 6."""
    offset = torch.zeros(5, dtype=F64)
    offset[0] = 1.0
    rep = lg.liegg(
        lambda x: pair_vectors(x) + offset,
        vectors(),
        lg.VectorAction(dim=5, channels=2),
        output_action=lg.VectorAction(dim=5),
        reference=so_fixing_first(5),
    )
    assert rep.symmetry_dim == 6, rep
    assert rep.subspace_distance() < 1e-10, rep


def test_isotropic_blur_is_rotation_equivariant_with_a_clear_gap():
    rep = lg.liegg(
        gaussian_blur(1.5, 1.5),
        images(),
        lg.ImageAction(),
        output_action=lg.ImageAction(),
        reference="rotation2d",
    )
    gap = float(rep.relative_spectrum[1] / rep.relative_spectrum[0])
    assert gap > 100, rep
    assert rep.symmetry_dim == 1
    assert float(rep.symmetry_bias[0]) < 0.01, rep


def test_anisotropic_blur_is_not_rotation_equivariant():
    """Its most symmetric generator is the rotation of its ellipse, Sigma J, not a rotation."""
    sx, sy = 1.0, 2.5
    ellipse = torch.tensor([[0.0, sx**2], [-(sy**2), 0.0]], dtype=F64)
    blur = gaussian_blur(sx, sy)
    x = images()
    action = lg.ImageAction()
    rotation = lg.liegg(blur, x, action, output_action=action, reference="rotation2d")
    assert float(rotation.symmetry_bias[0]) > 0.3, rotation
    own = lg.liegg(blur, x, action, output_action=action, reference=ellipse)
    assert float(own.symmetry_bias[0]) < 0.1, own


def test_image_input_with_vector_output_finds_sl2():
    """ImageAction in, VectorAction(dim=2) out: the image moment is sl(2) equivariant."""
    rep = lg.liegg(
        image_moment,
        images(),
        lg.ImageAction(),
        output_action=lg.VectorAction(dim=2),
        reference=SL2,
    )
    assert rep.symmetry_dim == 3, rep
    assert rep.subspace_distance() < 1e-10, rep


def test_direct_sum_of_scalars_and_a_vector_finds_so3():
    """e3nn's "2x0e + 1x1o": two invariants and one vector of a point in R^3."""

    def model(x):
        r2 = (x * x).sum(1, keepdim=True)
        return torch.cat([r2, torch.sin(r2), torch.cos(r2) * x], dim=1)

    out_action = lg.DirectSum(lg.TrivialAction(2), lg.VectorAction(dim=3))
    assert out_action.generator_shape == (3, 3) and out_action.size == 5
    rep = lg.liegg(
        model, vectors(d=3), lg.VectorAction(dim=3), output_action=out_action, reference="so(3)"
    )
    assert rep.symmetry_dim == 3, rep
    assert rep.subspace_distance() < 1e-10, rep
    assert float(rep.relative_spectrum[2]) < 1e-14
    # treating the vector part as invariant: rotations only approximately (cos(r2) h x != 0)
    wrong = lg.DirectSum(lg.TrivialAction(5))
    rep = lg.liegg(model, vectors(d=3), lg.VectorAction(dim=3), output_action=wrong)
    assert float(rep.relative_spectrum[0]) > 1e-3, rep


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_trivial_output_action_is_the_invariance_analysis(mode):
    model = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    x = vectors()
    action = lg.VectorAction(dim=5, channels=2)
    plain = lg.polarization_matrix(model, x, action, ad_mode=mode)
    trivial = lg.polarization_matrix(
        model, x, action, ad_mode=mode, output_action=lg.TrivialAction(3)
    )
    assert torch.equal(plain, trivial)


# -- agreement -------------------------------------------------------------------------------
def definition_rows(model, x, action, output_action):
    """J_F(x_b)[k, :] . (A_j x_b) - (A_j F(x_b))_k by plain autograd, (N*K, m)."""
    basis = action.basis.to(x.dtype)
    rows = []
    for b in range(x.shape[0]):
        xb = x[b : b + 1]
        jac = torch.autograd.functional.jacobian(lambda v: model(v).reshape(-1), xb)  # (K, 1, ...)
        jac = jac.reshape(jac.shape[0], -1)
        fx = model(xb)
        cols = []
        for a in basis:
            tan_in = action.tangent(xb, a[None])[0].reshape(-1)
            tan_out = output_action.tangent(fx, a[None])[0].reshape(-1)
            cols.append(jac @ tan_in - tan_out)
        rows.append(torch.stack(cols, dim=1))
    return torch.cat(rows)


CASES = {
    "vector_to_vector": (
        lambda: nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 5)).double(),
        lambda: vectors(n=6),
        lambda: lg.VectorAction(dim=5, channels=2),
        lambda: lg.VectorAction(dim=5),
    ),
    "vector_to_tensor": (
        lambda: nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 9)).double(),
        lambda: vectors(n=5, d=6),
        lambda: lg.VectorAction(dim=3, channels=2),
        lambda: lg.TensorAction(dim=3),
    ),
    "restricted_basis_to_vector": (
        lambda: nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 3)).double(),
        lambda: vectors(n=5, d=6),
        lambda: lg.VectorAction(
            dim=3, channels=2, basis=torch.cat([lg.algebras.so(3), torch.eye(3, dtype=F64)[None]])
        ),
        lambda: lg.VectorAction(dim=3),
    ),
    "vector_to_two_tensors": (
        lambda: nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 8)).double(),
        lambda: vectors(n=5, d=6),
        lambda: lg.VectorAction(dim=2, channels=3),
        lambda: lg.TensorAction(dim=2, channels=2),
    ),
    "vector_to_nested_direct_sum": (
        lambda: nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 12)).double(),
        lambda: vectors(n=5, d=6),
        lambda: lg.VectorAction(dim=2, channels=3),
        lambda: lg.DirectSum(
            lg.VectorAction(dim=2, channels=2),
            lg.DirectSum(lg.TrivialAction(1), lg.TensorAction(dim=2)),
            lg.TrivialAction(1),
            lg.VectorAction(dim=2),
        ),
    ),
    "vector_to_direct_sum": (
        lambda: nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 5)).double(),
        lambda: vectors(n=5, d=6),
        lambda: lg.VectorAction(dim=3, channels=2),
        lambda: lg.DirectSum(lg.TrivialAction(2), lg.VectorAction(dim=3)),
    ),
    "image_to_image": (
        lambda: nn.Sequential(
            nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), nn.Conv2d(2, 1, 3)
        ).double(),
        lambda: images(n=3)[..., :12, :11].contiguous(),
        lambda: lg.ImageAction(affine=True),
        lambda: lg.ImageAction(affine=True),
    ),
    "image_to_vector": (
        lambda: nn.Sequential(nn.Flatten(), nn.Linear(63, 2)).double(),
        lambda: images(n=4)[..., :7, :9].contiguous(),
        lambda: lg.ImageAction(),
        lambda: lg.VectorAction(dim=2),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rows_match_the_definition_in_both_modes(case):
    make_model, make_x, make_action, make_out = CASES[case]
    torch.manual_seed(1)
    model, x, action, out_action = make_model(), make_x(), make_action(), make_out()
    expected = definition_rows(model, x, action, out_action).detach()
    for mode in ("forward", "reverse"):
        rows = lg.polarization_matrix(model, x, action, ad_mode=mode, output_action=out_action)
        err = float((rows - expected).norm() / expected.norm())
        assert err < 1e-10, f"{case} {mode}: relative error {err:.3g}"


def test_float32_model_matches_float64():
    model = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 5)).double()
    x = vectors(n=8)
    args = (lg.VectorAction(dim=5, channels=2),)
    rows64 = lg.polarization_matrix(model, x, *args, output_action=lg.VectorAction(dim=5))
    rows32 = lg.polarization_matrix(
        model.float(), x.float(), *args, output_action=lg.VectorAction(dim=5)
    )
    assert rows32.dtype == F64
    assert float((rows32 - rows64).norm() / rows64.norm()) < 1e-4


# -- the actions ---------------------------------------------------------------------------
def finite_difference(action, x, h, eps=1e-6):
    return (action.transform(x, h, eps) - action.transform(x, h, -eps)) / (2 * eps)


@pytest.mark.parametrize(
    "name",
    ["tensor", "tensor_two_channels", "direct_sum", "trivial"],
)
def test_tangent_is_the_derivative_of_transform(name):
    gen = torch.Generator().manual_seed(3)
    action, x = {
        "tensor": (lg.TensorAction(dim=3), torch.randn(4, 1, 3, 3, dtype=F64, generator=gen)),
        "tensor_two_channels": (
            lg.TensorAction(dim=2, channels=2),
            torch.randn(4, 8, dtype=F64, generator=gen),
        ),
        "direct_sum": (
            lg.DirectSum(lg.TrivialAction(1), lg.VectorAction(dim=3), lg.TensorAction(dim=3)),
            torch.randn(4, 13, dtype=F64, generator=gen),
        ),
        "trivial": (lg.TrivialAction(3, generator_shape=(3, 3)), torch.randn(4, 3, dtype=F64)),
    }[name]
    h = torch.randn(3, 3, dtype=F64, generator=gen) if name != "tensor_two_channels" else None
    if h is None:
        h = torch.randn(2, 2, dtype=F64, generator=gen)
    tangent = action.tangent(x, h[None])[0]
    assert tangent.shape == x.shape
    assert torch.allclose(tangent, finite_difference(action, x, h), atol=1e-7)
    # contract agrees with the tangents of the matrix units
    grads = torch.randn(x.shape[0], 2, *x.shape[1:], dtype=F64, generator=gen)
    units = torch.eye(h.numel(), dtype=F64).reshape(-1, *h.shape)
    expected = torch.einsum("bkd,mbd->bkm", grads.flatten(2), action.tangent(x, units).flatten(2))
    assert torch.allclose(action.contract(grads, x), expected, atol=1e-12)


def test_transform_with_times_and_direct_sum_layout():
    action = lg.DirectSum(lg.TrivialAction(2), lg.VectorAction(dim=3))
    x = vectors(n=4, d=5)
    h = lg.algebras.so(3)[0]
    frames = action.transform(x, h, torch.tensor([0.0, 0.5]))
    assert frames.shape == (2, 4, 5)
    assert torch.equal(frames[0], x) or torch.allclose(frames[0], x, atol=1e-15)
    assert torch.equal(frames[1][:, :2], x[:, :2])
    expected = lg.VectorAction(dim=3).transform(x[:, 2:], h, 0.5)
    assert torch.allclose(frames[1][:, 2:], expected, atol=1e-14)


def test_tensor_action_transform_is_conjugation():
    h = torch.randn(3, 3, dtype=F64)
    t = torch.randn(2, 1, 3, 3, dtype=F64)
    g = torch.linalg.matrix_exp(0.3 * h)
    assert torch.allclose(lg.TensorAction(dim=3).transform(t, h, 0.3), g @ t @ g.T, atol=1e-13)


# -- testing helpers -----------------------------------------------------------------------------
def test_equivariance_error_by_transforming():
    x = vectors(n=16)
    action, out = lg.VectorAction(dim=5, channels=2), lg.VectorAction(dim=5)
    rot = lg.algebras.so(5)[4]
    assert equivariance_error(pair_vectors, x, action, out, rot, t=0.7) < 1e-12
    assert_equivariant(pair_vectors, x, action, out, rot, t=0.7)
    shear = torch.zeros(5, 5, dtype=F64)
    shear[0, 1] = 1.0
    assert equivariance_error(pair_vectors, x, action, out, shear, t=0.7) > 1e-2
    with pytest.raises(AssertionError, match="VectorAction"):
        assert_equivariant(pair_vectors, x, action, out, shear, t=0.7)
    # invariance is output_action=None
    assert equivariance_error(pair_vectors, x, action, None, rot, t=0.7) > 1e-2


def test_equivariance_error_of_images():
    x = images(n=4)
    action = lg.ImageAction()
    rot = lg.algebras.rotation2d()[0]
    iso = equivariance_error(gaussian_blur(1.5, 1.5), x, action, action, rot, t=0.4)
    aniso = equivariance_error(gaussian_blur(1.0, 2.5), x, action, action, rot, t=0.4)
    assert iso < 0.05 and aniso > 3 * iso, (iso, aniso)


# -- the metric ------------------------------------------------------------------------------------
def test_metric_streaming_equals_liegg():
    x = vectors(n=96)
    action, out = lg.VectorAction(dim=5, channels=2), lg.VectorAction(dim=5)
    metric = lg.LieGG(action, output_action=out, reference="so(5)")
    for chunk in x.split(32):
        metric.update(pair_vectors, chunk)
    streamed = metric.compute()
    direct = lg.liegg(pair_vectors, x, action, output_action=out, reference="so(5)")
    assert torch.allclose(streamed.gram, direct.gram, rtol=1e-12, atol=0)
    assert streamed.symmetry_dim == direct.symmetry_dim == 10
    batched = lg.liegg(pair_vectors, x, action, output_action=out, chunk_size=40)
    assert torch.allclose(batched.gram, direct.gram, rtol=1e-12, atol=0)


# -- side effects ------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_no_side_effects_with_an_output_action(mode):
    model = nn.Sequential(
        nn.Linear(10, 16), nn.BatchNorm1d(16), nn.Dropout(0.2), nn.Tanh(), nn.Linear(16, 5)
    ).double()
    model.train()
    model[4].eval()
    x = vectors(n=12)
    x_before = x.clone()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    lg.polarization_matrix(
        model,
        x,
        lg.VectorAction(dim=5, channels=2),
        ad_mode=mode,
        output_action=lg.VectorAction(dim=5),
    )
    assert all(p.grad is None for p in model.parameters())
    assert [m.training for m in model] == [True, True, True, True, False]
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.equal(x, x_before) and not x.requires_grad
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    # and after an error (the outputs, (N, 5), do not fit a TensorAction)
    with pytest.raises(lg.LieGGError):
        lg.polarization_matrix(
            model,
            x,
            lg.VectorAction(dim=5, channels=2),
            ad_mode=mode,
            output_action=lg.TensorAction(dim=5),
        )
    assert [m.training for m in model] == [True, True, True, True, False]
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)


# -- errors --------------------------------------------------------------------------------------
def test_error_generator_shapes_differ():
    with pytest.raises(
        lg.LieGGError, match=r"VectorAction\(dim=5, channels=2\).*VectorAction\(dim=3"
    ):
        lg.liegg(
            pair_vectors,
            vectors(),
            lg.VectorAction(dim=5, channels=2),
            output_action=lg.VectorAction(dim=3),
        )
    with pytest.raises(lg.LieGGError, match="generator"):
        lg.LieGG(lg.ImageAction(affine=True), output_action=lg.VectorAction(dim=2))


def test_error_output_shape_not_accepted():
    with pytest.raises(lg.LieGGError) as info:
        lg.polarization_matrix(
            pair_vectors,
            vectors(),
            lg.VectorAction(dim=5, channels=2),
            output_action=lg.VectorAction(dim=5, channels=2),
        )
    msg = str(info.value)
    for part in ("(64, 5)", "VectorAction(dim=5, channels=2)", "output action", "input action"):
        assert part in msg, msg


@pytest.mark.parametrize("entry", ["polarization_matrix", "liegg", "LieGG"])
def test_error_sum_with_output_action(entry):
    action, out = lg.VectorAction(dim=5, channels=2), lg.VectorAction(dim=5)
    with pytest.raises(lg.LieGGError, match="not equivariant"):
        if entry == "LieGG":
            lg.LieGG(action, reduction="sum", output_action=out)
        else:
            getattr(lg, entry)(pair_vectors, vectors(), action, reduction="sum", output_action=out)


def test_error_bad_output_actions():
    with pytest.raises(lg.LieGGError, match="output_action"):
        lg.liegg(pair_vectors, vectors(), lg.VectorAction(dim=5, channels=2), output_action="so5")
    with pytest.raises(lg.LieGGError, match="fixed number of features"):
        lg.DirectSum(lg.VectorAction(dim=2), lg.ImageAction())
    with pytest.raises(lg.LieGGError, match="one shape"):
        lg.DirectSum(lg.VectorAction(dim=2), lg.VectorAction(dim=3))
    with pytest.raises(lg.LieGGError, match="generator_shape"):
        lg.liegg(lambda v: v.sum(1), vectors(d=3)[:, :3], lg.TrivialAction(3))
    with pytest.raises(lg.LieGGError, match="TensorAction dim"):
        lg.TensorAction(dim=0)
    with pytest.raises(lg.LieGGError, match=r"\(N, 4\)"):
        lg.TrivialAction(4, generator_shape=(2, 2)).check_input(torch.zeros(3, 5, dtype=F64))


def test_sum_over_several_outputs_warns_and_points_to_output_action():
    action = lg.VectorAction(dim=5, channels=2)
    with pytest.warns(lg.LieGGWarning, match="output_action"):
        lg.polarization_matrix(pair_vectors, vectors(), action, reduction="sum")
    with warnings.catch_warnings():
        warnings.simplefilter("error", lg.LieGGWarning)
        lg.polarization_matrix(lambda v: (v * v).sum(1), vectors(), action, reduction="sum")


def test_trivial_action_adopts_the_partners_generator_shape():
    triv = lg.TrivialAction(2)
    assert triv.generator_shape is None
    rows = lg.polarization_matrix(
        lambda v: torch.stack([v.norm(dim=1), v.sum(1)], 1),
        vectors(n=4, d=3),
        lg.VectorAction(dim=3),
        output_action=triv,
    )
    assert rows.shape == (8, 9) and math.isfinite(float(rows.sum()))


def test_docstring_examples_of_the_new_actions():
    import doctest

    from lightning_liegg.functional.actions import algebraic, tensor

    attempted = 0
    for module in (algebraic, tensor):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0
        attempted += result.attempted
    assert attempted >= 3


@pytest.mark.parametrize("transform", ["l2_normalize", "softmax"])
def test_output_transform_runs_before_the_output_action(transform):
    """l2_normalize is rotation equivariant (so(5) stays exact); a softmax of a vector is not."""
    fn = lg.l2_normalize if transform == "l2_normalize" else lambda y: torch.softmax(y, dim=1)
    rep = lg.liegg(
        pair_vectors,
        vectors(),
        lg.VectorAction(dim=5, channels=2),
        output_action=lg.VectorAction(dim=5),
        output_transform=fn,
        reference="so(5)",
    )
    if transform == "l2_normalize":
        assert rep.symmetry_dim == 10 and rep.subspace_distance() < 1e-10, rep
    else:
        assert float(rep.relative_spectrum[9]) > 1e-6, rep
