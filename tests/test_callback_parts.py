"""The callback's parts without a Trainer: sample cache, triggers, figure budget, history
records, one name per concept."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import lightning_liegg as lg
from lightning_liegg._media import FigurePayload, Figures
from lightning_liegg._samples import SampleCache, default_input_fn
from lightning_liegg.history import Evaluation, history_to_csv, history_to_json

ACTION = lg.ImageAction()


# -- sample cache -------------------------------------------------------------------------------
def test_sample_cache_takes_the_first_samples_of_a_loader_and_leaves_the_rng_alone():
    data = TensorDataset(torch.arange(40.0).reshape(10, 4), torch.zeros(10))
    loader = DataLoader(data, batch_size=3, shuffle=True)
    cache = SampleCache(num_samples=7)
    before = torch.get_rng_state()
    samples = cache.collect(loader)
    assert torch.equal(torch.get_rng_state(), before)
    assert samples.shape == (7, 4) and cache.samples is samples
    assert len({tuple(row.tolist()) for row in samples}) == 7  # distinct rows of the data


def test_sample_cache_reads_dict_batches_and_custom_input_fns():
    batches = [{"label": torch.zeros(2), "image": torch.ones(2, 1, 3, 3)}] * 3
    assert SampleCache(5).collect(batches).shape == (5, 1, 3, 3)
    cache = SampleCache(4, input_fn=lambda b: b["label"])
    assert cache.collect(batches).shape == (4,)
    assert SampleCache(4).collect([]) is None and SampleCache(4).collect(None) is None


def test_sample_cache_errors():
    with pytest.raises(lg.LieGGError, match="input_fn to return a tensor"):
        SampleCache(2, input_fn=lambda b: b.tolist()).collect([torch.ones(2, 2)])
    with pytest.raises(lg.LieGGError, match="num_samples to be a positive integer"):
        SampleCache(0)
    with pytest.raises(lg.LieGGError, match="Pass input_fn"):
        default_input_fn({"label": 3})


# -- triggers -----------------------------------------------------------------------------------
def test_epoch_and_step_triggers():
    every_2 = lg.LieGGCallback(ACTION, every_n_epochs=2)
    assert [e for e in range(6) if every_2._epoch_due(e)] == [1, 3, 5]
    assert not any(every_2._step_due(s) for s in range(10))
    default = lg.LieGGCallback(ACTION)
    assert all(default._epoch_due(e) for e in range(3))
    steps = lg.LieGGCallback(ACTION, every_n_train_steps=4)
    assert [s for s in range(13) if steps._step_due(s)] == [4, 8, 12]
    assert not any(steps._epoch_due(e) for e in range(4))


# -- figure budget ------------------------------------------------------------------------------
def _payload() -> FigurePayload:
    rep = lg.liegg(
        lambda x: x.flatten(1)[:, :3].sin(), torch.rand(8, 1, 8, 8, dtype=torch.float64), ACTION
    )
    record = Evaluation.from_report(rep, 0, 0, "fit", 0.1, 2)
    return FigurePayload.build(rep, [record], ACTION, torch.rand(8, 1, 8, 8), 2, 2)


def test_budget_defers_until_finish_and_builds_payloads_only_when_drawn():
    built = []

    def build():
        built.append(1)
        return _payload()

    figures = Figures(budget=0.05)
    figures.start(fit=True, warm_up=False)
    assert figures.offer(0, build) is True and built == [1]  # the first one, whatever the budget
    assert figures.offer(3, build) is False  # no time spent training yet: held back
    assert figures.offer(5, build) is False and built == [1]  # only the last one is kept
    figures.finish()
    assert [step for step, _ in figures.collect(wait=True)] == [0, 5]
    assert built == [1, 1]
    figures.close()


def test_budget_draws_the_first_the_middle_and_the_last_evaluation():
    figures = Figures(budget=1e-9)
    figures.start(fit=True, warm_up=False, total_steps=100)
    drawn = [step for step in range(0, 101, 10) if figures.offer(step, _payload)]
    figures.finish()
    assert drawn == [0, 50]
    assert [step for step, _ in figures.collect(wait=True)] == [0, 50, 100]
    figures.start(fit=True, warm_up=False, total_steps=float("inf"))  # unknown length
    drawn = [step for step in range(0, 101, 10) if figures.offer(step, _payload)]
    assert drawn == [0]
    figures.close()


def test_budget_allows_figures_when_training_took_long_enough_and_none_means_always():
    figures = Figures(budget=0.5)
    figures.start(fit=True, warm_up=False)
    figures._fit_start -= 100.0  # 100 s of training so far: 2 s of drawing fit in 50 s
    assert figures.offer(3, _payload)
    unlimited = Figures(budget=None)
    assert unlimited.offer(1, _payload) and unlimited.offer(2, _payload)
    assert [s for s, _ in unlimited.collect(wait=True)] == [1, 2]


# -- history records ----------------------------------------------------------------------------
def _record(step: int = 3) -> Evaluation:
    rep = lg.liegg(
        lambda x: x.flatten(1)[:, :3].sin(),
        torch.rand(8, 1, 8, 8, dtype=torch.float64),
        ACTION,
        reference="rotation2d",
    )
    return Evaluation.from_report(rep, step, 1, "fit", 0.25, 2)


def test_record_round_trips_through_plain_json_and_reads_old_entries():
    record = _record()
    data = record.to_dict()
    assert Evaluation.from_dict(json.loads(json.dumps(data))) == record
    assert record.step == 3 and not hasattr(record, "get")  # attributes, one way to read them
    with pytest.raises(TypeError):
        record["step"]
    old = {  # an entry as the list-of-dicts history wrote it
        "step": 6,
        "epoch": 0,
        "stage": "fit",
        "num_samples": 16,
        "seconds": 0.5,
        "scalars": {"symmetry_variance": 0.1},
        "spectrum": [0.1, 0.2],
        "relative_spectrum": [0.5, 1.0],
        "generators": [[[0.0, 1.0], [-1.0, 0.0]]],
        "bias": None,
        "written_by_a_newer_version": 1,
    }
    assert Evaluation.from_dict(old).to_dict() == {
        k: v for k, v in old.items() if k != "written_by_a_newer_version"
    }


def test_generator_drift_against_the_previous_record():
    first = _record(0)
    rep = lg.liegg(lambda x: x.flatten(1)[:, :3].sin(), torch.rand(8, 1, 8, 8).double(), ACTION)
    second = Evaluation.from_report(rep, 4, 1, "fit", 0.1, 2, previous=first)
    assert 0 <= second.scalars["generator_drift"] <= np.pi / 2 + 1e-12
    assert "generator_drift" not in first.scalars


@pytest.mark.parametrize("theta", [0.0, 0.3, 1.2, 2.0])
def test_generator_drift_known_angle(theta):
    """The most symmetric generator turns from E12 to cos(t) E12 + sin(t) E21 between two
    evaluations: the drift is the angle t between the two lines (pi - t beyond pi/2, since a
    generator's sign is arbitrary)."""
    e12 = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    e21 = torch.tensor([0.0, 0.0, 1.0, 0.0], dtype=torch.float64)

    def report(v):
        rest = torch.linalg.svd(torch.eye(4, dtype=torch.float64) - torch.outer(v, v)).U[:, :3]
        q = torch.cat([v[:, None], rest], dim=1)
        gram = q @ torch.diag(torch.tensor([1e-8, 0.3, 0.6, 1.0], dtype=torch.float64)) @ q.T
        return lg.SymmetryReport(gram, 1, lg.algebras.gl(2))

    first = Evaluation.from_report(report(e12), 0, 0, "fit", 0.1, 2)
    turned = float(np.cos(theta)) * e12 + float(np.sin(theta)) * e21
    second = Evaluation.from_report(report(turned), 4, 1, "fit", 0.1, 2, previous=first)
    want = min(theta, np.pi - theta)
    assert second.scalars["generator_drift"] == pytest.approx(want, abs=1e-7)


def test_history_export(tmp_path):
    records = [_record(0), _record(5)]
    history_to_json(records, tmp_path / "h.json")
    assert [Evaluation.from_dict(d) for d in json.loads((tmp_path / "h.json").read_text())] == (
        records
    )
    history_to_csv(records, tmp_path / "h.csv")
    rows = list(csv.DictReader(open(tmp_path / "h.csv")))
    assert [int(r["step"]) for r in rows] == [0, 5]
    assert float(rows[1]["symmetry_bias"]) == pytest.approx(records[1].scalars["symmetry_bias"])


# -- one name per concept (the aliases of never-released names are gone) ------------------------
@pytest.mark.parametrize("old", ["batch_size", "on_train_start", "mode"])
def test_callback_has_no_old_argument_names(old):
    with pytest.raises(TypeError, match=old):
        lg.LieGGCallback(ACTION, **{old: 8})


def test_metric_and_datasets_have_no_old_names():
    with pytest.raises(ValueError, match="mode"):  # torchmetrics: unexpected keyword
        lg.LieGG(lg.VectorAction(dim=3), mode="reverse")
    assert not hasattr(lg.LieGG(lg.VectorAction(dim=3)), "mode")
    assert not hasattr(lg.datasets, "lorentz_target")
    assert lg.Evaluation is Evaluation and "Evaluation" in lg.__all__
    assert "toys" not in lg.__all__
