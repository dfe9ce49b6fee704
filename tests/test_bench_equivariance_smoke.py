"""Smoke test of ``benchmarks/bench_equivariance.py --fast``: it runs and prints its table.

No timing assertions (the tiny sizes of ``--fast`` measure nothing; speed lives in the
benchmark itself).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_equivariance.py"

pytestmark = pytest.mark.slow


def test_equivariance_benchmark_fast_runs(tmp_path: Path) -> None:
    out_json = tmp_path / "equiv.json"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            f"benchmarks.{SCRIPT.stem}",
            "--fast",
            "--repeats",
            "2",
            "--json",
            str(out_json),
        ],
        cwd=ROOT,  # python -m benchmarks.<name> from the repository root
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr}"
    assert "| workload | passes | method | median ms | x floor | x invariance |" in proc.stdout
    rows = json.loads(out_json.read_text())["speed"]
    assert len(rows) == 9 and {r["method"] for r in rows} == {
        "floor (fwd+bwd)",
        "invariance",
        "equivariance",
    }
    assert all(r["median_ms"] > 0 and r["x_floor"] > 0 for r in rows)
    equi = [r for r in rows if r["method"] == "equivariance"]
    assert all(r["result"] == "skip (--fast)" for r in equi)
