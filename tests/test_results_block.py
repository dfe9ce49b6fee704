"""The demo's numbers in docs/results.md are the demo's output (``make results`` wrote them).

The stored block parses back into the numbers it shows, and a fresh run of the demo's rotated
half (same seed, same configuration: the runs do not depend on each other) reproduces them
within scripts/results_block.py's tolerance (relative 0.02, absolute 0.004). The upright
control is compared by ``make results-check``, which runs the whole demo.
"""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import results_block  # noqa: E402


def test_block_is_rendered_and_parses():
    stored = results_block.parse(results_block.stored_block())
    assert set(stored) == {"rotated", "upright"}
    for numbers in stored.values():
        assert {key for _, key, _ in results_block.ROWS} == set(numbers)
    assert stored["rotated"]["symmetry_dim"] >= 1  # the demo's point, as measured


def test_parse_inverts_render():
    run = {
        "epoch": 5,  # trainer.current_epoch of the last evaluation, from 0
        "epochs_done": 6,
        "val_acc": 0.8964,
        "relative_variance": 0.014312,
        "gap": 48.14,
        "symmetry_dim": 1,
        "rotation_bias": 0.02041,
        "rotation_relative_variance": 0.0147,
        "top_generator": [[0.01, 0.7], [-0.71, 0.01]],
        "train_seconds": 50.0,
    }
    summary = {"args": {"seed": 0}, "runs": {"rotated": run}}
    block = results_block.render(summary, "today", "here")
    assert "| after 6 epochs |" in block  # epochs trained, not the 0-based last epoch
    parsed = results_block.parse(block)
    assert parsed["rotated"]["gap"] == 48.1
    assert results_block.mismatches(parsed, summary) == []
    drifted = {**summary, "runs": {"rotated": {**run, "rotation_bias": 0.03}}}
    (problem,) = results_block.mismatches(parsed, drifted)
    assert "rotation_bias" in problem


@pytest.mark.slow
def test_fresh_demo_run_reproduces_the_block(demo_rotated_run):
    fresh, _ = demo_rotated_run  # examples/rotated_digits.py --no-control, at its defaults
    stored = results_block.parse(results_block.stored_block())
    assert results_block.mismatches({"rotated": stored["rotated"]}, fresh) == []
