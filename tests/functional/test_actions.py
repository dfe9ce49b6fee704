import pytest
import torch

import lightning_liegg as lg
from lightning_liegg import algebras

from .toys import bordered_images


def smooth_images(n, h, w, dtype=torch.float64):
    yy, xx = torch.meshgrid(
        torch.linspace(-1, 1, h, dtype=dtype), torch.linspace(-1, 1, w, dtype=dtype), indexing="ij"
    )
    centres = torch.rand(n, 2, dtype=dtype) * 0.4 - 0.2
    widths = 0.15 + 0.1 * torch.rand(n, dtype=dtype)
    d2 = (xx - centres[:, :1, None]) ** 2 + ((yy - centres[:, 1:, None]) * 1.3) ** 2
    return torch.exp(-d2 / widths[:, None, None] ** 2).unsqueeze(1)


def test_vector_action_dims_and_shapes():
    a = lg.VectorAction(dim=5, channels=2)
    assert a.dim == 25 and a.generator_shape == (5, 5)
    x = torch.randn(4, 10, dtype=torch.float64)
    assert a.tangent(x, algebras.so(5)).shape == (10, 4, 10)
    assert a.tangent(x.reshape(4, 2, 5), algebras.so(5)).shape == (10, 4, 2, 5)


def test_vector_contract_matches_tangents():
    a = lg.VectorAction(dim=3, channels=2)
    x, g = torch.randn(5, 6, dtype=torch.float64), torch.randn(5, 4, 6, dtype=torch.float64)
    fast = a.contract(g, x)
    generic = lg.Action.contract(a, g, x)
    assert torch.allclose(fast, generic, atol=1e-13)


@pytest.mark.parametrize("affine", [False, True], ids=["linear", "affine"])
def test_image_contract_matches_tangents(affine):
    a = lg.ImageAction(affine=affine)
    x = torch.rand(3, 2, 9, 13, dtype=torch.float64)
    g = torch.randn(3, 4, 2, 9, 13, dtype=torch.float64)
    assert torch.allclose(a.contract(g, x), lg.Action.contract(a, g, x), atol=1e-12)


def test_vector_transform_is_matrix_exponential():
    a = lg.VectorAction(dim=3, channels=2)
    x = torch.randn(4, 6, dtype=torch.float64)
    h = algebras.so(3)[0]
    out = a.transform(x, h, 0.7)
    expected = (x.reshape(4, 2, 3) @ torch.linalg.matrix_exp(0.7 * h).T).reshape(4, 6)
    assert torch.allclose(out, expected, atol=1e-14)
    film = a.transform(x, h, torch.tensor([0.0, 0.7]))
    assert (
        film.shape == (2, 4, 6) and torch.allclose(film[0], x) and torch.allclose(film[1], expected)
    )


@pytest.mark.parametrize("affine", [False, True], ids=["linear", "affine"])
@pytest.mark.parametrize("size", [(33, 33), (31, 45)], ids=["square", "nonsquare"])
def test_image_tangent_is_derivative_of_warp(affine, size):
    """d/dt transform(x, h, t) at 0 equals tangent(x, h): the analysis and the warp agree on
    coordinates, orientation and sign (a transposed warp would fail for the shear). Measured
    error at most 2.4e-4 (finite differences with eps 1e-3); the bound 1e-3 fails a 3% error in
    the coordinate scale."""
    a = lg.ImageAction(affine=affine)
    x = smooth_images(2, *size)
    gens = [torch.tensor([[0.0, 1.0], [0.0, 0.0]]), torch.tensor([[0.3, -0.5], [0.8, 0.1]])]
    if affine:
        gens = [torch.cat([g, torch.tensor([[0.2], [-0.4]])], 1) for g in gens]
    for h in gens:
        h = h.double()
        eps = 1e-3
        fd = (a.transform(x, h, eps) - a.transform(x, h, -eps)) / (2 * eps)
        tan = a.tangent(x, h[None])[0]
        inner = (slice(None), slice(None), slice(4, -4), slice(4, -4))
        err = (fd - tan)[inner].norm() / tan[inner].norm()
        assert err < 1e-3, f"relative error {err:.3g} for generator {h.tolist()}"
        wrong = (
            fd
            - a.tangent(x, h[None, :, :2].transpose(1, 2).contiguous() if not affine else h[None])[
                0
            ]
        )
        if not affine and not torch.allclose(h, h.T):
            assert (wrong[inner].norm() / tan[inner].norm()) > 0.2


def test_image_transform_rotation_quarter_turn():
    a = lg.ImageAction()
    x = torch.rand(2, 1, 7, 7, dtype=torch.float64)
    quarter = a.transform(x, algebras.rotation2d()[0], torch.pi / 2 * 2**0.5)
    # (g.I)(u) = I(g^-1 u); a quarter turn of the image grid is an exact pixel permutation
    assert torch.allclose(
        quarter, torch.rot90(x, k=-1, dims=(-2, -1)), atol=1e-12
    ) or torch.allclose(quarter, torch.rot90(x, k=1, dims=(-2, -1)), atol=1e-12)
    back = a.transform(quarter, algebras.rotation2d()[0], -torch.pi / 2 * 2**0.5)
    assert torch.allclose(back, x, atol=1e-12)


