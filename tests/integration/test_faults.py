"""Faults injected during real training: what the callback promises when things go wrong.

Each fault enters through a seam a user (or the machine) controls: an ``output_transform``
that raises at chosen evaluations, a TensorBoard file writer whose disk is full, a process
killed with ``os._exit`` after a checkpoint, a ``KeyboardInterrupt`` from inside the analysis.
The promises (see ``docs/reliability.md``): training goes on and is unchanged, a warning says
what failed, the history holds exactly the evaluations that succeeded, TensorBoard holds each
of them once, and an interrupt leaves the model as it was.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import warnings
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from pytorch_lightning import Callback
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import lightning_liegg as lg

from .helpers import trainer
from .models import NoValModel, TinyDataModule, TinyImageModel
from .models_lightning import LNoValModel, LTinyDataModule, LTinyImageModel

ROOT = Path(__file__).resolve().parents[2]
STEPS_PER_EPOCH = 6  # TinyDataModule: 96 samples, batches of 16


class InjectedFault(RuntimeError):
    """The exception the tests raise on purpose."""


def _steps_per_file(log_dir: str | Path, kind: str) -> dict[str, list[int]]:
    """``{tag: steps}`` of ``kind`` ("scalars" or "images") over every event file below
    ``log_dir``, in file order: a step written by two processes appears twice."""
    files = sorted(Path(log_dir).rglob("events.out.tfevents.*"))
    assert files, f"no TensorBoard event file under {log_dir}"
    steps: dict[str, list[int]] = defaultdict(list)
    for f in files:
        acc = EventAccumulator(str(f), size_guidance={"scalars": 0, "images": 0})
        acc.Reload()
        for tag in acc.Tags()[kind]:
            if tag.startswith("liegg/"):
                read = acc.Scalars if kind == "scalars" else acc.Images
                steps[tag] += [e.step for e in read(tag)]
    return dict(steps)


def _namespace(name: str) -> SimpleNamespace:
    """The Trainer, Callback, TensorBoardLogger and tiny modules of one Lightning namespace."""
    if name == "pytorch_lightning":
        import pytorch_lightning as pl

        return SimpleNamespace(
            Trainer=pl.Trainer, Callback=pl.Callback, TensorBoardLogger=TensorBoardLogger,
            NoValModel=NoValModel, Model=TinyImageModel, Data=TinyDataModule,
        )  # fmt: skip
    import lightning.pytorch as L
    from lightning.pytorch.loggers import TensorBoardLogger as LTensorBoardLogger

    return SimpleNamespace(
        Trainer=L.Trainer, Callback=L.Callback, TensorBoardLogger=LTensorBoardLogger,
        NoValModel=LNoValModel, Model=LTinyImageModel, Data=LTinyDataModule,
    )  # fmt: skip


NAMESPACES = ["pytorch_lightning", "lightning.pytorch"]


def _liegg_messages(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, lg.LieGGWarning)]


def _fit(tmp_path: Path, callbacks: list, logger, seed: int = 3, **kwargs) -> tuple:
    torch.manual_seed(seed)
    model = TinyImageModel()
    options = dict(max_epochs=3, logger=logger, callbacks=callbacks, enable_checkpointing=False)
    t = trainer(tmp_path, **{**options, **kwargs})
    t.fit(model, TinyDataModule(shuffle=True))
    return model, t


# -- 1. an exception in the analysis at random evaluations, figures drawn in the background --
@pytest.mark.slow
def test_random_analysis_failures_with_background_rendering(tmp_path):
    every = 2
    due = list(range(0, 3 * STEPS_PER_EPOCH + 1, every))  # step 0 and every 2nd step
    failing = sorted(random.Random(20).sample(due, 4))  # seeded: the same steps every run
    ok = [s for s in due if s not in failing]

    def faulty(out: torch.Tensor) -> torch.Tensor:
        step = recorder.trainer_step  # the transform gets outputs only: the recorder has the step
        if step in failing:
            raise InjectedFault(f"injected fault at step {step}")
        return out

    class StepRecorder(Callback):
        """Listed before LieGG: the step of the evaluation about to run."""

        trainer_step = -1

        def on_train_start(self, trainer, pl_module):
            self.trainer_step = trainer.global_step

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.trainer_step = trainer.global_step

    recorder = StepRecorder()
    cb = lg.LieGGCallback(
        lg.ImageAction(),
        reference="rotation2d",
        num_samples=16,
        every_n_train_steps=every,
        output_transform=faulty,
        background_rendering=True,
        media_budget=None,
        print_summary=False,
    )
    tb = TensorBoardLogger(tmp_path / "watched", name="tb")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        watched, t = _fit(tmp_path / "watched", [recorder, cb], tb)
    plain, _ = _fit(tmp_path / "plain", [], False)

    assert t.state.finished and t.current_epoch == 3
    # training is exactly what it is without the callback
    for (name, p), q in zip(plain.state_dict().items(), watched.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    # the history holds exactly the evaluations that succeeded
    assert [e.step for e in cb.history] == ok
    # one warning per failure (each names its step), none for the others
    skipped = [m for m in _liegg_messages(caught) if "skipped the evaluation" in m]
    assert len(skipped) == len(failing), skipped
    for step, message in zip(failing, skipped, strict=True):
        assert f"at step {step}:" in message and f"injected fault at step {step}" in message
    assert not [m for m in _liegg_messages(caught) if "could not" in m]
    # TensorBoard: scalars and the background-rendered figures at the successful steps only
    scalars = _steps_per_file(tb.log_dir, "scalars")
    assert scalars["liegg/symmetry_variance"] == ok
    images = _steps_per_file(tb.log_dir, "images")
    assert sorted(images["liegg/generators"]) == ok


# -- 2. the process killed after a checkpoint, the fit resumed from it ------------------------
KILLED_RUN = """
import json, os, sys
from pathlib import Path

