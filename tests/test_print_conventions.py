"""One convention in everything printed: epochs, gap unit, the summary's reasons, closure."""

import math

import torch

import lightning_liegg as lg
from lightning_liegg._engine import AnalysisSettings
from lightning_liegg.history import Evaluation, summary_table

F64 = torch.float64


def record(relative_spectrum, dim, epoch=3, bias=None):
    scalars = {"symmetry_dim": float(dim), "relative_variance": relative_spectrum[0]}
    if bias is not None:
        scalars["symmetry_bias"] = bias
    return Evaluation(
        step=40, epoch=epoch, stage="fit", num_samples=8, seconds=0.1, scalars=scalars,
        relative_spectrum=list(relative_spectrum),
    )  # fmt: skip


def no_symmetry_report():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Tanh()).to(F64)
    return lg.liegg(model, torch.randn(64, 3, dtype=F64), lg.VectorAction(dim=3))


def test_summary_epoch_is_the_records_current_epoch():
    assert "step 40, epoch 3 (fit)" in summary_table([record([0.1, 1.0], 0)], 1, {})


def test_summary_says_why_symmetry_dim_is_zero():
    flat = summary_table([record([0.2, 0.5, 1.0], 0)], 1, {})
    assert "symmetry dim    0 (no gap: largest x2.5 < x10)" in flat
    high = summary_table([record([0.05, 0.06, 1.0], 0)], 1, {})
    assert "symmetry dim    0 (gap x16.7 above the tolerance 0.03)" in high
    found = summary_table([record([1e-4, 0.5, 1.0], 1)], 1, {})
    assert "symmetry dim    1\n" in found  # a symmetry needs no reason


def test_summary_names_the_reference():
    table = summary_table([record([1e-4, 1.0], 1, bias=0.0234)], 1, {}, reference="rotation2d")
    assert "symmetry bias   0.0234 (vs rotation2d)" in table
    named = AnalysisSettings.build(lg.ImageAction(), reference="rotation2d")
    assert named.reference_label == "rotation2d"
    # a tensor reference is named by its dimension
    basis = torch.tensor([[[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]], dtype=F64)
    tensor = AnalysisSettings.build(lg.VectorAction(dim=3), reference=basis)
    assert tensor.reference_label == "a 1-dimensional reference of 3x3 generators"
    assert AnalysisSettings.build(lg.ImageAction()).reference_label is None


def test_closure_is_nan_without_symmetry():
    rep = no_symmetry_report()
    assert rep.symmetry_dim == 0, rep.relative_spectrum
    assert math.isnan(rep.closure()) and math.isnan(rep.to_dict()["closure"])
    assert math.isnan(rep.closure(0)) and rep.closure(1) == 0.0


def test_layer_table_prints_the_gap_as_a_ratio():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Tanh()).to(F64)
    rep = lg.liegg(model, torch.randn(64, 3, dtype=F64), lg.VectorAction(dim=3), layers=["0"])
    lines = rep.to_table().splitlines()
    column = lines[0].split().index("gap")
    for line, (name, layer) in zip(lines[1:], rep.items(), strict=True):
        assert line.split()[column] == f"x{10**layer.gap:.3g}", name
