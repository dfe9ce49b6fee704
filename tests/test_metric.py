"""One analysis path: liegg(), the LieGG metric and the callback agree (float64, 1e-10), on one
process and on two (real DDP: ddp_spawn / torch.multiprocessing, gloo, CPU); a failed update
on one rank of the metric raises on every rank instead of hanging the others."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from pytorch_lightning import Callback

import lightning_liegg as lg

from .conftest import rel_err
from .integration.helpers import trainer
from .integration.models import TinyDataModule, TinyImageModel

ACTION = lg.ImageAction()


class CompareThree(Callback):
    """After the LieGGCallback's evaluation (same hook, later in the list), run the metric on
    this rank's samples and liegg() on every rank's samples; rank zero saves the three."""

    def __init__(self, liegg_cb: lg.LieGGCallback, out: Path) -> None:
        self.liegg_cb, self.out = liegg_cb, out

    def on_validation_end(self, trainer, pl_module) -> None:
        samples = self.liegg_cb.samples.to(torch.float64)
        metric = lg.LieGG(ACTION, reference="rotation2d")
        metric.update(pl_module, samples)
        from_metric = metric.compute()  # synced across ranks
        everything = samples
        if trainer.world_size > 1:
            parts = [torch.empty_like(samples) for _ in range(trainer.world_size)]
            dist.all_gather(parts, samples)
            everything = torch.cat(parts)
        from_liegg = lg.liegg(pl_module, everything, ACTION, reference="rotation2d")
        if trainer.is_global_zero:
            reports = {
                "callback": self.liegg_cb.last_report,
                "metric": from_metric,
                "liegg": from_liegg,
            }
            torch.save(
                {
                    name: (r.gram, r.spectrum, r.num_samples, r.subspace_distance())
                    for name, r in reports.items()
                },
                self.out,
            )


@pytest.mark.slow
@pytest.mark.parametrize("devices", [1, 2], ids=["1-process", "2-processes"])
def test_liegg_metric_and_callback_agree(tmp_path, devices):
    torch.manual_seed(5)
    out = tmp_path / "reports.pt"
    cb = lg.LieGGCallback(ACTION, reference="rotation2d", num_samples=48, log_images=False)
    options = dict(logger=False, callbacks=[cb, CompareThree(cb, out)], precision="64-true")
    if devices == 2:
        options.update(strategy="ddp_spawn", devices=2)
    t = trainer(tmp_path, enable_checkpointing=False, **options)
    t.validate(TinyImageModel(), TinyDataModule(), verbose=False)
    results = torch.load(out)
    gram, spectrum, n, distance = results["liegg"]
    assert n == 48  # every rank's samples, all of them
    for name in ("callback", "metric"):
        g, s, count, d = results[name]
        assert count == n, name
        assert rel_err(g, gram) < 1e-10, name
        assert rel_err(s, spectrum) < 1e-10, name
        assert d == pytest.approx(distance, rel=1e-10, abs=1e-12), name


def _broken_on_rank_one(x: torch.Tensor) -> torch.Tensor:
    if dist.get_rank() == 1:
        raise RuntimeError("this rank's model is broken")
    return x.flatten(1)[:, :3].sin()


def _metric_worker(rank: int, init_file: str, results: str) -> None:
    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=2,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        metric = lg.LieGG(ACTION)
        metric.update(_broken_on_rank_one, torch.rand(4, 1, 8, 8, dtype=torch.float64))
        try:
            metric.compute()
            outcome = "no error"
        except lg.LieGGError as err:
            outcome = str(err)
        Path(results, f"rank{rank}.txt").write_text(outcome)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_metric_failure_on_one_rank_raises_on_every_rank(tmp_path):
    mp.spawn(_metric_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = ((tmp_path / f"rank{r}.txt").read_text() for r in (0, 1))
    assert "1 failed" in rank0 and "another process" in rank0
    assert "1 failed" in rank1 and "this rank's model is broken" in rank1


def test_metric_update_raises_at_once_on_one_process():
    metric = lg.LieGG(ACTION)
    with pytest.raises(lg.LieGGError, match="Expected images of shape"):
        metric.update(lambda x: x, torch.rand(4, 64, dtype=torch.float64))


def test_liegg_equals_update_then_compute_in_chunks():
    from lightning_liegg.functional.analysis import _compute

    from .functional.engine import gram as _gram

    x = torch.rand(10, 1, 8, 8, dtype=torch.float64)

    def model(x):
        return x.flatten(1)[:, :5].cos()

    gram, n = _gram(model, x, ACTION, chunk_size=3)
    assert n == 10
    whole = lg.liegg(model, x, ACTION)
    assert rel_err(gram, whole.gram) < 1e-12
    assert rel_err(_compute(gram, n, ACTION).spectrum, whole.spectrum) < 1e-12
