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

``--tradeoff`` instead trains with weight 10 at ``num_samples`` 64 and 16 and
``every_n_steps`` 1 and 4 (and weight 40 every 4 steps) and reports the same numbers with the
training's CPU time relative to the run without penalty.

    python examples/steer_digits.py              # a few minutes on 2 CPU cores
    python examples/steer_digits.py --tradeoff   # a few minutes more
    python examples/steer_digits.py --quick      # seconds (smoke test)
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


def run(
    weight: float,
    seed: int,
    epochs: int,
    limit: int | None,
    num_samples: int = 64,
    every_n_steps: int = 1,
) -> dict[str, float]:
    """Train once; return the rotation's relative variance, three accuracies, CPU seconds."""
    x, y = rotated_digits("train", rotate=False, blur_sigma=1.5, limit=limit)
    xv, yv = rotated_digits("test", rotate=False, blur_sigma=1.5)
    torch.manual_seed(seed)
    model = mlp()
    reg = lg.SymmetryRegularizer(
        ACTION, "rotation2d", weight=weight, num_samples=num_samples, every_n_steps=every_n_steps
    )
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(seed)
    cpu = time.process_time()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(64):
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            if weight > 0:
                loss = loss + reg(model, x[idx])
            loss.backward()
            opt.step()
    cpu = time.process_time() - cpu
    model.eval()
    rep = lg.liegg(model, xv[:256], ACTION, reference="rotation2d")
    return {
        "relative_variance": float(rep.reference_variance(relative=True).mean()),
        "val_acc": accuracy(model, xv, yv),
        "rot30_acc": accuracy(model, rotated(xv, 30.0, 1000 + seed), yv),
        "rot180_acc": accuracy(model, rotated(xv, 180.0, 2000 + seed), yv),
        "train_cpu_s": cpu,
    }


def cell(values: list[float], fmt: str) -> str:
    """``mean +- sd`` of ``values`` (sd 0 for one value)."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):{fmt}} +- {sd:{fmt}}"


def tradeoff(args: argparse.Namespace) -> int:
    """How ``num_samples`` and ``every_n_steps`` trade training cost for the penalty's effect."""
    torch.set_num_threads(1)
    settings = [
        (0.0, 64, 1),
        (10.0, 64, 1),
        (10.0, 16, 1),
        (10.0, 64, 4),
        (40.0, 64, 4),
        (10.0, 16, 4),
    ]
    seeds, epochs, limit = range(args.seeds), args.epochs, None
    if args.quick:
        settings, seeds, epochs, limit = settings[:2], range(1), 1, 128
    rows, base = [], None
    print(
        "| weight | num_samples | every_n_steps | rotation relative variance | val acc "
        "| acc rotated +-30 deg | training CPU time x no penalty |"
    )
    print("|---|---|---|---|---|---|---|")
    for w, n, every in settings:
        runs = [run(w, s, epochs, limit, n, every) for s in seeds]
        cpu = statistics.mean(r["train_cpu_s"] for r in runs)
        base = cpu if base is None else base
        row = {"weight": w, "num_samples": n, "every_n_steps": every, "runs": runs}
        rows.append(row)
        print(
            f"| {w:g} | {n} | {every} | {cell([r['relative_variance'] for r in runs], '.2e')} | "
            f"{cell([r['val_acc'] for r in runs], '.3f')} | "
            f"{cell([r['rot30_acc'] for r in runs], '.3f')} | {cpu / base:.2f} |",
            flush=True,
        )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the study and print one row per weight (mean +- sd over seeds)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a tiny run for the smoke test")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--weights", type=float, nargs="+", default=[0.0, 1.0, 10.0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument(
        "--tradeoff",
        action="store_true",
        help="instead: weight 10 (40) with num_samples 16/64, every_n_steps 1/4, against none",
    )
    args = p.parse_args(argv)
    if args.tradeoff:
        return tradeoff(args)
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
