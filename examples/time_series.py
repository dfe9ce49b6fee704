"""Does a 1-D CNN learn that the time of an event does not matter? LieGG on time series.

Synthetic signals of 64 samples hold one wave packet at a random time c in [-0.55, 0.55] (t runs
from -1 to 1), plus a little noise. Two tasks on the same kind of signals:

* ``shift``: the class is the packet's frequency (3 or 5 cycles per unit of t); the time c does
  not matter, so a good classifier is invariant to time shifts, the generator [0 | 1];
* ``position``: the class is whether the packet is early (c < 0) or late; a time shift changes
  the class, but a dilation about the centre t = 0 ([1 | 0]) keeps it.

A small 1-D CNN (two convolutions, then a dense head that sees absolute positions, so nothing in
the architecture makes it shift invariant) is trained on each with ``LieGGCallback(
lg.SignalAction(affine=True))``, which searches aff(1): dilations and shifts of t. After every
epoch the script prints the variance of the Lie derivative of the (L2-normalised) class scores
along the shift and along the dilation, and the bias of the most symmetric direction against
the shift (0: it is the shift, 1: it is the dilation). The summary compares the ratio
var(shift) / var(dilation) at the end with the untrained network's.

Measured (seed 0, 8 epochs, 2 CPU cores, about 20 s in all): in the ``shift`` task
var(shift) fell 13-fold and the ratio went from 9.95 to 1.38 (x0.14); in the ``position`` task
var(shift) grew 54-fold and the ratio went to 317 (x32). Small dilations barely change these
frequencies, so the shift-task network is insensitive to them too: the most symmetric direction
stays near the dilation in both runs (bias vs shift > 0.9); what tells the tasks apart is how
the shift's variance moves.

    python examples/time_series.py            # about 20 s on 2 CPU cores
    python examples/time_series.py --fast     # a few seconds (smoke test)
    tensorboard --logdir runs/time_series
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from _common import demo_args, tensorboard_trainer
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

import lightning_liegg as lg

LENGTH = 64
FREQUENCIES = (3.0, 5.0)  # cycles per unit of t


def make_signals(n: int, task: str, seed: int) -> tuple[Tensor, Tensor]:
    """Wave packets at random times: signals ``(n, 1, 64)`` and labels ``(n,)``.

    Args:
        n: number of signals.
        task: ``"shift"`` (label: the frequency) or ``"position"`` (label: c >= 0).
        seed: seed of this data set.
    """
    gen = torch.Generator().manual_seed(seed)
    t = torch.linspace(-1.0, 1.0, LENGTH)
    centre = (torch.rand(n, 1, generator=gen) - 0.5) * 1.1
    which = torch.randint(0, 2, (n,), generator=gen)
    freq = torch.tensor(FREQUENCIES)[which][:, None]
    phase = 2 * math.pi * torch.rand(n, 1, generator=gen)
    envelope = torch.exp(-(((t - centre) / 0.15) ** 2))
    x = envelope * torch.cos(2 * math.pi * freq * (t - centre) + phase)
    x = x + 0.05 * torch.randn(n, LENGTH, generator=gen)
    label = which if task == "shift" else (centre[:, 0] >= 0).long()
    return x[:, None], label


class SignalCNN(pl.LightningModule):
    """Conv1d(1, 8, 9) - ReLU - MaxPool(2) - Conv1d(8, 16, 9) - ReLU - MaxPool(2) - dense head.

    The dense head sees every position: shift invariance has to be learned, not built in.
    """

    def __init__(self, lr: float = 3e-3) -> None:
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(
            nn.Conv1d(1, 8, 9, padding=4),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(8, 16, 9, padding=4),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Flatten(),
            nn.Linear(16 * LENGTH // 4, 32),
            nn.ReLU(),
            nn.Linear(32, 2),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Class scores ``(N, 2)`` for signals ``(N, 1, 64)``."""
        return self.net(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """Cross-entropy loss."""
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """Validation accuracy."""
        x, y = batch
        self.log("val_acc", (self(x).argmax(1) == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam."""
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def direction_variances(entry: lg.Evaluation) -> tuple[float, float]:
    """Variances of the Lie derivative along the unit dilation [1 | 0] and shift [0 | 1].

    From one history entry of the callback: G / N = sum_i s_i g_i g_i^T over its spectrum s and
    generators g (aff(1) has two coordinates: dilation, shift).
    """
    spectrum = torch.tensor(entry.spectrum, dtype=torch.float64)
    gens = torch.tensor(entry.generators, dtype=torch.float64).reshape(len(spectrum), 2)
    var = (spectrum[:, None] * gens**2).sum(0)
    return float(var[0]), float(var[1])


class Table(pl.Callback):
    """Prints one row per LieGG evaluation: accuracy, variances along shift and dilation."""

    def __init__(self, liegg: lg.LieGGCallback, title: str) -> None:
        self.liegg, self.title = liegg, title
        self.rows: list[dict[str, Any]] = []
        self._printed = 0

    def _flush(self, trainer: pl.Trainer) -> None:
        if self._printed == 0:
            print(f"\n{self.title}")
            print("  epoch  val_acc   var(shift)  var(dilation)  shift/dilation  bias vs shift")
        acc = trainer.callback_metrics.get("val_acc")
        for entry in self.liegg.history[self._printed :]:
            dilation, shift = direction_variances(entry)
            start = entry.step == 0  # the untrained network
            row = {
                "epoch": None if start else int(entry.epoch),
                "val_acc": None if start or acc is None else float(acc),
                "var_shift": shift,
                "var_dilation": dilation,
                "ratio": shift / max(dilation, 1e-300),
                "shift_bias": float(entry.bias[0]),
            }
            self.rows.append(row)
            epoch = "start" if start else f"{row['epoch']:5d}"
            acc_text = "   -   " if row["val_acc"] is None else f"{row['val_acc']:.3f}  "
            print(
                f"  {epoch:>5}  {acc_text}  {shift:10.3e}  {dilation:13.3e}  "
                f"{row['ratio']:14.3g}  {row['shift_bias']:13.3f}"
            )
        self._printed = len(self.liegg.history)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Print the rows of this epoch (LieGG has evaluated, validation has run)."""
        self._flush(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Print whatever is left."""
        self._flush(trainer)


def run(task: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train on one task with the callback; returns the table rows and where the logs are."""
    pl.seed_everything(args.seed, workers=True, verbose=False)
    x, y = make_signals(args.train_size, task, args.seed)
    xv, yv = make_signals(args.train_size // 4, task, args.seed + 1)
    train = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
    val = DataLoader(TensorDataset(xv, yv), batch_size=256)
    liegg = lg.LieGGCallback(
        lg.SignalAction(affine=True),
        reference="translation1d",
        output_transform=lg.l2_normalize,
        num_samples=args.num_samples,
        every_n_epochs=1,
    )
    table = Table(liegg, f"[{task}] class {'= frequency' if task == 'shift' else '= early/late'}")
    trainer = tensorboard_trainer(args.logdir, task, args.epochs, [liegg, table])
    start = time.perf_counter()
    trainer.fit(SignalCNN(), train, val)
    return {
        "task": task,
        "log_dir": str(Path(trainer.logger.log_dir)),
        "seconds": time.perf_counter() - start,
        "rows": table.rows,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return demo_args(argv, __doc__, epochs=8, logdir="runs/time_series", train_size=4096)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(1)  # tiny models: one thread is fastest on a shared machine
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*LieGG.*cannot show.*")
    results = [run(task, args) for task in ("shift", "position")]

    print(f"\nAfter {args.epochs} epoch(s):")
    for r in results:
        first, last = r["rows"][0], r["rows"][-1]
        acc = "-" if last["val_acc"] is None else f"{last['val_acc']:.3f}"
        # the untrained network sets the scale: shifts move these packets more than dilations
        # about the centre do (|t| < 0.55 where they sit), so compare with the start
        relative = last["ratio"] / first["ratio"]
        r["shift_change"] = last["var_shift"] / first["var_shift"]
        r["ratio_vs_start"] = relative
        verdict = "shift symmetry emerged" if relative < 0.5 else "no shift symmetry"
        print(
            f"  {r['task']:8}  val_acc {acc}  var(shift) x{r['shift_change']:.3g} since the "
            f"start; var(shift)/var(dilation) {first['ratio']:.3g} -> {last['ratio']:.3g} "
            f"(x{relative:.3g}): {verdict}  [{r['seconds']:.0f} s]"
        )
    print(f"  TensorBoard: tensorboard --logdir {args.logdir}")
    out = {"args": {k: str(v) for k, v in vars(args).items()}, "runs": results}
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
