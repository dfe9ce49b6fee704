"""The rotated-digits demo's printed tables and summary figure (kept out of the demo script).

:class:`SymmetryTable` prints one row per LieGG evaluation: epoch (Lightning's
``trainer.current_epoch``, counted from 0 as in TensorBoard and the end-of-fit summary;
``start`` for the untrained model), validation accuracy,
symmetry variance and relative variance of the most symmetric generator, its gap to the next
one, the symmetry dimension, its rotation bias and the generator as a 2x2 matrix.
:func:`print_summary` and :func:`save_evolution` compare the runs at the end.

The paper (Moskalev et al., NeurIPS 2022) trains a 5 x 128 MLP on rotated MNIST for 200
epochs (validation accuracy 0.844, rotation bias 0.021); the demo uses the 1,437 training
digits of scikit-learn, each rotated ``--copies`` times, to stay within minutes on a CPU.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

import lightning_liegg as lg
from lightning_liegg import plotting

#: The so(2) generator in the coordinates of ImageAction (unit Frobenius norm).
ROTATION = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64) / math.sqrt(2.0)


# --------------------------------------------------------------------------- the table
def rotation_relative_variance(entry: lg.Evaluation) -> float:
    """Relative symmetry variance of the rotation itself, from an evaluation's spectrum.

    The generators of a report are an orthonormal eigenbasis of the polarization Gram matrix,
    so the variance of any unit direction r is ``sum_i lambda_i <g_i, r>^2``.
    """
    generators = torch.tensor(entry.generators, dtype=torch.float64).flatten(1)
    spectrum = torch.tensor(entry.relative_spectrum, dtype=torch.float64)
    if generators.shape[0] != spectrum.shape[0]:  # fewer generators kept than directions
        return math.nan
    weights = (generators @ ROTATION.flatten()) ** 2
    return float((weights * spectrum).sum())


def summarize(entry: lg.Evaluation, val_acc: float | None) -> dict[str, Any]:
    """The numbers of one evaluation that the table and the JSON show."""
    scalars, rel = entry.scalars, entry.relative_spectrum
    return {
        "epoch": entry.epoch if entry.step > 0 else None,  # 0-based; None: untrained
        "epochs_done": entry.epoch + 1 if entry.step > 0 else 0,
        "step": entry.step,
        "val_acc": val_acc,
        "symmetry_variance": scalars["symmetry_variance"],
        "relative_variance": scalars["relative_variance"],
        "gap": rel[1] / rel[0] if len(rel) > 1 and rel[0] > 0 else math.inf,
        "symmetry_dim": int(scalars["symmetry_dim"]),
        "rotation_bias": scalars.get("symmetry_bias", math.nan),
        "rotation_relative_variance": rotation_relative_variance(entry),
        "top_generator": entry.generators[0],
        "liegg_seconds": entry.seconds,
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
    epoch = "start" if row["epoch"] is None else row["epoch"]
    return (
        f"{epoch:>5}  {acc:>7}  {row['symmetry_variance']:8.2e}  "
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
            row = summarize(entry, val_acc if entry.step > 0 else None)
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
    final = results[0]["final"]
    last = "" if final["epoch"] is None else f" (last evaluation: epoch {final['epoch']})"
    print(f"\nAfter {final['epochs_done']} epochs{last}:")
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