import torch
from pytorch_lightning import Callback
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger

import lightning_liegg as lg
from tests.integration.helpers import trainer
from tests.integration.models import TinyDataModule, TinyImageModel

root, epoch, when = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]


def die():
    ckpt = torch.load(root / "ckpt" / "last.ckpt", weights_only=False)  # written by this test
    steps = [e.step for e in cb.history]
    (root / "killed.json").write_text(json.dumps({"steps": steps, "ckpt_epoch": ckpt["epoch"]}))
    os._exit(1)  # no teardown, no flush, no atexit: as a killed process


class Kill(Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if when == "after_checkpoint" and trainer.current_epoch == epoch + 1 and batch_idx == 0:
            die()  # the checkpoint of `epoch` is written; nothing logged since

    def on_train_epoch_end(self, trainer, pl_module):
        # ModelCheckpoint runs after every other callback: the evaluation of `epoch` is
        # logged, its checkpoint not yet written
        if when == "after_evaluation" and trainer.current_epoch == epoch:
            die()


torch.manual_seed(0)
cb = lg.LieGGCallback(lg.ImageAction(), reference="rotation2d", num_samples=16,
                      media_budget=None, print_summary=False)
t = trainer(root, max_epochs=5, logger=TensorBoardLogger(root, name="tb", version=0),
            callbacks=[cb, ModelCheckpoint(dirpath=root / "ckpt", save_last=True), Kill()])
t.fit(TinyImageModel(), TinyDataModule())
"""


def _tensorboard_view(log_dir: str | Path, tag: str, kind: str = "scalars") -> list:
    """``(step, value)`` (images: steps) of ``tag`` as TensorBoard shows the run: all event
    files of ``log_dir`` read in order, data orphaned by a restart discarded."""
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    if kind == "images":
        return [e.step for e in acc.Images(tag)]
    return [(e.step, e.value) for e in acc.Scalars(tag)]


@pytest.mark.slow
@pytest.mark.parametrize("when", ["after_checkpoint", "after_evaluation"])
def test_killed_process_resumes_without_lost_or_duplicated_evaluations(tmp_path, when):
    """Killed right after the checkpoint of epoch 1, or one evaluation past it (logged to
    TensorBoard by the dead process, then done again by the resumed one)."""
    epoch, max_epochs = 1, 4
    script = tmp_path / "killed_run.py"
    script.write_text(textwrap.dedent(KILLED_RUN))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path), str(epoch), when],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]  # the os._exit, not an error
    killed = json.loads((tmp_path / "killed.json").read_text())
    ckpt_epoch = epoch if when == "after_checkpoint" else epoch - 1
    assert killed["ckpt_epoch"] == ckpt_epoch
    assert killed["steps"] == [STEPS_PER_EPOCH * e for e in range(epoch + 2)]

    cb = lg.LieGGCallback(
        lg.ImageAction(),
        reference="rotation2d",
        num_samples=16,
        media_budget=None,
        print_summary=False,
    )
    tb = TensorBoardLogger(tmp_path, name="tb", version=0)  # the killed run's log dir
    t = trainer(
        tmp_path,
        max_epochs=max_epochs,
        logger=tb,
        callbacks=[cb, ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)],
    )
    t.fit(TinyImageModel(), TinyDataModule(), ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))

    expected = [STEPS_PER_EPOCH * e for e in range(max_epochs + 1)]
    steps = [e.step for e in cb.history]
    assert steps == expected  # continuous: nothing lost, nothing twice
    restored = STEPS_PER_EPOCH * (ckpt_epoch + 1)  # the checkpoint's last evaluation
    assert [s for s in killed["steps"] if s <= restored] == steps[: steps.index(restored) + 1]
    assert [e.epoch for e in cb.history] == [0, *range(max_epochs)]
    assert len(list(Path(tb.log_dir).glob("events.out.tfevents.*"))) == 2  # both processes
    written = _steps_per_file(tb.log_dir, "scalars")["liegg/symmetry_variance"]
    if when == "after_checkpoint":  # nothing was written twice
        assert sorted(written) == expected
    else:  # the dead process's last evaluation, then the resumed run's
        assert sorted(written) == sorted([*expected, restored + STEPS_PER_EPOCH])
    # what TensorBoard shows: each step once, with the history's values
    shown = _tensorboard_view(tb.log_dir, "liegg/symmetry_variance")
    history = [(e.step, e.scalars["symmetry_variance"]) for e in cb.history]
    assert [s for s, _ in shown] == expected
    assert [v for _, v in shown] == pytest.approx([v for _, v in history], rel=1e-6)
    assert _tensorboard_view(tb.log_dir, "liegg/generators", "images") == expected


# -- 3. a full disk while writing images ----------------------------------------------------
def _fill_the_disk(monkeypatch: pytest.MonkeyPatch, tb) -> set[str]:
    """Every image summary written to ``tb``'s event file raises ENOSPC; returns the tags
    refused (scalars and histograms still go through)."""
    file_writer = tb.experiment._get_file_writer()  # where add_image and PNG summaries go
    original = file_writer.add_summary
    refused: set[str] = set()

    def add_summary(summary, global_step=None, walltime=None):
        if any(value.HasField("image") for value in summary.value):
            refused.update(value.tag for value in summary.value)
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(summary, global_step, walltime)

    monkeypatch.setattr(file_writer, "add_summary", add_summary)
    return refused


@pytest.mark.parametrize(
    ("namespace", "background"),
    [("pytorch_lightning", False), ("pytorch_lightning", True), ("lightning.pytorch", False)],
    ids=["in-place", "background", "lightning.pytorch"],
)
def test_full_disk_while_writing_images(tmp_path, monkeypatch, namespace, background):
    ns = _namespace(namespace)
    tb = ns.TensorBoardLogger(tmp_path, name="tb")
    refused = _fill_the_disk(monkeypatch, tb)
    cb = lg.LieGGCallback(
        lg.ImageAction(),
        reference="rotation2d",
        num_samples=16,
        background_rendering=background,
        print_summary=False,
    )
    t = trainer(
        tmp_path, ns.Trainer, max_epochs=2, logger=tb, callbacks=[cb], enable_checkpointing=False
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t.fit(ns.Model(), ns.Data())

    assert t.state.finished and t.current_epoch == 2
    steps = [e.step for e in cb.history]
    assert steps == [0, 6, 12]
    # both image paths met the full disk: the per-sample image and the (rendered) figures
    assert {"liegg/worst_samples", "liegg/generators"} <= refused, refused
    messages = [m for m in _liegg_messages(caught) if "No space left on device" in m]
    assert messages, _liegg_messages(caught)
    assert all("OSError" in m for m in messages)
    assert len(messages) == len(set(messages))  # once per cause, not at every evaluation
    scalars = _steps_per_file(tb.log_dir, "scalars")
    for tag in ["symmetry_variance", "relative_variance", "symmetry_bias", "subspace_distance"]:
        assert scalars[f"liegg/{tag}"] == steps, tag
    # what does not need the disk space of an image is still written: the histograms
    acc = EventAccumulator(tb.log_dir, size_guidance={"histograms": 0})
    acc.Reload()
    for tag in ["liegg/log10_relative_spectrum", "liegg/per_sample/violation/most_symmetric"]:
        assert [e.step for e in acc.Histograms(tag)] == steps, tag
    assert _steps_per_file(tb.log_dir, "images") == {}


# -- 4. KeyboardInterrupt from inside an analysis -------------------------------------------
def _hook_counts(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    kinds = [
        "_forward_hooks",
        "_forward_pre_hooks",
        "_backward_hooks",
        "_backward_pre_hooks",
        "_state_dict_hooks",
        "_load_state_dict_pre_hooks",
    ]
    return {
        name: tuple(len(getattr(m, kind)) for kind in kinds) for name, m in model.named_modules()
    }


def _global_hook_counts() -> tuple[int, ...]:
    from torch.nn.modules import module

    names = [n for n in dir(module) if n.startswith("_global_") and n.endswith("hooks")]
    return tuple(len(getattr(module, n)) for n in sorted(names))


def _modes(model: torch.nn.Module) -> dict[str, bool]:
    return {name: m.training for name, m in model.named_modules()}


def _freeze_batchnorm(module) -> None:
    """BatchNorm frozen (eval) while the rest trains: a mode the analysis must give back."""
    module.net[2].eval()


@pytest.mark.parametrize("namespace", NAMESPACES)
@pytest.mark.parametrize("layers", [None, ["net.1", "net.3"]], ids=["output", "layers"])
def test_keyboard_interrupt_during_analysis_restores_the_model(tmp_path, layers, namespace):
    ns = _namespace(namespace)
    interrupt_at = STEPS_PER_EPOCH  # the end of epoch 0 (no validation: on_train_epoch_end)
    seen: dict[str, object] = {}

    class MixedModeModel(ns.NoValModel):
        on_train_epoch_start = _freeze_batchnorm

    class Before(ns.Callback):
        """Listed before LieGG: the model's state just before the analysis."""

        def on_train_epoch_end(self, trainer, pl_module):
            seen["modes"] = _modes(pl_module)
            seen["hooks"] = _hook_counts(pl_module)
            seen["global_hooks"] = _global_hook_counts()
            assert all(p.grad is not None for p in pl_module.parameters())  # the last step's
            seen["grads"] = {n: p.grad.clone() for n, p in pl_module.named_parameters()}
            seen["requires_grad"] = {n: p.requires_grad for n, p in pl_module.named_parameters()}

    def interrupt(out: torch.Tensor) -> torch.Tensor:
        if model.trainer.global_step == interrupt_at:
            seen["raised"] = True
            raise KeyboardInterrupt
        return out

    model = MixedModeModel()
    cb = lg.LieGGCallback(
        lg.ImageAction(),
        num_samples=16,
        output_transform=interrupt,
        layers=layers,
        log_images=False,
        print_summary=False,
    )
    t = trainer(
        tmp_path,
        ns.Trainer,
        max_epochs=3,
        logger=False,
        callbacks=[Before(), cb],
        enable_checkpointing=False,
    )
    handler = signal.getsignal(signal.SIGINT)
    try:
        # Lightning's rule for Ctrl+C: on_exception, teardown, then sys.exit(1)
        with pytest.raises(SystemExit) as exit_info:
            t.fit(model, ns.Data())
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores SIGINT from then on
    assert exit_info.value.code == 1
    assert seen.get("raised") and t.interrupted
    assert t.global_step == interrupt_at and [e.step for e in cb.history] == [0]

    assert _modes(model) == seen["modes"] and not model.net[2].training
    assert _hook_counts(model) == seen["hooks"]
    assert _global_hook_counts() == seen["global_hooks"]
    for name, p in model.named_parameters():
        assert torch.equal(p.grad, seen["grads"][name]), name
        assert p.requires_grad == seen["requires_grad"][name], name


@pytest.mark.parametrize("layers", [None, ["net.1", "net.3"]], ids=["output", "layers"])
def test_keyboard_interrupt_reaches_the_caller_of_liegg(layers):
    """Without Lightning the interrupt propagates as itself (never wrapped, never swallowed)."""
    model = TinyImageModel().double()
    model.train()
    model.net[2].eval()
    modes, hooks = _modes(model), _hook_counts(model)
    calls = []

    def interrupt(out: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        if len(calls) == 2:  # in the middle of the passes, after one chunk went through
            raise KeyboardInterrupt
        return out

    x = torch.rand(8, 1, 8, 8, dtype=torch.float64)
    with pytest.raises(KeyboardInterrupt):
        lg.liegg(
            model, x, lg.ImageAction(), output_transform=interrupt, layers=layers, chunk_size=4
        )
    assert len(calls) == 2
    assert _modes(model) == modes and _hook_counts(model) == hooks
    assert all(p.grad is None for p in model.parameters())
