import pytest
import torch

import lightning_liegg as lg
from lightning_liegg import algebras
from lightning_liegg.testing import (
    assert_invariant,
    assert_symmetry,
    bordered_images,
    lorentz_invariant,
    o5_invariant,
    shear_invariant,
)


def test_assert_invariant_passes_and_fails():
    x = torch.randn(32, 10, dtype=torch.float64)
    action = lg.VectorAction(5, 2)
    assert_invariant(o5_invariant, x, action, algebras.so(5)[2], t=1.3)
    with pytest.raises(AssertionError, match="largest change"):
        assert_invariant(o5_invariant, x, action, torch.eye(5, dtype=torch.float64), t=0.1)


def test_assert_invariant_images_shear_not_transposed():
    x = bordered_images(8, 16, 20)
    shear = torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    assert_invariant(shear_invariant, x, lg.ImageAction(), shear, t=0.4, atol=1e-10)
    with pytest.raises(AssertionError):
        assert_invariant(shear_invariant, x, lg.ImageAction(), shear.T, t=0.4, atol=1e-10)


def test_assert_symmetry():
    x = torch.randn(64, 8, dtype=torch.float64)
    report = assert_symmetry(lorentz_invariant, x, lg.VectorAction(4, 2), algebras.lorentz())
    assert report.symmetry_dim == 6
    with pytest.raises(AssertionError, match="distance"):
        assert_symmetry(lorentz_invariant, x, lg.VectorAction(4, 2), algebras.so(4))


def test_assert_invariant_restores_mode():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Dropout(0.5)).double().train()
    x = torch.randn(4, 3, dtype=torch.float64)
    with pytest.raises(AssertionError):
        assert_invariant(model, x, lg.VectorAction(3), algebras.so(3)[0], t=1.0)
    assert model.training
