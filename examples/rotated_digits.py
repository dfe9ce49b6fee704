"""Does an MLP trained on rotated digits learn rotation invariance? ``make demo`` runs this.

An MLP (``nn.Flatten`` then fully connected layers) classifies scikit-learn's bundled 8x8
digits, upsampled to 28x28, rotated by uniform random angles and blurred
(:class:`~lightning_liegg.datasets.RotatedDigitsDataModule`; nothing is downloaded). Nothing
tells the network about rotations, yet ``LieGGCallback`` finds that it becomes invariant to
them: among the four directions of gl(2) acting on pixel coordinates, one is far more
symmetric than the others (a gap in the spectrum) and it is the rotation (its distance to
so(2), the "rotation bias", is near 0).

The control trains the same network on upright digits: they have no rotation symmetry, and
LieGG finds none (no gap, the most symmetric direction is not a rotation).

Every evaluation prints a row: epoch, validation accuracy, symmetry variance and relative
variance of the most symmetric generator, its gap to the next one, the symmetry dimension,
its rotation bias and the generator itself as a 2x2 matrix. TensorBoard gets the curves,
the generators, spectra and filmstrips; the symmetry evolution is also saved as PNGs.

    python examples/rotated_digits.py                  # both runs, about 1-2 minutes on 2 CPUs
    python examples/rotated_digits.py --no-control     # rotated digits only
    python examples/rotated_digits.py --fast           # a few seconds (smoke test)
    tensorboard --logdir runs/rotated_digits

The paper (Moskalev et al., NeurIPS 2022) trains a 5 x 128 MLP on rotated MNIST for 200
epochs (validation accuracy 0.844, rotation bias 0.021); this demo uses the 1,437 training
digits of scikit-learn, each rotated ``--copies`` times, to stay within a few minutes on a CPU.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import TensorBoardLogger

import lightning_liegg as lg
from lightning_liegg import plotting
from lightning_liegg.datasets import RotatedDigitsDataModule
from lightning_liegg.demos import DigitMLP

#: The so(2) generator in the coordinates of ImageAction (unit Frobenius norm).
ROTATION = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64) / math.sqrt(2.0)
RUNS = {"rotated": True, "upright": False}  # run name -> rotate the digits


# --------------------------------------------------------------------------- the table
def rotation_relative_variance(entry: dict[str, Any]) -> float:
    """Relative symmetry variance of the rotation itself, from an evaluation's spectrum.

    The generators of a report are an orthonormal eigenbasis of the polarization Gram matrix,
    so the variance of any unit direction r is ``sum_i lambda_i <g_i, r>^2``.
    """
    generators = torch.tensor(entry["generators"], dtype=torch.float64).flatten(1)
    spectrum = torch.tensor(entry["relative_spectrum"], dtype=torch.float64)
    if generators.shape[0] != spectrum.shape[0]:  # fewer generators kept than directions
        return math.nan
    weights = (generators @ ROTATION.flatten()) ** 2
    return float((weights * spectrum).sum())


def summarize(entry: dict[str, Any], val_acc: float | None) -> dict[str, Any]:
    """The numbers of one evaluation that the table and the JSON show."""
    scalars, rel = entry["scalars"], entry["relative_spectrum"]
    return {
        "epoch": entry["epoch"] + 1 if entry["step"] > 0 else 0,
        "step": entry["step"],
        "val_acc": val_acc,
        "symmetry_variance": scalars["symmetry_variance"],
        "relative_variance": scalars["relative_variance"],
        "gap": rel[1] / rel[0] if len(rel) > 1 and rel[0] > 0 else math.inf,
        "symmetry_dim": int(scalars["symmetry_dim"]),
        "rotation_bias": scalars.get("symmetry_bias", math.nan),
        "rotation_relative_variance": rotation_relative_variance(entry),
        "top_generator": entry["generators"][0],
        "liegg_seconds": entry["seconds"],
    }


def format_generator(matrix: list[list[float]]) -> str:
    rows = (" ".join(f"{v:+.2f}" for v in row) for row in matrix)
    return "[" + " | ".join(rows) + "]"


HEADER = (
    f"{'epoch':>5}  {'val_acc':>7}  {'sym_var':>8}  {'rel_var':>8}  {'gap':>6}  {'dim':>3}  "
    f"{'rot_bias':>8}  top generator [row 1 | row 2]"
)


def format_row(row: dict[str, Any]) -> str:
    acc = "-" if row["val_acc"] is None else f"{row['val_acc']:.3f}"
    return (
        f"{row['epoch']:>5}  {acc:>7}  {row['symmetry_variance']:8.2e}  "
        f"{row['relative_variance']:8.2e}  {'x' + format(row['gap'], '.3g'):>6}  "
        f"{row['symmetry_dim']:>3}  {row['rotation_bias']:8.4f}  "
        f"{format_generator(row['top_generator'])}"
    )


class SymmetryTable(Callback):
    """Prints a row after each LieGG evaluation (list it after the LieGGCallback).

    Args:
        liegg: the callback whose ``history`` is printed.
        title: printed above the header.
    """

    def __init__(self, liegg: lg.LieGGCallback, title: str) -> None:
        self.liegg, self.title = liegg, title
        self.rows: list[dict[str, Any]] = []

    def _print_new(self, val_acc: float | None) -> None:
        for entry in self.liegg.history[len(self.rows) :]:
            row = summarize(entry, val_acc if entry["step"] > 0 else None)
            self.rows.append(row)
            print(format_row(row), flush=True)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Print the header and the untrained model's row."""
        print(f"\n{self.title}\n{HEADER}", flush=True)
        self._print_new(None)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Print the rows of evaluations made since the last call."""
        if trainer.sanity_checking:
            return
        acc = trainer.callback_metrics.get("val_acc")
        self._print_new(None if acc is None else float(acc))


# --------------------------------------------------------------------------- one run
def train(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train on rotated (or upright) digits with the LieGG callback; return its numbers."""
    pl.seed_everything(args.seed, verbose=False)  # same data split and initial weights per run
    data = RotatedDigitsDataModule(
        rotate=RUNS[name],
        blur_sigma=args.blur_sigma,
        batch_size=args.batch_size,
        seed=args.seed,
        copies=args.copies,
        limit=args.limit,
    )
    model = DigitMLP(data.input_dim, args.width, args.depth, args.lr, cosine_schedule=True)
    liegg = lg.LieGGCallback(
        lg.ImageAction(),
        reference="rotation2d",
        output_transform=lg.l2_normalize,  # as in the paper: class scores on the unit sphere
        num_samples=args.num_samples,
        every_n_epochs=1,
    )
    table = SymmetryTable(liegg, f"[{name} digits] {args.depth} x {args.width} MLP")
    logger = TensorBoardLogger(args.logdir, name=name, default_hp_metric=False)
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        devices=1,
        logger=logger,
        callbacks=[liegg, table],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=10,
        deterministic=True,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    seconds = time.perf_counter() - start

    log_dir = Path(logger.log_dir)
    liegg.to_json(log_dir / "liegg_history.json")
    steps = [entry["step"] for entry in liegg.history]
    spectra = [entry["relative_spectrum"] for entry in liegg.history]
    fig = plotting.plot_evolution(steps, spectra)
    fig.suptitle(f"{name} digits: relative spectrum of gl(2)", fontsize=9)
    fig.savefig(log_dir / "spectrum_evolution.png")
    return {
        "name": name,
        "log_dir": str(log_dir),
        "train_seconds": seconds,
        "rows": table.rows,
        "final": table.rows[-1] if table.rows else None,
    }


