"""Does an MLP trained on rotated digits learn rotation invariance? ``make demo`` runs this.

An MLP classifies scikit-learn's 8x8 digits, upsampled to 28x28, randomly rotated and blurred
(:class:`~lightning_liegg.datasets.RotatedDigitsDataModule`; nothing is downloaded).
``LieGGCallback`` finds that it becomes invariant to rotations: one direction of gl(2) is far
more symmetric than the others, and it is the rotation (its "rotation bias" is near 0). The
control run on upright digits finds no such direction. A row per evaluation is printed (see
``symmetry_table.py``); TensorBoard gets curves, generators, spectra and filmstrips.

    python examples/rotated_digits.py                  # both runs, about 1-2 minutes on 2 CPUs
    python examples/rotated_digits.py --no-control     # rotated digits only
    python examples/rotated_digits.py --fast           # a few seconds (smoke test)
    make tensorboard TB_LOGDIR=runs/rotated_digits    # .venv/bin/tensorboard --logdir ...
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from _common import tensorboard_trainer
from symmetry_table import SymmetryTable, print_summary, save_evolution

import lightning_liegg as lg
from lightning_liegg import plotting
from lightning_liegg.datasets import RotatedDigitsDataModule
from lightning_liegg.demos import DigitMLP

RUNS = {"rotated": True, "upright": False}  # run name -> rotate the digits


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
    trainer = tensorboard_trainer(args.logdir, name, args.epochs, [liegg, table])
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    seconds = time.perf_counter() - start

    log_dir = Path(trainer.logger.log_dir)
    liegg.to_json(log_dir / "liegg_history.json")
    steps = [entry.step for entry in liegg.history]
    spectra = [entry.relative_spectrum for entry in liegg.history]
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


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--epochs", "--max_epochs", "--max-epochs", dest="epochs", type=int, help="default 6")
    add("--seed", type=int, default=0, help="seed of data, split and weights")
    add("--logdir", default="runs/rotated_digits", help="TensorBoard root")
    add("--control", action=argparse.BooleanOptionalAction, default=True, help="upright run too")
    add("--fast", action="store_true", help="tiny run for smoke tests")
    add("--json", type=Path, default=None, help="write the final numbers here")
    add("--width", type=int, help="hidden units (default 256)")
    add("--depth", type=int, help="hidden layers (default 4)")
    add("--lr", type=float, default=2e-3, help="peak Adam learning rate")
    add("--batch-size", type=int, default=128)
    add("--blur-sigma", type=float, default=1.5, help="blur in pixels")
    add("--copies", type=int, help="rotated copies per training digit (default 24)")
    add("--num-samples", type=int, help="LieGG samples (<= validation set)")
    add("--threads", type=int, default=1, help="torch threads (one is fastest for this model)")
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
    print(
        "\nSee the generators, spectra and filmstrips:\n"
        f"  make tensorboard TB_LOGDIR={logdir}   (or: .venv/bin/tensorboard --logdir {logdir})"
    )
    print(f"Total time: {summary['total_seconds']:.1f} s")
    return summary


if __name__ == "__main__":
    main()
