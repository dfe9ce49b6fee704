"""Smoke tests: the paper-reproduction examples run end to end with ``--fast``.

Each runs in a subprocess (as a user would run it), writes into ``tmp_path`` and must print
its tables and write its JSON (and, for the study, its figure). The numbers of a ``--fast``
run mean nothing; only the exact answer on the true O(5) target is checked, since it does
not depend on training.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

pytestmark = pytest.mark.slow


def test_o5_regression_fast(tmp_path: Path, run_script) -> None:
    logdir, out_json = tmp_path / "logs", tmp_path / "o5.json"
    proc = run_script(
        "examples/o5_regression.py",
        "--fast",
        "--logdir",
        str(logdir),
        "--json",
        str(out_json),
        cwd=tmp_path,
    )
    out = proc.stdout
    expected = (
        "test MSE",
        "symmetry variance, reduction 'sum'",
        "symmetry variance, reduction 'none'",
        "subspace distance to so(5), k=10",
        "symmetry_dim",
        "Relative spectrum",
        "Exact answer",
    )
    for line in expected:
        assert line in out, f"missing {line!r} in the output:\n{out}"
    spectrum_rows = re.findall(r"^\s+\d+\s+\S+e[-+]\d+\s+\S+e[-+]\d+\s+\d\.\d{4}", out, flags=re.M)
    assert len(spectrum_rows) == 25, f"expected 25 rows of relative spectrum:\n{out}"
    # every row but the last ends with its gap to the next, printed as a ratio (x266)
    ratio = r"^\s+\d+\s+\S+e[-+]\d+\s+\S+e[-+]\d+\s+\d\.\d{4}\s+x\d[\d.]*(e[-+]\d+)?$"
    assert len(re.findall(ratio, out, flags=re.M)) == 24, f"expected 24 gap ratios:\n{out}"

    results = json.loads(out_json.read_text())
    assert len(results["relative_spectrum"]) == 25
    assert results["ours"]["symmetry_variance_sum"] == pytest.approx(
        results["ours"]["symmetry_variance_none"], rel=1e-6
    )
    exact = results["exact"]
    assert exact["symmetry_dim"] == 10
    assert exact["max_relative_variance_top10"] < 1e-10
    assert exact["subspace_distance_k10"] < 1e-6
    assert results["history"], "the callback recorded no evaluation"
    assert list(logdir.rglob("events.out.tfevents.*")), "no TensorBoard event file"


def test_depth_vs_width_fast(tmp_path: Path, run_script) -> None:
    out_dir, out_json = tmp_path / "study", tmp_path / "study.json"
    proc = run_script(
        "examples/depth_vs_width.py",
        "--fast",
        "--out",
        str(out_dir),
        "--json",
        str(out_json),
        cwd=tmp_path,
    )
    out = proc.stdout
    expected = (
        "config",
        "test accuracy",
        "sym. variance (sum)",
        "rotation bias",
        "Spearman",
        "Findings",
        "overall:",
        "deeper networks",
        "better symmetry goes with better accuracy",
    )
    for line in expected:
        assert line in out, f"missing {line!r} in the output:\n{out}"

    figure = out_dir / "depth_vs_width.png"
    assert figure.is_file() and figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads(out_json.read_text())
    assert results == json.loads((out_dir / "results.json").read_text())
    depths = [c[0] for c in results["configs"]]
    assert len(depths) >= 2 and depths == sorted(depths)
    params = [row["params"] for row in results["summary"]]
    assert max(params) / min(params) < 1.1, "configurations should have similar parameter counts"
    assert len(results["runs"]) == len(depths) * results["args"]["seeds"]
    for run in results["runs"]:
        assert 0.0 <= run["accuracy"] <= 1.0
        assert (
            run["symmetry_variance_sum"] >= 0.0 and 0.0 <= run["symmetry_bias_none"] <= 1.0 + 1e-9
        )
    assert list(out_dir.glob("history_*.csv")), "no LieGGCallback history written"
