"""Does an MLP trained on EMLP's O(5) regression task learn the rotations so(5)?

Reproduces the LieGG paper's O(5) notebook (Moskalev et al., NeurIPS 2022) with Lightning:
an MLP of 32 channels and 2 Swish nonlinearities (no biases, inputs and target standardised
in a way that keeps O(5) invariance) is trained on N = 10,000 samples of

    f(x1, x2) = sin|x1| - |x2|^3 / 2 + <x1, x2> / (|x1| |x2|),     x1, x2 in R^5,

with Adam (lr 3e-3, weight decay 1e-4, batch 500, 90 epochs: the notebook's 900,000 / N),
while ``LieGGCallback`` logs its learned symmetries to TensorBoard. The target is invariant
to O(5) acting on both vectors, so the symmetries to find are so(5): 10 of the 25 directions
of gl(5). At the end the script prints a table next to the paper's figures and the relative
spectrum with its gap, and the exact answer: LieGG on the true target (float64) has a
10-dimensional null space that is exactly so(5).

    python examples/o5_regression.py                  # about 1-2 minutes on 2 CPU cores
    python examples/o5_regression.py --fast           # a few seconds (smoke test)
    tensorboard --logdir runs/o5_regression

With one output, reduction "sum" (the paper's) and "none" give the same numbers.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from _common import tensorboard_trainer
from torch import Tensor, nn

import lightning_liegg as lg
from lightning_liegg.datasets import O5RegressionDataModule, o5_target

#: The paper's O(5) notebook (DESIGN.md section 5): reduction "sum", on the training inputs.
PAPER = {"test_mse": 0.222, "symmetry_variance": 0.0633, "symmetry_bias": 0.0093}
SO5_DIM = 10


class O5Regressor(pl.LightningModule):
    """The paper's MLP, without biases, in an O(5)-compatible standardisation.

    ``Linear(10, ch) - Swish - [Linear(ch, ch) - Swish] - Linear(ch, 1)``, all bias free.

    Inputs are divided by the root-mean-square norm of each 5-vector channel (a scalar per
    channel, which commutes with rotations) and the output is rescaled to the target's mean and
    standard deviation, as in EMLP's ``Standardize``.

    Args:
        x_scale: ``(10,)`` input scale, the RMS of each channel repeated over its 5 entries.
        y_mean: target mean.
        y_std: target standard deviation.
        channels: hidden width.
        num_nonlins: number of hidden layers (Swish nonlinearities).
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
    """

    def __init__(
        self,
        x_scale: Tensor,
        y_mean: float,
        y_std: float,
        channels: int = 32,
        num_nonlins: int = 2,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["x_scale"])
        widths = [10] + [channels] * num_nonlins
        layers: list[nn.Module] = []
        for cin, cout in zip(widths, widths[1:], strict=False):
            layers += [nn.Linear(cin, cout, bias=False), nn.SiLU()]
        layers.append(nn.Linear(widths[-1], 1, bias=False))
        self.net = nn.Sequential(*layers)
        self.register_buffer("x_scale", x_scale.reshape(1, 10).float().clone())
        self.y_mean, self.y_std = float(y_mean), float(y_std)

    def forward(self, x: Tensor) -> Tensor:
        """Predictions ``(N, 1)`` for inputs ``(N, 10)``."""
        return self.y_std * self.net(x / self.x_scale) + self.y_mean

    def _mse(self, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """One optimisation step: the MSE loss."""
        loss = self._mse(batch)
        self.log("train_mse", loss)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """Log the validation MSE."""
        self.log("val_mse", self._mse(batch))

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """Log the test MSE."""
        self.log("test_mse", self._mse(batch))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam with weight decay, as in the paper's notebook."""
        return torch.optim.Adam(
            self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )


def o5_stats(x: Tensor, y: Tensor) -> tuple[Tensor, float, float]:
    """Standardisation statistics that keep O(5) invariance.

    One scale per 5-vector channel (not per coordinate) and zero input mean; the target's
    mean and standard deviation.

    Args:
        x: inputs of shape (N, 10).
        y: targets of shape (N, 1).

    Returns:
        ``(x_scale, y_mean, y_std)``: x_scale of shape (10,).
    """
    rms = x.reshape(-1, 2, 5).square().mean(dim=(0, 2)).sqrt()  # (2,)
    return rms.repeat_interleave(5), float(y.mean()), float(y.std())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="tiny run for smoke tests (seconds)")
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="default: 90 (the paper's 900,000 / N); 3 with --fast",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=2022,
        help="seed of the data and the model (the notebook's 2022)",
    )
    parser.add_argument(
        "--logdir", type=str, default="runs/o5_regression", help="TensorBoard directory"
    )
    parser.add_argument(
        "--json", type=str, default=None, help="write the results as JSON to this path"
    )
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = 3 if args.fast else 90
    if args.epochs < 1:
        parser.error(f"Expected --epochs >= 1, but got {args.epochs}")
    return args


