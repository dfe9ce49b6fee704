"""Smoke test of examples/equivariant_vectors.py: both runs train with an output action, print
the table and log to TensorBoard (the numbers of this tiny run mean nothing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .test_examples import tensorboard_tags

pytestmark = pytest.mark.slow


def test_equivariant_vectors_example_fast(tmp_path: Path, run_script) -> None:
    logdir, out_json = tmp_path / "runs", tmp_path / "out.json"
    proc = run_script(
        "examples/equivariant_vectors.py",
        "--fast",
        "--logdir",
        str(logdir),
        "--json",
        str(out_json),
    )
    out = proc.stdout
    assert "[equivariant] y = diag(1.0, 1.0, 1.0)" in out and "[stretched]" in out, out
    assert out.count("relative variance of rotations about:") == 2, out
    assert "error of a 90-degree turn about x" in out and f"--logdir {logdir}" in out
    results = json.loads(out_json.read_text())
    assert [r["task"] for r in results["runs"]] == ["equivariant", "stretched"]
    for r in results["runs"]:
        assert len(r["rows"]) == 2  # the untrained network, then one epoch
        for row in r["rows"]:
            assert set(row["rotation_variance"]) == {"x", "y", "z"}
            assert all(0 < v <= 1 + 1e-9 for v in row["rotation_variance"].values())
            assert 0 <= row["subspace_distance"] <= 2.73
        assert all(0 <= e < 10 for e in r["equivariance_error"].values())
        tags = tensorboard_tags(Path(r["log_dir"]))
        for tag in ("liegg/symmetry_variance", "liegg/subspace_distance", "val_rel_mse"):
            assert tag in tags["scalars"], tags["scalars"]
        assert "liegg/generators" in tags["images"], tags["images"]
