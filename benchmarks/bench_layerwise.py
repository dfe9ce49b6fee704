#!/usr/bin/env python
"""Benchmark: the cost of analysing several layers next to the output (``layers=``).

Workload: the benchmark MLP of ``bench_liegg.py`` (784 -> 128 x 4 ReLU -> 10 on 28x28 images,
``ImageAction()``, forward mode, 2048 samples). Methods, each a full ``lg.liegg`` call:

* ``output``: the output alone;
* ``5 layers``: the same call with ``layers=`` five hidden representations (the first
  linear layer and the four ReLUs), all from the same vmapped JVP pass;
* ``5 layers, one pass each``: what the one-pass design saves: one ``lg.liegg`` per layer
  on the sub-network up to it, plus the output.

Rounds are interleaved (each round runs every method once, in a shuffled order) and the ratio
is the median over rounds of per-round ratios, so noise on a shared machine hits all alike.
Target: ``5 layers`` costs at most 1.5x ``output``.

Usage::

    python -m benchmarks.bench_layerwise              # full run (~1 minute on 2 cores)
    python -m benchmarks.bench_layerwise --fast       # tiny sizes, a smoke test (no verdict)
    python -m benchmarks.bench_layerwise --json out.json --strict   # exit 1 if the target fails
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

import lightning_liegg as lg  # noqa: E402
from benchmarks._shared import median_ratio, mlp_image, time_interleaved  # noqa: E402

TARGET = 1.5
LAYERS = ["1", "2", "4", "6", "8"]  # first Linear, then the four ReLUs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved rounds")
    parser.add_argument("--json", type=Path, default=None, help="save the rows here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target fails")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    n, hidden = (32, 16) if args.fast else (2048, 128)
    repeats = args.repeats or (2 if args.fast else 15)
    model = mlp_image(hidden=hidden).eval()
    x = torch.rand(n, 1, 28, 28)
    action = lg.ImageAction()

    def output() -> object:
        return lg.liegg(model, x, action, ad_mode="forward")

    def layered() -> object:
        return lg.liegg(model, x, action, ad_mode="forward", layers=LAYERS)

    def separate() -> object:
        for name in LAYERS:
            lg.liegg(model[: int(name) + 1], x, action, ad_mode="forward")
        return lg.liegg(model, x, action, ad_mode="forward")

    methods: dict[str, Callable[[], object]] = {
        "output": output,
        "5 layers": layered,
        "5 layers, one pass each": separate,
    }
    times = time_interleaved(methods, repeats)
    rows = []
    for name in methods:
        rows.append(
            {
                "method": name,
                "median_ms": 1000 * statistics.median(times[name]),
                "x_output": median_ratio(times[name], times["output"]),
            }
        )
    ratio = rows[1]["x_output"]
    verdict = "n/a (--fast)" if args.fast else ("PASS" if ratio <= TARGET else "FAIL")
    rows[1]["target"], rows[1]["result"] = f"<= {TARGET}", verdict
    workload = f"mlp-image 784-{hidden}x4-10, N={n}, ImageAction, forward mode"
    print(f"### layers= cost: {workload} ({repeats} interleaved rounds, torch {torch.__version__})")
    print()
    print("| method | median ms | x output | target | result |")
    print("|---|---:|---:|---|---|")
    for r in rows:
        print(
            f"| {r['method']} | {r['median_ms']:.1f} | {r['x_output']:.2f} | "
            f"{r.get('target', '')} | {r.get('result', '')} |"
        )
    if args.json is not None:
        args.json.write_text(json.dumps({"workload": workload, "rows": rows}, indent=1))
    return 1 if args.strict and verdict == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