def test_image_accepts_nchw_and_nhw():
    a = lg.ImageAction()
    x = bordered_images(2, 12, 10)
    t1 = a.tangent(x, algebras.gl(2))
    t2 = a.tangent(x[:, 0], algebras.gl(2))
    assert t1.shape == (4, 2, 1, 12, 10) and t2.shape == (4, 2, 12, 10)
    assert torch.allclose(t1[:, :, 0], t2)


def test_restricted_basis_is_orthonormalised():
    basis = torch.stack(
        [algebras.rotation2d()[0] * 3, algebras.rotation2d()[0] + algebras.scaling2d()[0]]
    )
    a = lg.ImageAction(basis=basis)
    assert a.dim == 2
    flat = a.basis.flatten(1)
    assert torch.allclose(flat @ flat.T, torch.eye(2, dtype=torch.float64), atol=1e-14)


class SignalAction(lg.Action):
    """The documented protocol: 1-D signals (N, L) with the affine action on their coordinate."""

    def __init__(self, basis=None):
        self.generator_shape = (1, 2)
        super().__init__(basis)

    def _canonical(self, x):
        if x.ndim != 2:
            raise lg.LieGGError(f"Expected signals (N, L), but got shape {tuple(x.shape)}.")
        return x

    def tangent(self, x, generators):
        s = torch.linspace(-1, 1, x.shape[1], dtype=x.dtype)
        grad = torch.gradient(x, spacing=(s,), dim=1)[0]
        vel = generators[:, 0, :1] * s + generators[:, 0, 1:]  # (k, L)
        return -(grad[None] * vel[:, None])

    def transform(self, x, generator, t=1.0):
        raise NotImplementedError


def test_new_action_is_a_short_subclass():
    """A translation-invariant functional of 1-D signals has the translation as its symmetry."""
    s = torch.linspace(-1, 1, 64, dtype=torch.float64)
    x = torch.exp(-((s - 0.4 * torch.rand(32, 1, dtype=torch.float64) + 0.2) ** 2) / 0.02)
    rep = lg.liegg(lambda v: torch.stack([v.sum(1), (v**2).sum(1)], 1), x, SignalAction())
    assert rep.symmetry_dim == 1
    assert torch.allclose(
        rep.generators[0].abs(), torch.tensor([[0.0, 1.0]], dtype=torch.float64), atol=1e-8
    )


# -- errors -------------------------------------------------------------------------------
def test_error_feature_count():
    with pytest.raises(
        lg.LieGGError,
        match=r"Expected inputs of shape \(N, 10\) or \(N, 2, 5\).*"
        r"VectorAction\(dim=5, channels=2\).*\(4, 9\)",
    ):
        lg.polarization_matrix(
            lambda x: x.sum(1), torch.randn(4, 9), lg.VectorAction(dim=5, channels=2)
        )


def test_error_flat_images():
    with pytest.raises(
        lg.LieGGError, match=r"\(N, C, H, W\).*ImageAction.*\(3, 784\).*\(N, 1, 28, 28\)"
    ):
        lg.liegg(lambda x: x.sum(1), torch.rand(3, 784), lg.ImageAction())


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.bool], ids=str)
def test_error_integer_inputs(dtype):
    x = torch.zeros(4, 1, 8, 8, dtype=dtype)
    with pytest.raises(lg.LieGGError, match=f"floating-point.*{dtype}"):
        lg.liegg(lambda v: v.float().sum((1, 2, 3)), x, lg.ImageAction())


def test_error_empty_batch():
    with pytest.raises(lg.LieGGError, match=r"at least one sample.*\(0, 3\)"):
        lg.polarization_matrix(lambda v: v.sum(1), torch.zeros(0, 3), lg.VectorAction(3))


@pytest.mark.parametrize(
    "make",
    [
        lambda: lg.VectorAction(3).transform(torch.randn(2, 3), torch.eye(2)),
        lambda: lg.ImageAction().transform(torch.rand(2, 1, 5, 5), torch.zeros(2, 3)),
        lambda: lg.ImageAction(affine=True).transform(torch.rand(2, 1, 5, 5), torch.zeros(2, 2)),
        lambda: lg.liegg(
            lambda v: v.sum(1), torch.randn(5, 3), lg.VectorAction(3), reference=algebras.so(4)
        ),
        lambda: lg.liegg(
            lambda v: v.sum((1, 2, 3)),
            torch.rand(2, 1, 5, 5),
            lg.ImageAction(affine=True),
            reference=algebras.rotation2d(),
        ),
        lambda: lg.VectorAction(2, basis=torch.zeros(1, 3, 3)),
    ],
    ids=[
        "vector-generator",
        "image-generator",
        "affine-generator",
        "vector-reference",
        "affine-reference",
        "basis",
    ],
)
def test_error_generator_or_reference_shape(make):
    with pytest.raises(
        lg.LieGGError, match=r"Expected .* shape \(k?, ?\d, \d\)|Expected one generator"
    ):
        make()


