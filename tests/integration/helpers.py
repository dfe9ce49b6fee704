"""Reading TensorBoard event files back, and a tiny Trainer factory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def read_events(log_dir: str | Path) -> EventAccumulator:
    """All scalars, images and histograms of every event file below ``log_dir``."""
    files = sorted(Path(log_dir).rglob("events.out.tfevents.*"))
    assert files, f"no TensorBoard event file under {log_dir}"
    merged = None
    for f in files:
        acc = EventAccumulator(
            str(f), size_guidance={"scalars": 0, "images": 0, "histograms": 0, "tensors": 0}
        )
        acc.Reload()
        if merged is None:
            merged = acc
        else:  # several files (fit + validate): keep the one with liegg scalars first
            merged = merged if "liegg/symmetry_variance" in merged.Tags()["scalars"] else acc
    return merged


def scalar_steps(acc: EventAccumulator, tag: str) -> list[int]:
    return [e.step for e in acc.Scalars(tag)]


def trainer(tmp_path: Path, trainer_cls: type = pl.Trainer, **kwargs: Any) -> Any:
    """A tiny CPU Trainer in ``tmp_path`` (``trainer_cls``: e.g. ``lightning.pytorch.Trainer``)."""
    options: dict[str, Any] = dict(
        default_root_dir=str(tmp_path),
        max_epochs=2,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        deterministic=True,
        accelerator="cpu",
        devices=1,
    )
    options.update(kwargs)
    return trainer_cls(**options)


def single_and_ddp(
    model_cls: Any, seed: int
) -> Iterator[tuple[str, dict[str, Any], pl.LightningModule]]:
    """One process, then two DDP ranks (``ddp_spawn``), each with the same initial weights.

    Yields ``(name, trainer options, model)``: ``"single"`` with no options, ``"ddp"`` with
    ``strategy`` and ``devices``; both models start from ``model_cls()`` after ``seed``.
    """
    torch.manual_seed(seed)
    weights = model_cls().state_dict()
    for name, options in {"single": {}, "ddp": {"strategy": "ddp_spawn", "devices": 2}}.items():
        model = model_cls()
        model.load_state_dict(weights)
        yield name, options, model


def custom_scalars_layout(acc: EventAccumulator) -> dict[str, list[str]]:
    """The custom-scalars page written to the event file: {chart title: tag patterns}."""
    from tensorboard.plugins.custom_scalar import layout_pb2
    from tensorboard.util import tensor_util

    (event,) = acc.Tensors("custom_scalars__config__")
    raw = tensor_util.make_ndarray(event.tensor_proto)
    layout = layout_pb2.Layout()
    layout.ParseFromString(raw.item() if raw.ndim == 0 else raw[0])
    return {
        chart.title: list(chart.multiline.tag) for cat in layout.category for chart in cat.chart
    }
