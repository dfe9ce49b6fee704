r"""Replay: the callback's analysis over saved checkpoints of a run trained without it.

:func:`replay` loads each checkpoint of a folder into the LightningModule class (oldest step
first), analyses it on a fixed sample set from the datamodule (its validation data, or its
training data when it has none) with a :class:`~lightning_liegg.LieGGCallback`, and logs
the same ``liegg/`` scalars, histograms and figures at each checkpoint's ``global_step``, as if
the callback had run during training. From the command line, like LightningCLI::

    python -m lightning_liegg.replay \
        --model my_project.MyModel --checkpoints runs/ckpts --log_dir runs/liegg \
        --data '{"class_path": "my_project.MyData", "init_args": {"batch_size": 64}}' \
        --callback.action lightning_liegg.ImageAction --callback.reference rotation2d

(or ``--config replay.yaml`` with the same keys). Replay runs in one process.
``lightning_liegg.replay`` is this module, and calling it calls :func:`replay`.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from ._checks import describe
from ._history import Evaluation, summary_table
from ._lightning import is_overridden
from .callback import LieGGCallback
from .exceptions import LieGGError

__all__ = ["replay", "main"]


class _Precision:
    """Full precision, as the Trainer's default precision plugin."""

    def forward_context(self) -> Any:
        return nullcontext()

    def convert_input(self, data: Any) -> Any:
        return data


class _ReplayRun:
    """What the callback reads from a Trainer, for one process replaying checkpoints."""

    world_size = 1
    is_global_zero = True
    sanity_checking = False
    strategy = None

    def __init__(self, loggers: list[Any]) -> None:
        self.loggers = loggers
        self.callback_metrics: dict[str, Any] = {}
        self.progress_bar_metrics: dict[str, Any] = {}
        self.global_step = 0
        self.current_epoch = 0
        self.precision_plugin = _Precision()


def _import(path: str) -> Any:
    module, _, name = path.rpartition(".")
    if not module:
        raise LieGGError(f"Expected a class path 'package.module.Class', but got {path!r}.")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise LieGGError(f"Expected an importable class path, but got {path!r} ({err}).") from err


def _instantiate(spec: Any, what: str) -> Any:
    """An object from a class path, or ``{"class_path": ..., "init_args": {...}}``."""
    if isinstance(spec, str):
        return _import(spec)()
    if isinstance(spec, Mapping) and "class_path" in spec:
        return _import(spec["class_path"])(**dict(spec.get("init_args") or {}))
    if spec is None or isinstance(spec, (Mapping, Sequence)):
        raise LieGGError(
            f"Expected {what} as an object, a class path or a dict with class_path and "
            f"init_args, but got {describe(spec)}."
        )
    return spec


def _checkpoint_files(checkpoints: str | Path | Sequence[str | Path]) -> list[Path]:
    if isinstance(checkpoints, (str, Path)):
        path = Path(checkpoints)
        files = sorted(path.rglob("*.ckpt")) if path.is_dir() else [path]
    else:
        files = [Path(p) for p in checkpoints]
    missing = [str(f) for f in files if not f.is_file()]
    if not files or missing:
        raise LieGGError(
            f"Expected checkpoint files (*.ckpt) in {checkpoints!r}, but found "
            f"{'none' if not files else 'missing files: ' + ', '.join(missing)}."
        )
    return files


def _sample_loader(data: Any, model: Any) -> Any:
    """The datamodule's validation loader (set up for validation), else its training loader."""
    if hasattr(data, "prepare_data"):
        data.prepare_data()
    if is_overridden("val_dataloader", data):
        if hasattr(data, "setup"):
            data.setup("validate")
        return data.val_dataloader()
    if hasattr(data, "setup"):
        data.setup("fit")
    return data.train_dataloader()


