r"""Replay: the callback's analysis over saved checkpoints of a run trained without it.

:func:`replay` loads each checkpoint of a folder into the LightningModule class (oldest step
first), analyses it on a fixed sample set from the datamodule (its validation data, or its
training data when it has none) with the evaluation engine of a
:class:`~lightning_liegg.LieGGCallback`, and logs the same ``liegg/`` scalars, histograms and
figures at each checkpoint's ``global_step``, as if the callback had run during training.

Checkpoints are read with PyTorch's safe loader (``weights_only=True``: tensors and plain
containers only, nothing else is unpickled), also for reading their step; pass
``weights_only=False`` (``--weights_only false``) only for files you trust.

From the command line (needs ``pip install 'lightning-liegg[cli]'``)::

    python -m lightning_liegg.replay \
        --model my_project.MyModel --checkpoints runs/ckpts --log_dir runs/liegg \
        --data '{"class_path": "my_project.MyData", "init_args": {"batch_size": 64}}' \
        --callback.action lightning_liegg.ImageAction --callback.reference rotation2d

(or ``--config replay.yaml`` with the same keys). Callables (``--callback.input_fn``,
``output_transform``, ``forward_fn``) are dotted paths such as ``my_project.data.first``.
Replay runs in one process. ``lightning_liegg.replay`` is this module, and calling it calls
:func:`replay`.
"""

from __future__ import annotations

import inspect
import pickle
import sys
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ._checks import describe
from ._cli import import_dotted as _import
from ._cli import replay_main
from ._engine import Run
from ._lightning import is_overridden
from .callback import LieGGCallback
from .exceptions import LieGGError
from .history import Evaluation

__all__ = ["replay", "main"]


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
            f"Expected checkpoint files (*.ckpt) in {str(checkpoints)!r}, but found "
            f"{'none' if not files else 'missing files: ' + ', '.join(missing)}."
        )
    return files


def _unsafe(path: Path, err: Exception) -> LieGGError:
    return LieGGError(
        f"Expected a checkpoint that PyTorch's safe loader reads (tensors and plain containers), "
        f"but {str(path)!r} holds other objects ({type(err).__name__}). If you trust the file, "
        "pass weights_only=False (command line: --weights_only false); it then runs the "
        "file's pickled code."
    )


def _load(path: Path, weights_only: bool) -> dict[str, Any]:
    """The checkpoint's dict, read with the safe loader unless ``weights_only`` is False."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=weights_only)
    except pickle.UnpicklingError as err:
        raise _unsafe(path, err) from err
    if not isinstance(state, Mapping):
        raise LieGGError(f"Expected a checkpoint dict in {str(path)!r}, but got {describe(state)}.")
    return dict(state)


def _sample_loader(data: Any) -> Any:
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
    weights_only: bool = True,
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
            (action, reference, ``num_samples``, ``input_fn``, ``layers``, ...); its
            ``history`` gets one record per checkpoint (stage ``"replay"``).
        log_dir: write TensorBoard events here (the same tags as the callback's).
        logger: or any Lightning logger (or a list of them); neither: no logging.
        device: where the model runs.
        weights_only: read checkpoints with PyTorch's safe loader (default): nothing but
            tensors and plain containers is unpickled. ``False`` trusts the files: their
            pickled objects (and any code they carry) are loaded.

    Returns:
        The records, one per checkpoint, in step order (checkpoints of one step count once).

    Raises:
        LieGGError: on a bad argument, no checkpoint files, or a checkpoint that the safe
            loader refuses (the message names ``weights_only``).

    Example:
        >>> import lightning_liegg as lg
        >>> cb = lg.LieGGCallback(lg.ImageAction(), reference="rotation2d")
        >>> # lg.replay("my.Model", "runs/ckpts", "my.Data", cb, log_dir="runs/liegg")
    """
    if not isinstance(callback, LieGGCallback):
        raise LieGGError(f"Expected callback to be a LieGGCallback, but got {describe(callback)}.")
    if not isinstance(weights_only, bool):
        raise LieGGError(f"Expected weights_only to be a bool, but got {describe(weights_only)}.")
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
    steps = []
    for f in files:
        state = _load(f, weights_only)
        steps.append((int(state.get("global_step", 0)), int(state.get("epoch", 0)), f))
    steps.sort(key=lambda s: (s[0], str(s[2])))

    engine, run = callback.engine, Run(loggers=loggers)
    engine.begin(run)
    engine.start_figures(run, fit=False)
    try:
        for step, epoch, f in steps:
            try:
                module = model_cls.load_from_checkpoint(
                    str(f), map_location=device, weights_only=weights_only
                )
            except pickle.UnpicklingError as err:
                raise _unsafe(f, err) from err
            module.to(device)
            engine.collect(lambda: _sample_loader(data))
            engine.set_model(module)
            engine.evaluate(module, run, step, epoch, stage="replay")
            engine.flush(run)
        engine.flush(run, wait=True)
    finally:
        engine.close()
    engine.end(run, "LieGG replay")
    for lg_ in loggers:
        lg_.finalize("success")
    return list(engine.records)


def main(argv: Sequence[str] | None = None) -> list[Evaluation]:
    """``python -m lightning_liegg.replay``: :func:`replay`'s arguments as options (or YAML).

    A user mistake (a missing checkpoint folder, a bad dotted path, an option that does not
    fit) ends in a one-line error and exit status 2, as for any other bad option.
    """
    return replay_main(argv, replay, __doc__ or "")


class _CallableModule(types.ModuleType):
    """``lightning_liegg.replay(...)`` calls :func:`replay`, also once this module is imported."""

    def __call__(self, *args: Any, **kwargs: Any) -> list[Evaluation]:
        return replay(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
#: ``inspect.signature(lightning_liegg.replay)`` shows :func:`replay`'s own signature.
__signature__ = inspect.signature(replay)

if __name__ == "__main__":
    main()
