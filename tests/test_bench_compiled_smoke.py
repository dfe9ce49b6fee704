"""Smoke test of ``python -m benchmarks.bench_compiled --fast``: it runs, prints its tables.

No timing assertion (``--fast`` sizes measure nothing; the verdict reads "n/a").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def test_bench_compiled_fast_runs(tmp_path: Path, run_script) -> None:
    out_json = tmp_path / "bench.json"
    proc = run_script(
        "-m",
        "benchmarks.bench_compiled",
        "--fast",
        "--json",
        str(out_json),
        env={"PYTHONPATH": str(ROOT)},
    )
    assert "| method | median ms | x floor | compile s | target | result |" in proc.stdout
    rows = json.loads(out_json.read_text())["rows"]
    methods = [r["method"] for r in rows]
    assert methods[:5] == ["floor", "none eager", "none compiled", "sum eager", "sum compiled"]
    assert rows[2]["compile_s"] > 0 and rows[4]["compile_s"] > 0
    assert rows[2]["result"] == "n/a (--fast)"
    assert rows[-1]["method"] == "3 evaluations, compiled" and rows[-1]["total_s"] > 0
