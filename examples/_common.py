"""What the example scripts share: a quiet TensorBoard-logging Trainer and a command line.

A sibling module: ``python examples/<script>.py`` puts this folder on ``sys.path``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.loggers import TensorBoardLogger


def tensorboard_trainer(
    logdir: str | Path, name: str, epochs: int, callbacks: list[pl.Callback], **options: Any
) -> pl.Trainer:
    """A deterministic one-CPU Trainer without checkpoints, progress bar or model summary.

    It logs to TensorBoard under ``logdir/name`` (``trainer.logger.log_dir``) every 10 steps;
    ``options`` go to ``pl.Trainer`` as well (e.g. ``num_sanity_val_steps=0``).
    """
    return pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=TensorBoardLogger(logdir, name=name, default_hp_metric=False),
        callbacks=callbacks,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=10,
        deterministic=True,
        **options,
    )


def demo_args(
    argv: list[str] | None, doc: str, epochs: int, logdir: str, train_size: int
) -> argparse.Namespace:
    """``--fast``, ``--epochs``, ``--seed``, ``--logdir``, ``--json`` of a training demo.

    ``--fast`` means 1 epoch (unless ``--epochs``), 256 training samples and 32 analysis
    samples; otherwise ``epochs``, ``train_size`` and 256 (``args.train_size``,
    ``args.num_samples``).
    """
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="tiny run for smoke tests")
    parser.add_argument(
        "--epochs", type=int, default=None, help=f"default {epochs} (1 with --fast)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--logdir", default=logdir, help="TensorBoard root")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = 1 if args.fast else epochs
    if args.epochs < 1:
        parser.error(f"Expected --epochs >= 1, but got {args.epochs}")
    args.train_size = 256 if args.fast else train_size
    args.num_samples = 32 if args.fast else 256
    return args
