"""Does a rotation penalty make an MLP on upright digits rotation invariant, and at what price?

The upright-digits control of ``rotated_digits.py`` learns no rotation symmetry (nothing in the
data asks for it). Here the same kind of MLP (784 -> 128 -> 128 -> 10, ReLU) is trained on
scikit-learn's upright digits (28x28, blurred; Adam, lr 2e-3, batches of 64) with and without
``lg.SymmetryRegularizer(lg.ImageAction(), "rotation2d", weight=w)`` (the first 64 samples of
each batch, every step, on the logits). For each weight and seed it reports:

- the rotation's relative variance: the mean of ``reference_variance(relative=True)`` of
  ``lg.liegg`` on 256 held-out digits (the number the penalty lowers and the callback shows);
- the validation accuracy on the held-out upright digits (360 of them, a fixed split);
- the accuracy on the same digits rotated by random angles within +-30 degrees and within
  +-180 degrees (``lg.datasets.rotate_images``).

    python examples/steer_digits.py            # a few minutes on 2 CPU cores
    python examples/steer_digits.py --quick    # seconds (smoke test)
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch
from torch import nn

import lightning_liegg as lg
from lightning_liegg.datasets import rotate_images, rotated_digits

ACTION = lg.ImageAction()


def mlp(width: int = 128) -> nn.Module:
    """784 -> width -> width -> 10, ReLU."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, 10),
    )


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of correct labels."""
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def rotated(x: torch.Tensor, max_degrees: float, seed: int) -> torch.Tensor:
    """``x`` rotated by uniform random angles in [-max_degrees, max_degrees]."""
    g = torch.Generator().manual_seed(seed)
    angles = (2 * torch.rand(len(x), generator=g, dtype=torch.float64) - 1) * math.radians(
        max_degrees
    )
    return rotate_images(x, angles).clamp(0, 1)


def run(weight: float, seed: int, epochs: int, limit: int | None) -> dict[str, float]:
    """Train once; return the rotation's relative variance and three accuracies."""
    x, y = rotated_digits("train", rotate=False, blur_sigma=1.5, limit=limit)
    xv, yv = rotated_digits("test", rotate=False, blur_sigma=1.5)
    torch.manual_seed(seed)
    model = mlp()
    reg = lg.SymmetryRegularizer(ACTION, "rotation2d", weight=weight, num_samples=64)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(64):
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            if weight > 0:
                loss = loss + reg(model, x[idx])
            loss.backward()
            opt.step()
    model.eval()
    rep = lg.liegg(model, xv[:256], ACTION, reference="rotation2d")
    return {
        "relative_variance": float(rep.reference_variance(relative=True).mean()),
        "val_acc": accuracy(model, xv, yv),
        "rot30_acc": accuracy(model, rotated(xv, 30.0, 1000 + seed), yv),
        "rot180_acc": accuracy(model, rotated(xv, 180.0, 2000 + seed), yv),
    }


def cell(values: list[float], fmt: str) -> str:
    """``mean +- sd`` of ``values`` (sd 0 for one value)."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):{fmt}} +- {sd:{fmt}}"


def main(argv: list[str] | None = None) -> int:
    """Run the study and print one row per weight (mean +- sd over seeds)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a tiny run for the smoke test")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--weights", type=float, nargs="+", default=[0.0, 1.0, 10.0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=20)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    weights, seeds, epochs, limit = args.weights, range(args.seeds), args.epochs, None
    if args.quick:
        weights, seeds, epochs, limit = [0.0, 10.0], range(1), 1, 128
    start = time.perf_counter()
    rows = []
    keys = ("relative_variance", "val_acc", "rot30_acc", "rot180_acc")
    print(
        "| weight | rotation relative variance | val acc | acc rotated +-30 deg "
        "| acc rotated +-180 deg |"
    )
    print("|---|---|---|---|---|")
    for w in weights:
        runs = [run(w, s, epochs, limit) for s in seeds]
        row = {"weight": w, **{k: [r[k] for r in runs] for k in keys}}
        rows.append(row)

        print(
            f"| {w:g} | {cell(row['relative_variance'], '.2e')} | "
            f"{cell(row['val_acc'], '.3f')} | {cell(row['rot30_acc'], '.3f')} | "
            f"{cell(row['rot180_acc'], '.3f')} |",
            flush=True,
        )
    print(f"({len(seeds)} seeds, {epochs} epochs each, {time.perf_counter() - start:.0f} s)")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