# --------------------------------------------------------------------------- summary
def save_evolution(results: list[dict[str, Any]], path: Path) -> None:
    """One row of curves per run: relative variance, spectral gap and rotation bias."""
    steps = [row["step"] for row in results[0]["rows"]]
    values: dict[str, list[float | None]] = {}
    for result in results:
        rows = result["rows"]
        if [row["step"] for row in rows] != steps:  # different schedules: plot separately
            return save_evolution(results[:1], path)
        name = result["name"]
        values[f"{name}: relative variance (most symmetric)"] = [
            row["relative_variance"] for row in rows
        ]
        values[f"{name}: gap, 2nd / 1st variance"] = [row["gap"] for row in rows]
        values[f"{name}: rotation bias (most symmetric)"] = [row["rotation_bias"] for row in rows]
    fig = plotting.plot_history(steps, values)
    axes = fig.axes
    for column in range(3):  # share the y range of each quantity across the runs
        same = axes[column::3]
        low = min(ax.get_ylim()[0] for ax in same)
        high = max(ax.get_ylim()[1] for ax in same)
        for ax in same:
            ax.set_ylim(0.0 if column == 2 else low, high)
    for ax in axes[2::3]:
        ax.axhline(0.05, color="0.5", linestyle=":", linewidth=1)  # below: lies in so(2)
    fig.savefig(path)
    return None


