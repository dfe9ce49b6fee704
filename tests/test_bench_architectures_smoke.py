"""Smoke test of ``benchmarks/bench_architectures.py --fast``: it runs end to end.

No timing assertions: tiny sizes measure nothing; the realistic-size numbers come from
``make bench`` and are quoted in docs/performance.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_architectures.py"

pytestmark = pytest.mark.slow


def test_architectures_benchmark_fast_runs_and_prints_the_tables(tmp_path: Path) -> None:
    out_json = tmp_path / "bench.json"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{SCRIPT.stem}", "--fast", "--json", str(out_json)],
        cwd=ROOT,  # python -m benchmarks.<name> from the repository root
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    out = proc.stdout
    assert "| model | method | median s | x floor | x train step |" in out, out
    assert "share" in out and "Scheduling:" in out, out

    data = json.loads(out_json.read_text())
    results = data["results"]
    assert [r["callback"]["model"] for r in results] == ["resnet", "vit"]
    for res in results:
        methods = {r["method"]: r for r in res["rows"]}
        assert {"floor (fwd+bwd)", "train step", "liegg none", "liegg sum"} <= set(methods)
        assert all(r["median_s"] > 0 and r["x_floor"] > 0 for r in res["rows"])
        assert methods["floor (fwd+bwd)"]["peak_rss_delta_mb"] is not None
        assert methods["liegg none"]["result"] in ("PASS", "FAIL")
        assert 0 < res["callback"]["share"] < 1
