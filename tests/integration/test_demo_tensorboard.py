"""The demo at its default figure settings logs images at every evaluation (read back).

The demo's rotated half at its defaults (a 4 x 256 MLP, 24 rotated copies per digit, 512
samples, 6 epochs; the session's one run, shared with the results-block check): a set of
figures costs a few hundredths of a second (drawn, encoded and written), so the default budget
(5% of training time) holds none back and the images slider moves.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

IMAGES = ("generators", "spectrum", "bias", "evolution", "filmstrip")


def test_demo_logs_figures_at_every_evaluation(demo_rotated_run) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    summary, log_dir = demo_rotated_run  # the demo's rotated half at its defaults
    acc = EventAccumulator(str(log_dir), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    steps = [e.step for e in acc.Scalars("liegg/symmetry_variance")]
    assert len(steps) == summary["runs"]["rotated"]["epochs_done"] + 1  # step 0, every epoch
    for name in IMAGES:
        events = acc.Images(f"liegg/{name}")
        assert [e.step for e in events] == steps, name
        # readable in a default card: no thin strip
        assert min(e.width for e in events) >= 250 and min(e.height for e in events) >= 200
    generators = acc.Images("liegg/generators")[-1]
    # near 16:9 (TensorBoard's Time Series image card is about 380 x 215 px), not a thin row
    assert 0.45 <= generators.height / generators.width <= 0.8
