"""Does an so(5) penalty buy data efficiency on EMLP's O(5) regression?

EMLP's MLP baseline (10 -> 32 -> 32 -> 1, SiLU) is trained on few samples of the O(5)-invariant
target f(x1, x2) = sin|x1| - |x2|^3 / 2 + <x1, x2> / (|x1| |x2|), with and without
``lg.SymmetryRegularizer(VectorAction(dim=5, channels=2), "so(5)", weight=w)`` added to the MSE
(Adam, lr 3e-3, batches of 64, the penalty on the first 64 samples of each batch). For each
training-set size, weight and seed it reports the test MSE (2,000 fresh samples) and the so(5)
relative variance (the mean of ``reference_variance(relative=True)`` of ``lg.liegg`` on 512
test samples: the number the penalty lowers and the callback shows).

    python examples/steer_o5.py            # a few minutes on 2 CPU cores
    python examples/steer_o5.py --quick    # seconds (smoke test)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn

import lightning_liegg as lg
from lightning_liegg.datasets import o5_regression_data

ACTION = lg.VectorAction(dim=5, channels=2)


def mlp() -> nn.Module:
    """EMLP's MLP baseline: 10 -> 32 -> 32 -> 1 with two SiLU nonlinearities."""
    return nn.Sequential(
        nn.Linear(10, 32), nn.SiLU(), nn.Linear(32, 32), nn.SiLU(), nn.Linear(32, 1)
    )


def run(n_train: int, weight: float, seed: int, steps: int) -> dict[str, float]:
    """Train once; return test MSE and the so(5) relative variance."""
    x, y = o5_regression_data(n_train, seed=100 + seed)
    xt, yt = o5_regression_data(2000, seed=7)
    torch.manual_seed(seed)
    model = mlp()
    reg = lg.SymmetryRegularizer(ACTION, "so(5)", weight=weight, num_samples=64)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randperm(n_train, generator=g)[:64]
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(model(x[idx]), y[idx])
        if weight > 0:
            loss = loss + reg(model, x[idx])
        loss.backward()
        opt.step()
    with torch.no_grad():
        mse = float(nn.functional.mse_loss(model(xt), yt))
    rep = lg.liegg(model, xt[:512], ACTION, reference="so(5)")
    return {"test_mse": mse, "so5_relative_variance": float(rep.reference_variance(True).mean())}


def main(argv: list[str] | None = None) -> int:
    """Run the study and print one row per (training-set size, weight)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a tiny run for the smoke test")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    sizes, weights, seeds, steps = (128, 512), (0.0, 10.0), (0, 1, 2), 1000
    if args.quick:
        sizes, weights, seeds, steps = (128,), (0.0, 10.0), (0,), 20
    start = time.perf_counter()
    rows = []
    print("| train samples | weight | test MSE (mean +- sd) | so(5) relative variance |")
    print("|---|---|---|---|")
    for n in sizes:
        for w in weights:
            runs = [run(n, w, s, steps) for s in seeds]
            mse = [r["test_mse"] for r in runs]
            rv = [r["so5_relative_variance"] for r in runs]
            sd = statistics.stdev(mse) if len(mse) > 1 else 0.0
            rows.append({"n_train": n, "weight": w, "test_mse": mse, "relative_variance": rv})
            print(f"| {n} | {w:g} | {statistics.mean(mse):.3f} +- {sd:.3f} | "
                  f"{statistics.mean(rv):.2e} |", flush=True)  # fmt: skip
    print(f"({len(seeds)} seeds, {steps} steps each, {time.perf_counter() - start:.0f} s)")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
