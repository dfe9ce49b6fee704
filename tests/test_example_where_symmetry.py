"""Smoke test: ``examples/where_symmetry_emerges.py --fast`` trains, prints its per-layer
tables and saves the layer heatmap; the numbers of a tiny run mean nothing, their shapes do."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_where_symmetry_emerges_fast(tmp_path: Path, run_script) -> None:
    out_json, png = tmp_path / "study.json", tmp_path / "heatmap.png"
    proc = run_script(
        "examples/where_symmetry_emerges.py",
        "--fast",
        "--logdir",
        str(tmp_path / "logs"),
        "--json",
        str(out_json),
        "--png",
        str(png),
    )
    out = proc.stdout
    assert "Relative variance of the rotation, per layer" in out, out
    assert "net.0 Flatten" in out and "output" in out, out
    results = json.loads(out_json.read_text())
    # DigitMLP depth 2: Flatten, (Linear, ReLU) x 2, Linear, then the output
    assert results["layers"][0] == "net.0 Flatten" and results["layers"][-1] == "output"
    assert len(results["layers"]) == 7
    rotation = results["rotation_relative_variance"]
    assert len(rotation) == 7 and all(len(row) == len(results["steps"]) == 3 for row in rotation)
    assert all(0 <= v <= 1 for row in rotation for v in row if math.isfinite(v))
    # the raw image does not train: its numbers are the same at every evaluation
    assert rotation[0][0] == pytest.approx(rotation[0][-1], rel=1e-9)
    assert png.stat().st_size > 10_000
    assert list((tmp_path / "logs").rglob("layer_heatmap.png"))
