"""Replay: a run trained without the callback, analysed afterwards from its checkpoints,
gives the callback's numbers at the same steps, in TensorBoard event files read back."""

from __future__ import annotations

import json

import pytest
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger

import lightning_liegg as lg
from tests.conftest import ROOT

from .helpers import read_events, scalar_steps, trainer
from .models import TinyDataModule, TinyImageModel

pytestmark = pytest.mark.slow


def _callback(**kwargs) -> lg.LieGGCallback:
    return lg.LieGGCallback(
        lg.ImageAction(), reference="rotation2d", num_samples=16, media_budget=None, **kwargs
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same training twice: saving a checkpoint per epoch, and with the callback."""
    tmp_path = tmp_path_factory.mktemp("runs")
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpts", save_top_k=-1, every_n_epochs=1)
    t = trainer(tmp_path / "plain", max_epochs=3, logger=False, callbacks=[ckpt])
    torch.manual_seed(0)
    t.fit(TinyImageModel(), TinyDataModule(shuffle=False))
    live = _callback()
    logger = TensorBoardLogger(tmp_path / "live", name="tb", version=0)
    t = trainer(tmp_path / "live", max_epochs=3, logger=logger, callbacks=[live])
    torch.manual_seed(0)
    t.fit(TinyImageModel(), TinyDataModule(shuffle=False))
    return tmp_path / "ckpts", live


def test_replay_matches_the_callback(tmp_path, runs, capfd):
    ckpts, live = runs
    cb = _callback()
    records = lg.replay(
        TinyImageModel, ckpts, TinyDataModule(shuffle=False), cb, log_dir=tmp_path / "replay"
    )
    assert [r.step for r in records] == [6, 12, 18] and {r.stage for r in records} == {"replay"}
    for record in records:
        (same,) = [e for e in live.history if e.step == record.step]
        for key in ("symmetry_variance", "relative_variance", "symmetry_bias"):
            assert record.scalars[key] == pytest.approx(same.scalars[key], rel=1e-5), key
    acc = read_events(tmp_path / "replay")
    assert scalar_steps(acc, "liegg/symmetry_bias") == [6, 12, 18]
    assert scalar_steps(acc, "liegg/spectrum/0") == [6, 12, 18]
    assert [e.step for e in acc.Images("liegg/generators")] == [6, 12, 18]
    assert [e.step for e in acc.Images("liegg/filmstrip")] == [6, 12, 18]
    assert "liegg/log10_relative_spectrum" in acc.Tags()["histograms"]
    (last,) = [e.value for e in acc.Scalars("liegg/symmetry_bias") if e.step == 18]
    assert last == pytest.approx(records[-1].scalars["symmetry_bias"], rel=1e-6)
    assert "LieGG replay" in capfd.readouterr().out


def test_replay_command_line(tmp_path, runs, run_script):
    ckpts, live = runs
    data = {
        "class_path": "tests.integration.models.TinyDataModule",
        "init_args": {"shuffle": False},
    }
    proc = run_script(
        "-m",
        "lightning_liegg.replay",
        "--model",
        "tests.integration.models.TinyImageModel",
        "--checkpoints",
        str(ckpts),
        "--data",
        json.dumps(data),
        "--callback.action",
        "lightning_liegg.ImageAction",
        "--callback.reference",
        "rotation2d",
        "--callback.num_samples",
        "16",
        "--log_dir",
        str(tmp_path / "cli"),
        env={"PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "always::DeprecationWarning"},
    )
    # on jsonargparse's current API: no deprecation warning of it in a run
    assert "jsonargparse" not in proc.stderr and "instantiate_classes" not in proc.stderr
    acc = read_events(tmp_path / "cli")
    assert scalar_steps(acc, "liegg/symmetry_bias") == [6, 12, 18]
    (last,) = [e.value for e in acc.Scalars("liegg/symmetry_bias") if e.step == 18]
    assert last == pytest.approx(live.history[-1].scalars["symmetry_bias"], rel=1e-5)


def test_replay_errors(tmp_path):
    cb = _callback()
    with pytest.raises(lg.LieGGError, match=r"checkpoint files \(\*\.ckpt\).*none"):
        lg.replay(TinyImageModel, tmp_path, TinyDataModule(), cb)
    with pytest.raises(lg.LieGGError, match="importable dotted path"):
        lg.replay("tests.integration.models.Nope", tmp_path, TinyDataModule(), cb)
    with pytest.raises(lg.LieGGError, match="callback to be a LieGGCallback"):
        lg.replay(TinyImageModel, tmp_path, TinyDataModule(), object())


class _WritesAFile:
    """Unpickling this object creates ``path``: what a crafted checkpoint could do."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_replay_reads_checkpoints_with_the_safe_loader(tmp_path):
    marker = tmp_path / "written_by_the_checkpoint"
    torch.save({"global_step": 3, "epoch": 0, "payload": _WritesAFile(marker)}, tmp_path / "x.ckpt")
    with pytest.raises(lg.LieGGError, match="weights_only=False") as err:
        lg.replay(TinyImageModel, tmp_path, TinyDataModule(), _callback())
    assert not marker.exists()  # nothing beyond tensors and plain containers was unpickled
    assert "safe loader" in str(err.value) and "x.ckpt" in str(err.value)
    # negative control: trusting the file runs its code (then fails, as it is no checkpoint)
    with pytest.raises(Exception):  # noqa: B017 - any error: the point is the file written
        lg.replay(TinyImageModel, tmp_path, TinyDataModule(), _callback(), weights_only=False)
    assert marker.exists()


def test_replay_signature_is_the_real_one():
    import inspect

    params = inspect.signature(lg.replay).parameters
    assert list(params)[:4] == ["model", "checkpoints", "data", "callback"]
    assert params["weights_only"].default is True


def _cli(argv, capsys):
    from lightning_liegg.replay import main

    with pytest.raises(SystemExit) as exit_:
        main(argv)
    return exit_.value.code, capsys.readouterr()


def test_replay_cli_help_is_plain_and_warns_nothing(capsys):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, out = _cli(["--help"], capsys)
    assert code == 0
    text = out.out
    assert "--weights_only" in text and "dotted path of a callable" in text
    assert "torch.Tensor" not in text and "known subclasses: torch" not in text
    for old in ("--callback.batch_size", "--callback.mode ", "--callback.on_train_start"):
        assert old not in text


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--checkpoints", "no/such/folder"], "checkpoint files"),
        (["--callback.input_fn", "no_such_module.first"], "importable dotted path"),
        (["--model", "tests.integration.models.Nope"], "importable dotted path"),
    ],
    ids=["missing-folder", "bad-callable", "bad-model"],
)
def test_replay_cli_user_mistakes_are_one_line_errors(tmp_path, capsys, args, says):
    base = {
        "--model": "tests.integration.models.TinyImageModel",
        "--checkpoints": str(tmp_path),
        "--data": "tests.integration.models.TinyDataModule",
        "--callback.action": "lightning_liegg.ImageAction",
    }
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    torch.save({"global_step": 0}, tmp_path / "empty.ckpt")
    code, out = _cli([item for pair in base.items() for item in pair], capsys)
    lines = out.err.strip().splitlines()
    assert code == 2 and len(lines) == 1, out.err
    assert (
        lines[0].startswith("python -m lightning_liegg.replay: error: Expected")
        and says in lines[0]
    )
