"""Smoke test of examples/discrete_digits.py: trains, prints the discrete errors, logs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .test_examples import tensorboard_tags

pytestmark = pytest.mark.slow


def test_discrete_digits_quick(tmp_path: Path, run_script) -> None:
    logdir, out_json = tmp_path / "runs", tmp_path / "out.json"
    proc = run_script(
        "examples/discrete_digits.py", "--quick", "--logdir", str(logdir), "--json", str(out_json)
    )
    assert "hflip     vflip     rot90  rotate10" in proc.stdout, proc.stdout
    result = json.loads(out_json.read_text())
    assert [r["step"] for r in result["rows"]][0] == 0 and len(result["rows"]) == 2
    for row in result["rows"]:
        assert all(row[n] > 0 for n in ("hflip", "vflip", "rot90", "rotate10")), row
    tags = tensorboard_tags(Path(result["log_dir"]))
    for name in ("hflip", "rotate10"):
        assert f"liegg/discrete/{name}" in tags["scalars"]
        assert f"liegg/per_sample/discrete/{name}" in tags["histograms"]
    assert "liegg/worst_samples" in tags["images"]