def replay(
    model: str | type,
    checkpoints: str | Path | Sequence[str | Path],
    data: Any,
    callback: LieGGCallback,
    log_dir: str | Path | None = None,
    logger: Any = None,
    device: str = "cpu",
) -> list[Evaluation]:
    """Analyse saved checkpoints as the callback would have during training.

    Args:
        model: the LightningModule class (or its import path); each checkpoint is loaded
            with its ``load_from_checkpoint``.
        checkpoints: a folder (searched for ``*.ckpt``, recursively) or a list of files.
        data: a LightningDataModule (either namespace), its class path, or
            ``{"class_path": ..., "init_args": {...}}``. The samples come from its validation
            data (its training data when it has none), collected once for every checkpoint.
        callback: a :class:`~lightning_liegg.LieGGCallback` with the analysis settings
            (action, reference, ``num_samples``, ``input_fn``, ...); its ``history`` gets one
            record per checkpoint (stage ``"replay"``).
        log_dir: write TensorBoard events here (the same tags as the callback's).
        logger: or any Lightning logger (or a list of them); neither: no logging.
        device: where the model runs.

    Returns:
        The records, one per checkpoint, in step order (checkpoints of one step count once).

    Example:
        >>> import lightning_liegg as lg
        >>> cb = lg.LieGGCallback(lg.ImageAction(), reference="rotation2d")
        >>> # lg.replay("my.Model", "runs/ckpts", "my.Data", cb, log_dir="runs/liegg")
    """
    if not isinstance(callback, LieGGCallback):
        raise LieGGError(f"Expected callback to be a LieGGCallback, but got {describe(callback)}.")
    model_cls = _import(model) if isinstance(model, str) else model
    if not hasattr(model_cls, "load_from_checkpoint"):
        raise LieGGError(
            f"Expected model to be a LightningModule class, but got {describe(model_cls)}."
        )
    files = _checkpoint_files(checkpoints)
    data = _instantiate(data, "data")
    loggers = [] if logger is None else list(logger) if isinstance(logger, list) else [logger]
    if log_dir is not None:
        from pytorch_lightning.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(str(log_dir), name="", version=""))
    run = _ReplayRun(loggers)
    steps = []
    for f in files:
        state = torch.load(f, map_location="cpu", weights_only=False)
        steps.append((int(state.get("global_step", 0)), int(state.get("epoch", 0)), f))
    steps.sort(key=lambda s: (s[0], str(s[2])))

    cb = callback
    cb._attempted, cb._run_records, cb._warn.skipped = 0, [], {}
    if cb.log_images and loggers:
        cb._loggers.check(loggers, cb._warn)
    cb._figures.start(fit=False, warm_up=cb._draws(run))
    try:
        for step, epoch, f in steps:
            module = model_cls.load_from_checkpoint(str(f), map_location=device)
            module.to(device)
            if cb.samples is None:
                cb._cache.collect(_sample_loader(data, module))
            run.global_step, run.current_epoch = step, epoch
            cb._evaluate(run, module, stage="replay")
            cb._flush_media(run)
        cb._flush_media(run, wait=True)
    finally:
        cb._figures.close()
    cb._warn.report_skips(cb._attempted)
    if cb.print_summary:
        text = getattr(cb.action, "format_generator", None)
        skipped = cb._warn.skipped
        print(summary_table(cb._run_records, cb._attempted, skipped, "LieGG replay", text))
    for lg_ in loggers:
        lg_.finalize("success")
    return list(cb._run_records)


def main(argv: Sequence[str] | None = None) -> list[Evaluation]:
    """``python -m lightning_liegg.replay``: :func:`replay`'s arguments as options (or YAML)."""
    from jsonargparse import ActionConfigFile, ArgumentParser, Namespace

    parser = ArgumentParser(prog="python -m lightning_liegg.replay", description=__doc__)
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_argument("--model", type=str, required=True, help="LightningModule class path")
    parser.add_argument("--checkpoints", type=str, required=True, help="folder of *.ckpt")
    parser.add_argument(
        "--data", type=Any, required=True, help="class path or {class_path, init_args}"
    )
    parser.add_class_arguments(LieGGCallback, "callback")
    parser.add_argument("--log_dir", type=str, default=None)
    parser.add_argument("--device", type=str, default="cpu")
    cfg = parser.parse_args(list(argv) if argv is not None else None)
    init = parser.instantiate_classes(cfg)
    data = cfg.data.as_dict() if isinstance(cfg.data, Namespace) else cfg.data
    return replay(
        cfg.model, cfg.checkpoints, data, init.callback, log_dir=cfg.log_dir, device=cfg.device
    )


class _CallableModule(types.ModuleType):
    """``lightning_liegg.replay(...)`` calls :func:`replay`, also once this module is imported."""

    def __call__(self, *args: Any, **kwargs: Any) -> list[Evaluation]:
        return replay(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    main()
