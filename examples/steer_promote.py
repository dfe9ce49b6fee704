"""Promote mode: can a penalty that names no symmetry help a network find one nobody named?

The target is invariant to rotations about one random axis ``a`` in 3-D that the network is not
told: f(x) = sin(2 s) + r^2 / 2 + 0.3 s r with s = a . x and r = |x|. Within gl(3) its only
symmetry is the rotation about ``a`` (the skew matrix [a]_x): h must keep |x| (antisymmetric)
and a . x (a^T h = 0). An MLP (3 -> 32 -> 32 -> 1, SiLU; Adam, lr 3e-3, batches of 64, 256
training samples, 1,000 steps) is trained with

- no penalty;
- the promote penalty of ``lg.SymmetryRegularizer(lg.VectorAction(dim=3), reference=None,
  k=1, weight=w)``: the smallest relative eigenvalue of the Gram matrix of gl(3)
  (lambda_min / lambda_max), which rewards any one-dimensional symmetry;
- the nuclear-norm relaxation of Otto et al. (JMLR 2025), made scale free like the rest:
  ||E||_* / ||E||_2 = sum_i sigma_i / sigma_max of the polarization matrix E over gl(3), which
  rewards a low-rank Lie derivative (many symmetries) without a k.

Every 50 steps ``lg.liegg`` on 512 test samples gives the relative spectrum and the most
symmetric generator v. Reported per variant (mean over seeds): the gap lambda_2 / lambda_1 at
the end (larger: the symmetry stands out more), the alignment |<v, [a]_x>| / |[a]_x| at the end
(1: the rotation about ``a`` found), the first step at which v is aligned within 0.99 (earlier:
found sooner; "-" when never), and the test MSE (2,000 fresh samples).

    python examples/steer_promote.py            # a few minutes on 2 CPU cores
    python examples/steer_promote.py --quick    # seconds (smoke test)
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
from lightning_liegg.functional.steer import symmetry_rows

ACTION = lg.VectorAction(dim=3)
ALIGNED = 0.99  # |cos| between the found generator and [a]_x that counts as found ...
GAP = 10.0  # ... when the relative spectrum's gap lambda_2 / lambda_1 is at least this


def axis(seed: int = 0) -> torch.Tensor:
    """The hidden unit axis ``a`` (3,)."""
    a = torch.randn(3, generator=torch.Generator().manual_seed(seed))
    return a / a.norm()


def target(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """f(x) = sin(2 s) + r^2 / 2 + 0.3 s r, s = a . x, r = |x|: (N, 1)."""
    s, r = x @ a, x.norm(dim=1)
    return (torch.sin(2 * s) + 0.5 * r**2 + 0.3 * s * r).unsqueeze(1)


def skew(a: torch.Tensor) -> torch.Tensor:
    """[a]_x, the generator of rotations about ``a``, unit Frobenius norm (3, 3)."""
    h = torch.zeros(3, 3, dtype=torch.float64)
    h[0, 1], h[0, 2], h[1, 2] = -a[2], a[1], -a[0]
    h = h - h.T
    return h / h.norm()


def mlp() -> nn.Module:
    """3 -> 32 -> 32 -> 1, SiLU."""
    return nn.Sequential(
        nn.Linear(3, 32), nn.SiLU(), nn.Linear(32, 32), nn.SiLU(), nn.Linear(32, 1)
    )


def nuclear_loss(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """||E||_* / ||E||_2 of the polarization matrix over gl(3) on ``x`` (differentiable)."""
    rows = symmetry_rows(model, x, ACTION, ACTION.basis.to(x.dtype))  # (N, K, 9)
    sv = torch.linalg.svdvals(rows.reshape(-1, rows.shape[-1]).to(torch.float64))
    return (sv.sum() / sv[0].clamp_min(1e-300)).to(x.dtype)


def checkpoints(steps: int) -> set[int]:
    """Steps at which the spectrum is measured: every 10 up to 100, then every 50."""
    return set(range(0, min(steps, 100) + 1, 10)) | set(range(0, steps + 1, 50)) | {steps}


def run(method: str, weight: float, seed: int, steps: int, n_train: int) -> dict:
    """Train once; return the gap and alignment curves and the test MSE."""
    a = axis()
    g = torch.Generator().manual_seed(100 + seed)
    x = torch.randn(n_train, 3, generator=g)
    y = target(x, a)
    xt = torch.randn(2000, 3, generator=torch.Generator().manual_seed(7))
    yt = target(xt, a)
    truth = skew(a).flatten()
    torch.manual_seed(seed)
    model = mlp()
    reg = lg.SymmetryRegularizer(ACTION, None, k=1, weight=weight, num_samples=64)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    curve = []
    when = checkpoints(steps)
    for step in range(steps + 1):
        if step in when:
            rep = lg.liegg(model, xt[:512], ACTION)
            rel = rep.relative_spectrum
            v = rep.generators[0].flatten()
            curve.append(
                {
                    "step": step,
                    "gap": float(rel[1] / rel[0].clamp_min(1e-300)),
                    "alignment": float((v @ truth).abs()),
                }
            )
        if step == steps:
            break
        idx = torch.randperm(len(x), generator=g)[:64]
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(model(x[idx]), y[idx])
        if method == "smallest" and weight > 0:
            loss = loss + reg(model, x[idx])
        elif method == "nuclear" and weight > 0:
            loss = loss + weight * nuclear_loss(model, x[idx][:64])
        loss.backward()
        opt.step()
    with torch.no_grad():
        mse = float(nn.functional.mse_loss(model(xt), yt))
    found = next((c["step"] for c in curve if c["alignment"] >= ALIGNED and c["gap"] >= GAP), None)
    return {"curve": curve, "test_mse": mse, "found_at": found}


def main(argv: list[str] | None = None) -> int:
    """Run the study and print one row per (method, weight), means over seeds."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a tiny run for the smoke test")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--n-train", type=int, default=64)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    variants = [("none", 0.0), ("smallest", 1.0), ("smallest", 10.0), ("nuclear", 0.01),
                ("nuclear", 0.1)]  # fmt: skip
    seeds, steps = range(args.seeds), args.steps
    if args.quick:
        variants, seeds, steps = [("none", 0.0), ("smallest", 1.0), ("nuclear", 0.1)], [0], 20
    start = time.perf_counter()
    rows = []
    print(
        "| penalty | weight | gap l2/l1 at end | alignment at end | found at step (per seed) "
        "| test MSE |"
    )
    print("|---|---|---|---|---|---|")
    for method, w in variants:
        runs = [run(method, w, s, steps, args.n_train) for s in seeds]
        gap = [r["curve"][-1]["gap"] for r in runs]
        align = [r["curve"][-1]["alignment"] for r in runs]
        mse = [r["test_mse"] for r in runs]
        found = ", ".join("-" if r["found_at"] is None else str(r["found_at"]) for r in runs)
        rows.append({"method": method, "weight": w, "runs": runs})
        print(
            f"| {method} | {w:g} | {statistics.mean(gap):.3g} | {statistics.mean(align):.3f} | "
            f"{found} | {statistics.mean(mse):.4f} |",
            flush=True,
        )
    print(f"({len(seeds)} seeds, {steps} steps each, {time.perf_counter() - start:.0f} s)")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