def verdict(final: dict[str, Any]) -> str:
    if final["symmetry_dim"] >= 1 and final["rotation_bias"] < 0.05:
        return (
            f"learned rotation invariance: {final['symmetry_dim']} symmetric direction(s), "
            f"gap x{final['gap']:.3g}, rotation bias {final['rotation_bias']:.3f}"
        )
    return (
        f"no rotation symmetry: symmetry_dim {final['symmetry_dim']}, gap x{final['gap']:.3g}, "
        f"rotation bias {final['rotation_bias']:.3f}"
    )


def print_summary(results: list[dict[str, Any]]) -> None:
    print(f"\nAfter {results[0]['final']['epoch']} epochs:")
    names = [r["name"] for r in results]
    print(f"  {'':34}" + "".join(f"{n:>12}" for n in names))
    lines = [
        ("validation accuracy", "val_acc", "{:.3f}"),
        ("symmetry variance (most sym.)", "symmetry_variance", "{:.2e}"),
        ("relative variance (most sym.)", "relative_variance", "{:.2e}"),
        ("gap to the next direction", "gap", "x{:.3g}"),
        ("symmetry dimension", "symmetry_dim", "{}"),
        ("rotation bias (most sym.)", "rotation_bias", "{:.4f}"),
        ("rotation's relative variance", "rotation_relative_variance", "{:.2e}"),
        ("training time (s)", "train_seconds", "{:.1f}"),
    ]
    for label, key, fmt in lines:
        cells = []
        for r in results:
            value = r["train_seconds"] if key == "train_seconds" else r["final"][key]
            cells.append("-" if value is None else fmt.format(value))
        print(f"  {label:34}" + "".join(f"{c:>12}" for c in cells))
    for r in results:
        print(f"  {r['name']} digits: {verdict(r['final'])}")


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--epochs",
        "--max_epochs",
        "--max-epochs",
        dest="epochs",
        type=int,
        default=None,
        help="epochs per run (default 6; 2 with --fast)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of data, split and weights")
    parser.add_argument("--logdir", default="runs/rotated_digits", help="TensorBoard root")
    parser.add_argument(
        "--control",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also train on upright digits, which have no rotation symmetry (default: on)",
    )
    parser.add_argument("--fast", action="store_true", help="tiny run for smoke tests")
    parser.add_argument("--json", type=Path, default=None, help="write the final numbers here")
    parser.add_argument("--width", type=int, default=None, help="hidden units (default 256)")
    parser.add_argument("--depth", type=int, default=None, help="hidden layers (default 4)")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak Adam learning rate")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--blur-sigma", type=float, default=1.5, help="blur in pixels")
    parser.add_argument(
        "--copies", type=int, default=None, help="rotated copies per training digit (default 24)"
    )
    parser.add_argument("--num-samples", type=int, default=None, help="LieGG samples (<= val set)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads; the model is tiny, so one thread is usually fastest",
    )
    args = parser.parse_args(argv)
    fast = args.fast
    defaults = {
        "epochs": 2 if fast else 6,
        "width": 32 if fast else 256,
        "depth": 2 if fast else 4,
        "copies": 1 if fast else 24,
        "num_samples": 64 if fast else 512,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.limit = 300 if fast else None
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", ".*isinstance.treespec, LeafSpec.*")  # Lightning internals
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)  # keep the table readable
    logdir = Path(args.logdir)
    start = time.perf_counter()
    results = [
        train(name, args) for name in (["rotated", "upright"] if args.control else ["rotated"])
    ]

    skipped = [r["name"] for r in results if r["final"] is None]
    if skipped:  # LieGG warned why (LieGGWarning); nothing to summarise
        raise SystemExit(f"No LieGG evaluation succeeded for: {', '.join(skipped)}")
    print_summary(results)
    png = logdir / "symmetry_evolution.png"
    save_evolution(results, png)
    summary = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "runs": {
            r["name"]: {**r["final"], "train_seconds": r["train_seconds"], "log_dir": r["log_dir"]}
            for r in results
        },
        "total_seconds": time.perf_counter() - start,
    }
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))
    print("\nFiles:")
    print(f"  {png}  (relative variance, gap and rotation bias over training)")
    for r in results:
        print(
            f"  {r['log_dir']}/  (TensorBoard events, spectrum_evolution.png, liegg_history.json)"
        )
    if args.json is not None:
        print(f"  {args.json}")
    print(f"\nSee the generators, spectra and filmstrips:\n  tensorboard --logdir {logdir}")
    print(f"Total time: {summary['total_seconds']:.1f} s")
    return summary


if __name__ == "__main__":
    main()
