"""symmetry_dim counts small directions below the largest gap, and cannot be fooled by the top."""

from __future__ import annotations

import pytest
import torch

import lightning_liegg as lg
from lightning_liegg.functional.report import SYMMETRY_TOLERANCE

F64 = torch.float64


def report(relative, tolerance=SYMMETRY_TOLERANCE, basis=None):
    values = torch.tensor(relative, dtype=F64)
    if basis is None:
        n = len(relative)
        basis = torch.eye(n, dtype=F64).reshape(n, 1, n)
    return lg.SymmetryReport(torch.diag(values), 1, basis, tolerance=tolerance)


SPECTRA = {
    # the untrained CNN of issue 9: the widest gap sits above directions that are not small
    "gap_at_the_top": ([0.023, 0.044, 0.090, 1.0], 0),
    "exact_one": ([1e-17, 0.2, 0.5, 1.0], 1),
    "exact_three_then_gap": ([0.0, 1e-18, 1e-17, 0.3, 1.0], 3),
    "trained_demo_like": ([0.0146, 0.73, 0.9, 1.0], 1),  # README: 1.46e-2, gap x50
    "control_no_gap": ([0.0543, 0.18, 0.5, 1.0], 0),
    "small_but_no_decade": ([0.01, 0.05, 1.0], 0),
    "two_gaps_widest_small": ([1e-16, 1e-5, 0.01, 1.0], 1),
    "flat": ([0.5, 0.6, 0.8, 1.0], 0),
}


@pytest.mark.parametrize("name", list(SPECTRA))
def test_symmetry_dim(name):
    relative, expected = SPECTRA[name]
    assert report(relative).symmetry_dim == expected


def test_issue_repro_with_image_basis():
    values = torch.tensor([0.023, 0.044, 0.090, 1.0], dtype=F64)
    rep = lg.SymmetryReport(torch.diag(values), 1, lg.ImageAction().basis)
    assert rep.symmetry_dim == 0


def test_tolerance_is_settable():
    relative = [0.05, 0.9, 1.0]  # a gap of 1.25 decades above 0.05
    assert report(relative).symmetry_dim == 0
    assert report(relative, tolerance=0.1).symmetry_dim == 1
    with pytest.raises(lg.LieGGError, match="tolerance"):
        report(relative, tolerance=0.0)
    with pytest.raises(lg.LieGGError, match="tolerance"):
        report(relative, tolerance="small")


@pytest.mark.parametrize("n,expected", [(3, 3), (5, 10)])
def test_exact_invariances_still_count(n, expected):
    x = torch.randn(64, 2 * n, dtype=F64)
    rep = lg.liegg(lambda v: v.reshape(-1, 2, n).norm(dim=2), x, lg.VectorAction(dim=n, channels=2))
    assert rep.symmetry_dim == expected
