import pytest
import torch

import lightning_liegg as lg
from lightning_liegg import algebras

ETA = torch.diag(torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=torch.float64))

CASES = {
    "so2": (algebras.so(2), (1, 2, 2)),
    "so3": (algebras.so(3), (3, 3, 3)),
    "so5": (algebras.so(5), (10, 5, 5)),
    "lorentz": (algebras.lorentz(), (6, 4, 4)),
    "rotation2d": (algebras.rotation2d(), (1, 2, 2)),
    "rotation2d_affine": (algebras.rotation2d(affine=True), (1, 2, 3)),
    "scaling2d": (algebras.scaling2d(), (1, 2, 2)),
    "scaling2d_affine": (algebras.scaling2d(affine=True), (1, 2, 3)),
    "translation2d": (algebras.translation2d(), (2, 2, 3)),
    "gl3": (algebras.gl(3), (9, 3, 3)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_shape_dtype_orthonormal(name):
    basis, shape = CASES[name]
    assert basis.shape == shape and basis.dtype == torch.float64
    flat = basis.flatten(1)
    assert torch.allclose(flat @ flat.T, torch.eye(shape[0], dtype=torch.float64), atol=1e-14)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_so_is_antisymmetric_and_complete(n):
    b = algebras.so(n)
    assert torch.equal(b, -b.transpose(1, 2))
    assert b.shape[0] == n * (n - 1) // 2


def test_lorentz_preserves_metric():
    for h in algebras.lorentz():
        assert torch.allclose(
            h.T @ ETA + ETA @ h, torch.zeros(4, 4, dtype=torch.float64), atol=1e-15
        )
    # three symmetric boosts and three antisymmetric rotations
    sym = [bool(torch.allclose(h, h.T)) for h in algebras.lorentz()]
    assert sum(sym) == 3


def test_rotation2d_generates_rotation():
    r = torch.linalg.matrix_exp(algebras.rotation2d()[0] * (torch.pi / 2) * 2**0.5)
    assert torch.allclose(
        r, torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64), atol=1e-14
    )


@pytest.mark.parametrize("bad", [0, 1.5, True, "3"])
def test_bad_n(bad):
    with pytest.raises(lg.LieGGError, match="Expected so\\(n\\)"):
        algebras.so(bad)
