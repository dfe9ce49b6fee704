"""A network learns an energy; LieGG watches the Hamiltonian flow emerge as its symmetry.

A small MLP is fitted to the anharmonic oscillator's energy H(q, p) = p^2/2 + q^4/4 from
samples of (q, p) and H (never its gradient). A function of H alone is constant along the
Hamiltonian flow q' = p, p' = -q^3, a *nonlinear* vector field: no matrix group contains it. A
``lg.VectorFieldAction(2, degree=3)`` searches all fields whose components are polynomials of
degree <= 3 in (q, p); the ``LieGGCallback`` evaluates it after every epoch, and the table shows
the most symmetric field turning into ``p ∂q - q^3 ∂p`` as the fit improves, with its
distance (sin of the angle) to the true flow. The run logs to TensorBoard too.

Run ``python examples/hamiltonian_flow.py`` (about a minute on one CPU core) or ``--quick``.
Results are in ``docs/nonlinear.md``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from _common import tensorboard_trainer
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

import lightning_liegg as lg

NAMES = ("q", "p")


def energy(z: Tensor) -> Tensor:
    """H = p^2/2 + q^4/4 of states z = (q, p): ``(N, 1)``."""
    return (z[:, 1] ** 2 / 2 + z[:, 0] ** 4 / 4)[:, None]


def hamiltonian_flow(action: lg.VectorFieldAction) -> Tensor:
    """The true symmetry (p, -q^3) over the action's library: ``(1, 2, m)``."""
    w = torch.zeros(1, *action.generator_shape, dtype=torch.float64)
    w[0, 0, action.functions.index("p")] = 1.0
    w[0, 1, action.functions.index("q^3")] = -1.0
    return w


class EnergyNet(pl.LightningModule):
    """An MLP (q, p) -> H fitted by full-batch L-BFGS (smooth regression, float64)."""

    def __init__(self, width: int = 32, iterations: int = 20) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 1)
        )
        self.iterations = iterations

    def forward(self, z: Tensor) -> Tensor:
        """The predicted energy ``(N, 1)``."""
        return self.net(z)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """Mean squared error of the energy."""
        z, h = batch
        loss = nn.functional.mse_loss(self(z), h)
        self.log("train_mse", loss, on_step=False, on_epoch=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """L-BFGS, ``iterations`` steps per (full-batch) training step."""
        return torch.optim.LBFGS(
            self.parameters(),
            max_iter=self.iterations,
            history_size=50,
            line_search_fn="strong_wolfe",
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 epochs, for smoke tests")
    parser.add_argument("--epochs", type=int, default=None, help="default 25 (3 with --quick)")
    parser.add_argument("--samples", type=int, default=512, help="training states")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--logdir", default="runs/hamiltonian_flow", help="TensorBoard root")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = 3 if args.quick else 25
    if args.epochs < 1:
        parser.error(f"Expected --epochs >= 1, but got {args.epochs}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(1)  # a tiny model: one thread is fastest on a shared machine
    torch.set_default_dtype(torch.float64)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*LieGG.*cannot show.*")
    pl.seed_everything(args.seed, workers=True, verbose=False)

    states = (torch.rand(args.samples, 2) * 2 - 1) * 1.5  # (q, p) in [-1.5, 1.5]^2
    data = DataLoader(TensorDataset(states, energy(states)), batch_size=args.samples)
    action = lg.VectorFieldAction(2, degree=3, names=NAMES)
    flow = hamiltonian_flow(action)
    callback = lg.LieGGCallback(
        action, every_n_epochs=1, num_samples=256, reference=flow, print_summary=False
    )
    trainer = tensorboard_trainer(args.logdir, "anharmonic", args.epochs, [callback])
    start = time.perf_counter()
    trainer.fit(EnergyNet(), data)
    seconds = time.perf_counter() - start

    print(f"H = p^2/2 + q^4/4, {args.samples} states, symmetry search: {action!r}")
    print(f"{'epochs':>6}  {'rel. var':>9}  {'gap':>7}  {'dist':>6}  most symmetric field")
    rows = []
    for epochs, record in enumerate(callback.history):  # one evaluation per epoch
        rel = torch.tensor(record.relative_spectrum)
        gap = float(torch.log10(rel[1].clamp_min(1e-300) / rel[0].clamp_min(1e-300)))
        text = action.format_generator(torch.tensor(record.generators[0]))
        dist = float(record.bias[0])  # sin of the angle to (p, -q^3)
        ratio = f"x{10.0**gap:.3g}"  # printed as a ratio, like the demos; JSON keeps decades
        print(f"{epochs:>6}  {float(rel[0]):9.2e}  {ratio:>7}  {dist:6.3f}  {text}")
        rows.append(
            {
                "epochs": epochs,
                "step": record.step,
                "relative_variance": float(rel[0]),
                "gap_decades": gap,
                "distance": dist,
                "field": text,
            }
        )
    mse = float(trainer.callback_metrics["train_mse"])
    print(f"train MSE {mse:.2e}; {seconds:.1f} s; tensorboard --logdir {args.logdir}")
    result = {"rows": rows, "train_mse": mse, "seconds": seconds, "log_dir": trainer.logger.log_dir}
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
