"""The layer-wise LieGG metric under real DDP (two processes, gloo, CPU): every layer's Gram
state is summed across ranks, so the synced report equals liegg() on all ranks' samples."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import lightning_liegg as lg

from .integration.models import TinyImageModel

ACTION = lg.ImageAction()


def _worker(rank: int, init_file: str, out: str, layers: object) -> None:
    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=2,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        torch.manual_seed(0)  # the same model and data on both ranks
        model = TinyImageModel().double()
        x = torch.rand(24, 1, 8, 8, dtype=torch.float64)
        mine = x[rank * 12 : (rank + 1) * 12]
        metric = lg.LieGG(ACTION, reference="rotation2d", layers=layers)
        metric.update(model, mine[:5])
        metric.update(model, mine[5:])
        synced = metric.compute()
        if rank == 0:
            direct = lg.liegg(model, x, ACTION, reference="rotation2d", layers=layers)
            torch.save(
                {
                    name: (synced[name].gram, direct[name].gram, synced[name].num_samples)
                    for name in direct
                }
                | {"order": (list(synced), list(direct))},
                out,
            )
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("layers", [["net.3", "net.1"], "auto"], ids=["names", "auto"])
def test_layerwise_metric_syncs_every_layer(tmp_path: Path, layers: object) -> None:
    out = tmp_path / "grams.pt"
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(out), layers), nprocs=2, join=True)
    results = torch.load(out)
    got_order, want_order = results.pop("order")
    assert got_order == want_order
    for name, (synced, direct, n) in results.items():
        assert n == 24, name
        assert float((synced - direct).norm() / direct.norm()) < 1e-10, name
