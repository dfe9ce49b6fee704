"""Smoke test of examples/hamiltonian_flow.py --quick: it trains, prints the table, logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .test_examples import tensorboard_tags

pytestmark = pytest.mark.slow


def test_hamiltonian_flow_example_quick(tmp_path: Path, run_script) -> None:
    logdir, out_json = tmp_path / "runs", tmp_path / "out.json"
    proc = run_script(
        "examples/hamiltonian_flow.py",
        "--quick",
        "--logdir",
        str(logdir),
        "--json",
        str(out_json),
        cwd=tmp_path,
    )
    out = proc.stdout
    assert "most symmetric field" in out and f"tensorboard --logdir {logdir}" in out, out
    result = json.loads(out_json.read_text())
    rows = result["rows"]
    assert [r["epochs"] for r in rows] == [0, 1, 2, 3]  # the untrained network, then 3 epochs
    assert all(0.0 <= r["distance"] <= 1.0 and "∂" in r["field"] for r in rows)
    assert all(r["field"] in out for r in rows)
    # The gap is printed as a ratio (as in the demos and LayerwiseReport); the JSON keeps decades.
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if "most symmetric field" in line) + 1
    assert lines[first - 1].split()[:4] == ["epochs", "rel.", "var", "gap"], lines[first - 1]
    for line, row in zip(lines[first : first + len(rows)], rows, strict=True):
        printed = line.split()
        assert printed[0] == str(row["epochs"]) and line.endswith(row["field"]), (line, row)
        assert printed[2] == f"x{10.0 ** row['gap_decades']:.3g}", (printed, row["gap_decades"])
    tags = tensorboard_tags(Path(result["log_dir"]))
    for tag in ("liegg/symmetry_bias", "liegg/relative_variance", "train_mse"):
        assert tag in tags["scalars"], tags["scalars"]
