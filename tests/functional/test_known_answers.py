"""Exactly invariant functions must give their symmetry algebra as the null space."""

import pytest
import torch

import lightning_liegg as lg
from lightning_liegg import algebras

from .toys import bordered_images, lorentz_invariant, o5_target, row_sum_functional


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_o5_target_gives_so5(mode):
    x = torch.randn(400, 10, dtype=torch.float64)
    rep = lg.liegg(
        o5_target, x, lg.VectorAction(dim=5, channels=2), reference=algebras.so(5), ad_mode=mode
    )
    rel = rep.relative_spectrum
    assert rep.symmetry_dim == 10, rep
    assert float(rel[:10].max()) < 1e-10, f"null relative variances {rel[:10]}"
    assert float(rel[10]) > 1e-4
    assert float(rep.symmetry_bias[:10].max()) < 1e-6
    assert float(rep.symmetry_bias[10:].min()) > 0.99  # the rest is symmetric matrices
    assert rep.subspace_distance() < 1e-6
    assert rep.closure() < 1e-8


def test_lorentz_invariant_gives_so13():
    x = torch.randn(300, 8, dtype=torch.float64)
    rep = lg.liegg(
        lorentz_invariant, x, lg.VectorAction(dim=4, channels=2), reference=algebras.lorentz()
    )
    assert rep.symmetry_dim == 6, rep
    assert float(rep.relative_spectrum[:6].max()) < 1e-10
    assert float(rep.symmetry_bias[:6].max()) < 1e-6
    assert rep.subspace_distance() < 1e-6
    # not so(4): the boosts are symmetric matrices
    other = lg.liegg(lorentz_invariant, x, lg.VectorAction(4, 2), reference=algebras.so(4))
    assert other.subspace_distance() > 1.0


@pytest.mark.parametrize("size", [(20, 28), (24, 24), (30, 17)], ids=["20x28", "24x24", "30x17"])
def test_image_shear_functional(size):
    """The row-sum functional's only gl(2) symmetry is the shear x -> x + t y; warping along
    the found generator leaves it unchanged while the transposed shear and other directions
    change it."""
    x = bordered_images(48, *size)
    action = lg.ImageAction()
    rep = lg.liegg(row_sum_functional, x, action)
    shear = torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    assert rep.symmetry_dim == 1, rep
    assert float(rep.relative_spectrum[0]) < 1e-10
    assert torch.allclose(rep.generators[0], shear, atol=1e-8), rep.generators[0]
    f0 = row_sum_functional(x)
    moved = row_sum_functional(action.transform(x, rep.generators[0], 0.3))
    assert float((moved - f0).abs().max()) < 1e-10
    for other in (shear.T, rep.generators[1], rep.generators[3]):
        changed = row_sum_functional(action.transform(x, other, 0.3))
        assert float((changed - f0).abs().max()) > 1e-3


def test_image_affine_finds_shear_and_x_translation():
    x = bordered_images(48, 20, 26)
    rep = lg.liegg(row_sum_functional, x, lg.ImageAction(affine=True))
    assert rep.symmetry_dim == 2
    expected = torch.zeros(2, 2, 3, dtype=torch.float64)
    expected[0, 0, 1] = 1.0  # shear
    expected[1, 0, 2] = 1.0  # translation along x
    assert (
        lg.SymmetryReport(rep.gram, rep.num_samples, rep.basis, expected).subspace_distance() < 1e-6
    )


def test_radial_functional_gives_rotation():
    """A radially weighted functional is rotation invariant for any image; on anisotropic
    images its other gl(2) directions are not symmetries. Rotation must be the most symmetric
    direction (approximately: a pixel grid is not rotation invariant)."""
    h, w = 33, 37
    yy, xx = torch.meshgrid(
        torch.linspace(-1, 1, h, dtype=torch.float64),
        torch.linspace(-1, 1, w, dtype=torch.float64),
        indexing="ij",
    )
    r2 = xx**2 + yy**2
    params = torch.rand(32, 4, dtype=torch.float64)
    angle = params[:, :1, None] * torch.pi
    c, s = torch.cos(angle), torch.sin(angle)
    a = (c * xx + s * yy) / (0.15 + 0.2 * params[:, 1:2, None])
    b = (-s * xx + c * yy) / (0.05 + 0.1 * params[:, 2:3, None])
    x = torch.exp(-(a**2) - b**2)[:, None]

    def radial(images):
        return torch.stack([(images * r2).sum((1, 2, 3)), (images * r2**2).sum((1, 2, 3))], 1)

    rep = lg.liegg(radial, x, lg.ImageAction(), reference=algebras.rotation2d())
    assert float(rep.symmetry_bias[0]) < 0.05, rep
    assert float(rep.relative_spectrum[0]) < 1e-3, rep
    assert float(rep.relative_spectrum[1]) > 1e-2, rep


def _report_with_most_symmetric(generators, variances=(1e-8, 2e-8)):
    """A report over gl(2) whose most symmetric generators are ``generators`` (orthonormal,
    in this order), the other directions having relative variances 0.5 and 1."""
    flat = torch.stack([g.flatten() for g in generators]).to(torch.float64)
    rest = torch.linalg.svd(torch.eye(4, dtype=torch.float64) - flat.T @ flat).U[:, : 4 - len(flat)]
    q = torch.cat([flat.T, rest], dim=1)  # orthonormal columns, the given ones first
    values = torch.tensor([*variances, 0.5, 1.0], dtype=torch.float64)[:4]
    gram = q @ torch.diag(values) @ q.T
    return lg.SymmetryReport(gram, 1, algebras.gl(2))


@pytest.mark.parametrize("angle", [0.0, 0.4, torch.pi / 3, torch.pi / 2])
def test_closure_known_answer(angle):
    """V1 = E12 and V2 = cos(a) E21 + sin(a) H / sqrt(2), H = E11 - E22: [V1, V2] = cos(a) H -
    sqrt(2) sin(a) E12, whose part off span(V1, V2) has norm sqrt(2) cos(a)^2, against the
    commutator's sqrt(2): closure = cos(a)^2. At a = 0 the pair e, f of sl(2) (not closed: 1),
    at pi/2 the Borel algebra span(E12, H) (closed: 0)."""
    e12 = torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    e21 = e12.T
    h = torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64)) / 2**0.5
    a = torch.tensor(angle, dtype=torch.float64)
    rep = _report_with_most_symmetric([e12, torch.cos(a) * e21 + torch.sin(a) * h])
    assert rep.symmetry_dim == 2
    want = float(torch.cos(a) ** 2)
    assert rep.closure() == pytest.approx(want, abs=1e-10)
    assert rep.closure(2) == pytest.approx(want, abs=1e-10)
    assert rep.closure(1) == 0.0  # one generator always spans an algebra
