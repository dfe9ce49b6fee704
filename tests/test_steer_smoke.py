"""Smoke tests of the steering study and its cost benchmark.

They run end to end and print their tables (no timing or result assertion: ``--quick`` and
``--fast`` measure nothing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_steer_o5_quick_runs(tmp_path: Path, run_script) -> None:
    out = tmp_path / "o5.json"
    proc = run_script("examples/steer_o5.py", "--quick", "--json", str(out))
    assert "| train samples | weight | test MSE (mean +- sd) |" in proc.stdout, proc.stdout
    rows = json.loads(out.read_text())
    assert [(r["n_train"], r["weight"]) for r in rows] == [(128, 0.0), (128, 10.0)]
    assert all(0.0 <= v <= 1.0 for r in rows for v in r["relative_variance"])


def test_bench_steer_fast_runs(tmp_path: Path, run_script) -> None:
    out = tmp_path / "bench.json"
    proc = run_script(
        "-m", "benchmarks.bench_steer", "--fast", "--json", str(out), env={"PYTHONPATH": str(ROOT)}
    )
    header = "| model | threads | num_samples | relative | engine | median ms | x plain step |"
    assert header in proc.stdout
    rows = json.loads(out.read_text())["rows"]
    variants = [(16, rel, engine) for rel in (True, False) for engine in ("autograd", "functorch")]
    assert [(r["model"], r["num_samples"], r["relative"], r["engine"]) for r in rows] == [
        (model, *v) for model in ("mlp 784-128x4-10", "small cnn")
        for v in [(0, None, None), *variants]
    ]  # fmt: skip
    assert all(r["median_ms"] > 0 for r in rows)


def test_steer_digits_quick_runs(tmp_path: Path, run_script) -> None:
    out = tmp_path / "digits.json"
    proc = run_script("examples/steer_digits.py", "--quick", "--json", str(out))
    assert "| weight | rotation relative variance | val acc |" in proc.stdout, proc.stdout
    rows = json.loads(out.read_text())
    assert [r["weight"] for r in rows] == [0.0, 10.0]
    assert all(0.0 <= v <= 1.0 for r in rows for v in r["relative_variance"] + r["val_acc"])
    proc = run_script("examples/steer_digits.py", "--quick", "--tradeoff")
    assert "| weight | num_samples | every_n_steps |" in proc.stdout, proc.stdout


def test_steer_promote_quick_runs(tmp_path: Path, run_script) -> None:
    out = tmp_path / "promote.json"
    proc = run_script("examples/steer_promote.py", "--quick", "--json", str(out))
    assert "| penalty | weight | gap l2/l1 at end | alignment at end |" in proc.stdout, proc.stdout
    rows = json.loads(out.read_text())
    assert [(r["method"], r["weight"]) for r in rows] == [
        ("none", 0.0), ("smallest", 1.0), ("nuclear", 0.1)
    ]  # fmt: skip
    for r in rows:
        curve = r["runs"][0]["curve"]
        assert [c["step"] for c in curve] == [0, 10, 20]
        assert all(0.0 <= c["alignment"] <= 1.0 + 1e-9 and c["gap"] >= 1.0 for c in curve)
