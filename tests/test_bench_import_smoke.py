"""The import-time benchmark runs; its numbers live in docs/performance.md, not here."""

import json

from tests.conftest import ROOT


def test_bench_import_one_round(tmp_path, run_script):
    out = tmp_path / "import.json"
    proc = run_script(
        "-m",
        "benchmarks.bench_import",
        "--rounds",
        "1",
        "--json",
        str(out),
        env={"PYTHONPATH": str(ROOT)},
    )
    assert "| ratio |" in proc.stdout
    result = json.loads(out.read_text())
    (only,) = result["rounds"]
    assert only["torch_s"] > 0 and only["ratio"] > 0  # one noisy round: no bound
    # the heavy dependencies load on first use, not with the package
    assert result["heavy"] == []
