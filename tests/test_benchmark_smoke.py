"""Smoke test of ``benchmarks/bench_liegg.py --fast``: it runs end to end and prints its tables.

No timing assertions: the tiny sizes of ``--fast`` measure nothing, and speed lives in the
benchmark itself (``make bench``), not in unit tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_liegg.py"
HEADER = "| workload | method | median ms | x floor | x naive | target | result |"

pytestmark = pytest.mark.slow


def test_benchmark_fast_runs_and_prints_the_tables(tmp_path: Path, run_script) -> None:
    out_json = tmp_path / "bench.json"
    proc = run_script(
        "-m",
        "benchmarks.bench_liegg",
        "--fast",
        "--json",
        str(out_json),
        env={"PYTHONPATH": str(ROOT)},
    )
    out = proc.stdout
    assert HEADER in out, out
    for method in ("floor (fwd+bwd)", "naive none", "liegg sum", "liegg none"):
        assert method in out, f"missing {method!r}:\n{out}"
    assert "peak RSS difference" in out, out

    results = json.loads(out_json.read_text())
    workloads = {r["workload"] for r in results["speed"]}
    assert len(workloads) == 3 and len(results["speed"]) == 15
    assert all(r["median_ms"] > 0 and r["x_floor"] > 0 for r in results["speed"])
    (memory,) = results["memory"]
    assert len(memory["runs"]) == 2 and all(r["peak_rss_mb"] > 0 for r in memory["runs"])
