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
    assert "| model | threads | num_samples | relative | median ms | x plain step |" in proc.stdout
    rows = json.loads(out.read_text())["rows"]
    assert [(r["model"], r["num_samples"], r["relative"]) for r in rows] == [
        ("mlp 784-128x4-10", 0, None), ("mlp 784-128x4-10", 16, True),
        ("mlp 784-128x4-10", 16, False), ("small cnn", 0, None), ("small cnn", 16, True),
        ("small cnn", 16, False),
    ]  # fmt: skip
    assert all(r["median_ms"] > 0 for r in rows)