def test_error_not_an_action():
    with pytest.raises(lg.LieGGError, match="Expected action to be an Action"):
        lg.liegg(lambda v: v, torch.randn(2, 3), "so3")


@pytest.mark.parametrize("k", [1, 2, 5])
@pytest.mark.parametrize("affine", [False, True], ids=["linear", "affine"])
def test_image_contract_paths_match_generic(k, affine):
    """Few outputs (weighted differences) and many (unit tangents, bmm) give the same rows, also
    for gradients laid out output-major as reverse mode's vmap returns them."""
    a = lg.ImageAction(affine=affine)
    x = torch.rand(3, 2, 9, 13, dtype=torch.float64)
    g = torch.randn(k, 3, 2, 9, 13, dtype=torch.float64).transpose(0, 1)
    assert torch.allclose(a.contract(g, x), lg.Action.contract(a, g, x), atol=1e-12)
    assert torch.allclose(
        a.contract(g.contiguous(), x[:, :1].expand(3, 2, 9, 13)),
        lg.Action.contract(a, g, x[:, :1].expand(3, 2, 9, 13)),
        atol=1e-12,
    )


@pytest.mark.parametrize("padding", ["border", "zeros", "reflection"])
@pytest.mark.parametrize("affine", [False, True], ids=["linear", "affine"])
def test_image_fast_paths_match_differentiable_ones(affine, padding):
    """The in-place fast paths (plain tensors) and the autograd / torch.func paths agree, and
    tangents stay differentiable and vmappable. The gradient is torch.gradient's central
    differences of the image padded by one pixel as ``padding`` says."""
    a = lg.ImageAction(affine=affine, padding=padding)
    x = torch.rand(3, 2, 7, 10, dtype=torch.float64)
    h, w = x.shape[-2:]
    mode = {"border": "replicate", "zeros": "constant", "reflection": "reflect"}[padding]
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode=mode)
    gy, gx = torch.gradient(padded, spacing=(2.0 / (h - 1), 2.0 / (w - 1)), dim=(-2, -1))
    gy, gx = gy[..., 1:-1, 1:-1], gx[..., 1:-1, 1:-1]
    assert torch.allclose(a.image_gradient(x), torch.stack([gx, gy], dim=2), atol=1e-12)
    gens = a.basis
    plain = a.tangent(x, gens)
    assert torch.allclose(a.basis_tangents(x), plain, atol=1e-12)
    xg = x.clone().requires_grad_(True)
    tracked = a.tangent(xg, gens)
    assert torch.allclose(tracked, plain, atol=1e-12)
    (grad,) = torch.autograd.grad(tracked.square().sum(), xg)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    mapped = torch.func.vmap(lambda xi: a.tangent(xi[None], gens)[:, 0])(x)  # (N, m, C, H, W)
    assert torch.allclose(mapped.transpose(0, 1), plain, atol=1e-12)
    _, jt = torch.func.jvp(lambda xi: a.tangent(xi, gens), (x,), (x,))
    assert torch.allclose(jt, plain, atol=1e-12)  # linear in x


def test_reference_as_name_or_nested_lists():
    x = torch.randn(32, 3, dtype=torch.float64)
    by_list = lg.liegg(
        lambda v: (v**2).sum(1), x, lg.VectorAction(3), reference=algebras.so(3).tolist()
    )
    by_name = lg.liegg(lambda v: (v**2).sum(1), x, lg.VectorAction(3), reference="so(3)")
    assert by_list.subspace_distance() < 1e-10 and by_name.subspace_distance() < 1e-10
    with pytest.raises(lg.LieGGError, match="nested lists of numbers"):
        lg.liegg(lambda v: v.sum(1), x, lg.VectorAction(3), reference=[[1.0, "a"]])
    with pytest.raises(lg.LieGGError, match="reference algebra name"):
        lg.liegg(lambda v: v.sum(1), x, lg.VectorAction(3), reference="rotations")


@pytest.mark.parametrize("k", [1, 2, 5])
def test_image_contract_in_blocks(k, monkeypatch):
    """On CPU the contraction runs over blocks of samples: any block size gives the same rows."""
    from lightning_liegg.functional.actions import _grid

    a = lg.ImageAction()
    x = torch.rand(7, 2, 9, 13, dtype=torch.float64)
    g = torch.randn(7, k, 2, 9, 13, dtype=torch.float64)
    whole = a.contract(g, x)
    monkeypatch.setattr(_grid, "_BLOCK_BYTES", 3 * 2 * 2 * 9 * 13 * 8)  # blocks of 3 samples
    assert torch.allclose(a.contract(g, x), whole, atol=1e-12)
    assert torch.allclose(whole, lg.Action.contract(a, g, x), atol=1e-12)
