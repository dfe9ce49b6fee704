#!/usr/bin/env python
"""Benchmark of the equivariance analysis: what an output action costs over invariance.

For each workload (a model with outputs that transform: vectors, images), the floor (one
forward plus one backward to the inputs), the invariance analysis ``lg.polarization_matrix(...,
reduction="none")`` and the equivariance analysis with ``output_action=`` on the same model and
batch are timed interleaved (every round runs each once, in a shuffled order); ratios are medians
over rounds of per-round ratios. The output action adds one cheap term per row (the output
tangents A_j . F(x)) and no pass, so the target is: equivariance x floor within 10% of
invariance x floor.

Usage::

    python -m benchmarks.bench_equivariance                 # full run (about a minute on 2 cores)
    python -m benchmarks.bench_equivariance --fast          # tiny sizes (smoke test)
    python -m benchmarks.bench_equivariance --repeats 40 --json /tmp/equiv.json --strict
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]

import lightning_liegg as lg  # noqa: E402
from benchmarks._shared import environment, floor, median_ratio, o5_mlp, time_interleaved  # noqa: E402

HEADER = "| workload | passes | method | median ms | x floor | x invariance | target | result |"
#: equivariance x floor over invariance x floor must stay below this
TARGET = 1.10


@dataclass
class Workload:
    """A model with transforming outputs, a batch, and the two actions."""

    name: str
    model: nn.Module
    x: Tensor
    action: lg.Action
    output_action: lg.Action


def point_cloud_mlp(points: int, hidden: int) -> nn.Module:
    """(N, points*3) -> hidden x 3 (SiLU) -> (N, 3): a force-like vector from a point cloud."""
    return nn.Sequential(
        nn.Linear(points * 3, hidden),
        nn.SiLU(),
        nn.Linear(hidden, hidden),
        nn.SiLU(),
        nn.Linear(hidden, hidden),
        nn.SiLU(),
        nn.Linear(hidden, 3),
    )


def denoiser(channels: int) -> nn.Module:
    """(N, 1, H, W) -> (N, 1, H, W): three 3x3 convolutions (image to image)."""
    c = channels
    return nn.Sequential(
        nn.Conv2d(1, c, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(c, c, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(c, 1, 3, padding=1),
    )


def build_workloads(fast: bool) -> list[Workload]:
    torch.manual_seed(0)
    n_cloud, n_o5, n_img = (64, 256, 8) if fast else (4096, 10_000, 256)
    points, hidden = (8, 32) if fast else (32, 128)
    side = 16 if fast else 28
    return [
        Workload(
            f"point-cloud mlp {points}x3 -> 3",
            point_cloud_mlp(points, hidden).eval(),
            torch.randn(n_cloud, points * 3),
            lg.VectorAction(dim=3, channels=points),
            lg.VectorAction(dim=3),
        ),
        Workload(
            "o5-mlp 10-32x2-5",
            o5_mlp(outputs=5).eval(),
            torch.randn(n_o5, 10),
            lg.VectorAction(dim=5, channels=2),
            lg.VectorAction(dim=5),
        ),
        Workload(
            f"cnn image-to-image {side}x{side}",
            denoiser(4 if fast else 8).eval(),
            torch.rand(n_img, 1, side, side),
            lg.ImageAction(),
            lg.ImageAction(),
        ),
    ]


def section(args: argparse.Namespace) -> dict:
    rows = []
    for w in build_workloads(args.fast):
        fns = {
            "floor (fwd+bwd)": lambda w=w: floor(w.model, w.x),
            "invariance": lambda w=w: lg.polarization_matrix(w.model, w.x, w.action),
            "equivariance": lambda w=w: lg.polarization_matrix(
                w.model, w.x, w.action, output_action=w.output_action
            ),
        }
        times = time_interleaved(fns, args.repeats, warmup=1 if args.fast else 2)
        k = int(w.model(w.x[:1]).numel())
        passes = f"{w.action.dim} JVPs" if w.action.dim < k else f"{k} VJPs"
        inv_floor = median_ratio(times["invariance"], times["floor (fwd+bwd)"])
        for name, t in times.items():
            x_floor = median_ratio(t, times["floor (fwd+bwd)"])
            x_inv = median_ratio(t, times["invariance"]) if name != "floor (fwd+bwd)" else None
            target, result = "-", "-"
            if name == "equivariance":
                target = f"x floor <= {TARGET:g} * invariance's"
                ok = x_floor <= TARGET * inv_floor
                result = "skip (--fast)" if args.fast else ("PASS" if ok else "FAIL")
            rows.append(
                {
                    "workload": w.name,
                    "n": int(w.x.shape[0]),
                    "passes": passes,
                    "method": name,
                    "median_ms": 1e3 * statistics.median(t),
                    "x_floor": x_floor,
                    "x_invariance": x_inv,
                    "equivariance_over_invariance_x_floor": x_floor / inv_floor
                    if name == "equivariance"
                    else None,
                    "target": target,
                    "result": result,
                    "times_ms": [1e3 * v for v in t],
                }
            )
    lines = [HEADER, "|---|---|---|---:|---:|---:|---|---|"]
    for r in rows:
        xi = "-" if r["x_invariance"] is None else f"{r['x_invariance']:.3f}"
        lines.append(
            f"| {r['workload']} (N={r['n']}) | {r['passes']} | {r['method']} | "
            f"{r['median_ms']:.1f} | {r['x_floor']:.2f} | {xi} | {r['target']} | {r['result']} |"
        )
    lines.append("")
    lines.append(
        "x floor, x invariance: medians over rounds of per-round time ratios; the target "
        "compares the equivariance analysis's ratio to the floor with the invariance one's."
    )
    return {"rows": rows, "table": "\n".join(lines)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fast", action="store_true", help="tiny sizes (a smoke test)")
    p.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default 20)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None, help="save the rows to this file")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.fast else 20
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    env = environment(args.fast, args.repeats)
    print(
        f"# lightning-liegg equivariance benchmark: torch {env['torch']}, {env['threads']} "
        f"threads, float32, {args.repeats} interleaved rounds; load average {env['loadavg_start']}"
    )
    out = section(args)
    print(out["table"], flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"env": env, "speed": out["rows"]}, indent=2))
        print(f"saved {args.json}")
    failed = any(r["result"] == "FAIL" for r in out["rows"])
    return 1 if (failed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
