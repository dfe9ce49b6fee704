"""Smoke test of examples/time_series.py: both runs train, print the table, log to TensorBoard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .test_examples import tensorboard_tags

pytestmark = pytest.mark.slow


def test_time_series_example_fast(tmp_path: Path, run_script) -> None:
    logdir, out_json = tmp_path / "runs", tmp_path / "out.json"
    proc = run_script(
        "examples/time_series.py",
        "--fast",
        "--logdir",
        str(logdir),
        "--json",
        str(out_json),
        cwd=tmp_path,
    )
    out = proc.stdout
    for title in ("[shift] class = frequency", "[position] class = early/late"):
        assert title in out, out
    assert out.count("var(shift)  var(dilation)") == 2, out
    assert "shift symmetry" in out and f"tensorboard --logdir {logdir}" in out
    results = json.loads(out_json.read_text())
    assert [r["task"] for r in results["runs"]] == ["shift", "position"]
    for r in results["runs"]:
        assert len(r["rows"]) == 2  # the untrained network, then one epoch
        assert all(row["var_shift"] > 0 and 0 <= row["shift_bias"] <= 1 for row in r["rows"])
        tags = tensorboard_tags(Path(r["log_dir"]))
        for tag in ("liegg/symmetry_variance", "liegg/symmetry_bias", "val_acc"):
            assert tag in tags["scalars"], tags["scalars"]
        assert "liegg/generators" in tags["images"], tags["images"]
