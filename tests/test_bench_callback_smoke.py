"""The callback-overhead benchmark runs (tiny sizes); its numbers live in docs/performance.md."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_callback_fast(tmp_path, run_script):
    out = tmp_path / "callback.json"
    proc = run_script(
        "-m",
        "benchmarks.bench_callback",
        "--fast",
        "--json",
        str(out),
        env={"PYTHONPATH": str(ROOT)},
    )
    assert "| with callback (defaults) |" in proc.stdout
    result = json.loads(out.read_text())
    assert set(result["variants"]) == {
        "without",
        "with callback (defaults)",
        "figures every evaluation",
        "figures in a background process",
        "with 2 discrete transforms",
    }
    for name, variant in result["variants"].items():
        assert variant["ratio"] > 0
        evaluations = variant["runs"][0]["evaluations"]
        assert evaluations == (0 if name == "without" else 2)
        if name != "without":  # the first and the last evaluation at least
            assert variant["runs"][0]["figure_sets"] == 2, name
    assert "one set of figures" in proc.stdout
    assert len(result["figure_set_seconds"]) == 21
    assert "the same with layers=" in proc.stdout
    assert "discrete part (hflip, rot90" in proc.stdout
    assert result["discrete_vs_defaults"] > 0 and len(result["discrete_vs_analysis"]) == 11
    assert len(result["figure_set_with_layers_seconds"]) == 21
