"""Smoke test of ``benchmarks/bench_layerwise.py --fast``: it runs end to end, prints its table.

No timing assertion: ``--fast`` measures nothing (the verdict reads "n/a"); the cost target is
checked by the benchmark itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_bench_layerwise_fast_runs(tmp_path: Path, run_script) -> None:
    out_json = tmp_path / "bench.json"
    proc = run_script(
        "-m",
        "benchmarks.bench_layerwise",
        "--fast",
        "--json",
        str(out_json),
        env={"PYTHONPATH": str(ROOT)},
    )
    assert "| method | median ms | x output | target | result |" in proc.stdout, proc.stdout
    rows = json.loads(out_json.read_text())["rows"]
    assert [r["method"] for r in rows] == ["output", "5 layers", "5 layers, one pass each"]
    assert rows[0]["x_output"] == 1.0 and all(r["median_ms"] > 0 for r in rows)
    assert rows[1]["result"] == "n/a (--fast)"
