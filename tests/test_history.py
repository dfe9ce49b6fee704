"""Evaluation records: equality with NaN (closure without a symmetry)."""

from __future__ import annotations

import json

from lightning_liegg.history import Evaluation


def test_records_with_nan_compare_equal_after_a_round_trip() -> None:
    """closure is NaN without a symmetry: a record read back equals the one written."""
    rec = Evaluation(0, 0, "fit", 8, 0.1, scalars={"closure": float("nan"), "symmetry_dim": 0.0})
    back = Evaluation(**json.loads(json.dumps(rec.__dict__)))
    assert back is not rec and back.scalars["closure"] is not rec.scalars["closure"]
    assert back == rec and not back != rec
    other = Evaluation(0, 0, "fit", 8, 0.1, scalars={"closure": 0.0, "symmetry_dim": 0.0})
    assert other != rec
    assert rec != "not a record"