def analyse(model: Callable[[Tensor], Tensor], x: Tensor, reduction: str) -> lg.SymmetryReport:
    """LieGG of ``model`` on inputs ``x`` (N, 10), two 5-vectors, against so(5)."""
    return lg.liegg(
        model,
        x,
        lg.VectorAction(dim=5, channels=2),
        reduction=reduction,
        reference="so(5)",
        chunk_size=5000,
    )


def spectrum_table(report: lg.SymmetryReport, expected: int = SO5_DIM) -> list[str]:
    """One line per generator: variance, relative variance, bias; a rule at the largest gap."""
    dim = report.symmetry_dim
    bias = report.symmetry_bias
    lines = ["   #    variance    relative     bias  gap to next"]
    rel = report.relative_spectrum
    for i in range(rel.shape[0]):
        gap = ""
        if i + 1 < rel.shape[0]:
            lo, hi = max(float(rel[i]), 1e-300), max(float(rel[i + 1]), 1e-300)
            gap = f"x{hi / lo:.3g}"  # a ratio, as the demos and LayerwiseReport print it
        variance, relative = float(report.spectrum[i]), float(rel[i])
        lines.append(f"  {i:2d}  {variance:10.3e}  {relative:10.3e}  {float(bias[i]):7.4f}  {gap}")
        if i + 1 == dim and dim > 0:
            note = "" if dim == expected else f" (so(5) has {expected})"
            lines.append(f"  ---------- largest gap: symmetry_dim = {dim}{note} ----------")
    if dim == 0:
        lines.append("  (no gap of x10 or more: symmetry_dim = 0)")
    return lines


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    # These models are tiny: one thread is fastest, and on a shared machine two threads spin
    # against other jobs (several times slower here).
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
    pl.seed_everything(args.seed, workers=True, verbose=False)
    t0 = time.perf_counter()

    n_train = 2_000 if args.fast else 10_000
    data = O5RegressionDataModule(
        n_train=n_train, n_val=1_000, n_test=1_000, batch_size=500, seed=args.seed
    )
    data.setup()
    x_train, y_train = data.train_set.tensors
    model = O5Regressor(*o5_stats(x_train, y_train))

    action = lg.VectorAction(dim=5, channels=2)
    callback = lg.LieGGCallback(
        action,
        reference=lg.algebras.so(5),
        reduction="sum",  # the paper's; with one output the same as "none"
        every_n_epochs=max(1, args.epochs // 9),
        num_samples=1_000,
        log_images=True,
    )
    trainer = tensorboard_trainer(args.logdir, "", args.epochs, [callback], num_sanity_val_steps=0)
    trainer.fit(model, datamodule=data)
    test_mse = float(trainer.test(model, datamodule=data, verbose=False)[0]["test_mse"])
    train_seconds = time.perf_counter() - t0

    # The paper analyses the trained model on its training inputs, reduction "sum".
    model.eval()
    t1 = time.perf_counter()
    rep_sum = analyse(model, x_train, "sum")
    rep_none = analyse(model, x_train, "none")
    liegg_seconds = time.perf_counter() - t1
    # The exact answer: the true target in float64 is O(5) invariant, so E has so(5) as null space.
    rep_true = analyse(o5_target, x_train.double(), "none")

    bias = rep_sum.symmetry_bias
    ours = {
        "test_mse": test_mse,
        "symmetry_variance_sum": rep_sum.symmetry_variance,
        "symmetry_variance_none": rep_none.symmetry_variance,
        "relative_variance": rep_sum.relative_variance,
        "symmetry_bias": float(bias[0]),
        "min_bias_top10": float(bias[:SO5_DIM].min()),
        "subspace_distance_k10": rep_sum.subspace_distance(SO5_DIM),
        "symmetry_dim": rep_sum.symmetry_dim,
        "closure_k10": rep_sum.closure(SO5_DIM),
    }
    true_rel = rep_true.relative_spectrum
    exact = {
        "max_relative_variance_top10": float(true_rel[:SO5_DIM].max()),
        "relative_variance_11th": float(true_rel[SO5_DIM]),
        "symmetry_dim": rep_true.symmetry_dim,
        "subspace_distance_k10": rep_true.subspace_distance(SO5_DIM),
        "max_bias_top10": float(rep_true.symmetry_bias[:SO5_DIM].max()),
    }

    print()
    print(
        f"O(5) regression: N_train={n_train}, epochs={args.epochs}, seed={args.seed}, "
        f"MLP 32 ch x 2 Swish (no bias), {sum(p.numel() for p in model.parameters())} parameters"
    )
    print(
        f"training + test: {train_seconds:.1f} s; final LieGG on {x_train.shape[0]} samples "
        f"(sum + none): {liegg_seconds:.2f} s; TensorBoard: {trainer.logger.log_dir}"
    )
    print()
    rows = [
        ("test MSE", PAPER["test_mse"], ours["test_mse"]),
        (
            "symmetry variance, reduction 'sum'",
            PAPER["symmetry_variance"],
            ours["symmetry_variance_sum"],
        ),
        ("symmetry variance, reduction 'none'", None, ours["symmetry_variance_none"]),
        ("relative variance (scale free)", None, ours["relative_variance"]),
        ("symmetry bias, most symmetric generator", PAPER["symmetry_bias"], ours["symmetry_bias"]),
        ("min symmetry bias, 10 most symmetric", None, ours["min_bias_top10"]),
        ("subspace distance to so(5), k=10", None, ours["subspace_distance_k10"]),
        ("symmetry_dim (so(5): 10)", None, ours["symmetry_dim"]),
        ("closure, k=10 (0 = a Lie algebra)", None, ours["closure_k10"]),
    ]
    print(f"{'':42s} {'paper':>9s} {'ours':>11s}")
    for name, paper, value in rows:
        p = "-" if paper is None else f"{paper:.4g}"
        v = str(value) if isinstance(value, int) else f"{value:.4g}"
        print(f"{name:42s} {p:>9s} {v:>11s}")
    print("(the paper's 'min symmetry bias' is the bias of its most symmetric generator)")
    if args.fast:
        print("(--fast: a smoke test on a barely trained model; compare nothing)")
    print()
    print("Relative spectrum of the trained MLP (25 directions of gl(5), most symmetric first):")
    print("\n".join(spectrum_table(rep_sum)))
    print()
    print("Exact answer, LieGG on the true target (float64):")
    print(
        "  relative variances of the 10 most symmetric: "
        f"max {exact['max_relative_variance_top10']:.2e} "
        f"(< 1e-10: {exact['max_relative_variance_top10'] < 1e-10}); "
        f"11th: {exact['relative_variance_11th']:.3g}"
    )
    print(
        f"  symmetry_dim = {exact['symmetry_dim']}, subspace distance to so(5) = "
        f"{exact['subspace_distance_k10']:.2e}, max bias of the 10 = {exact['max_bias_top10']:.2e}"
    )
    if callback.history:
        print()
        print("During training (LieGGCallback, 1,000 validation samples):")
        print("   step  epoch  rel. variance  bias(top)  subspace dist.  sym_dim")
        for e in callback.history:
            s = e.scalars
            print(
                f"  {e.step:5d}  {e.epoch:5d}  {s['relative_variance']:13.3e}  "
                f"{s['symmetry_bias']:9.4f}  {s['subspace_distance']:14.4f}  "
                f"{int(s['symmetry_dim']):7d}"
            )

    results = {
        "args": vars(args),
        "n_train": n_train,
        "paper": PAPER,
        "ours": ours,
        "exact": exact,
        "relative_spectrum": rep_sum.relative_spectrum.tolist(),
        "spectrum": rep_sum.spectrum.tolist(),
        "bias": bias.tolist(),
        "true_relative_spectrum": true_rel.tolist(),
        "history": [{"step": e.step, "epoch": e.epoch, **e.scalars} for e in callback.history],
        "seconds": {
            "train_and_test": train_seconds,
            "liegg": liegg_seconds,
            "total": time.perf_counter() - t0,
        },
        "logdir": str(trainer.logger.log_dir),
    }
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1))
        print(f"\nresults written to {args.json}")
    return results


if __name__ == "__main__":
    main()
