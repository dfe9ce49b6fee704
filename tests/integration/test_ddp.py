"""Real DDP: two CPU processes (ddp_spawn, gloo). Every rank analyses its own half of the
validation samples; the summed Gram matrix must give the spectrum one process gets on all of
them."""

import pytest
from pytorch_lightning.loggers import TensorBoardLogger

import lightning_liegg as lg

from .helpers import read_events, single_and_ddp, trainer
from .models import TinyDataModule, TinyImageModel

pytestmark = pytest.mark.slow


def _spectrum_at(acc, step, m=4):
    out = []
    for i in range(m):
        (event,) = [e for e in acc.Scalars(f"liegg/spectrum/{i}") if e.step == step]
        out.append(event.value)
    return out


def _variance_at(acc, step):
    return [e.value for e in acc.Scalars("liegg/symmetry_variance") if e.step == step]


@pytest.mark.parametrize("stage", ["fit", "validate"])
def test_ddp_spectrum_matches_single_process(tmp_path, stage):
    results = {}
    for name, kwargs, model in single_and_ddp(TinyImageModel, seed=3):
        logger = TensorBoardLogger(tmp_path / name, name="tb", version=0)
        # 48 validation samples: one process caches all, each of two ranks its 24
        cb = lg.LieGGCallback(
            lg.ImageAction(),
            reference="rotation2d",
            num_samples=48,
            media_budget=None,
            transforms={"hflip": lg.transforms.hflip},  # one more all-reduce on every rank
        )
        options = dict(max_epochs=1, logger=logger, callbacks=[cb], enable_checkpointing=False)
        options.update(kwargs)
        t = trainer(tmp_path / name, **options)
        if stage == "fit":
            t.fit(model, TinyDataModule())
        else:
            t.validate(model, TinyDataModule(), verbose=False)
        results[name] = read_events(logger.log_dir)
    single, ddp = results["single"], results["ddp"]
    assert _spectrum_at(ddp, 0) == pytest.approx(_spectrum_at(single, 0), rel=1e-4)
    assert _variance_at(ddp, 0) == pytest.approx(_variance_at(single, 0), rel=1e-4)
    # the discrete mean is over both ranks' samples: the single process's on all of them
    hflip = [
        [e.value for e in r.Scalars("liegg/discrete/hflip") if e.step == 0]
        for r in results.values()
    ]
    assert hflip[1] == pytest.approx(hflip[0], rel=1e-4) and len(hflip[1]) == 1
    # one entry per evaluation, logged once (rank zero), images included
    steps = [e.step for e in ddp.Scalars("liegg/symmetry_variance")]
    assert steps == ([0, 3] if stage == "fit" else [0])
    assert [e.step for e in ddp.Images("liegg/generators")] == steps
    assert [e.step for e in ddp.Images("liegg/worst_samples")] == steps
