#!/usr/bin/env python
"""Cost of ``compile=True`` against eager and the floor, compilation timed apart.

Two sections, one run:

* ``speed``: on the benchmark MLP (784-128x4-10, 2,048 images, float32) the floor (one forward
  plus one backward to the inputs), ``polarization_matrix`` eager and compiled, reductions
  "none" and "sum". Rounds interleaved (every round runs every method once, shuffled), ratios
  are medians of per-round ratios. The first compiled call of each setting (the compilation) is
  timed on its own. Targets (issue 25): "none" at most 2.9x the floor on one thread (3.3x on
  two), "sum" at most 1.15x.
* ``evaluations``: 20 analyses of the same samples with new weights before each (what the
  callback does at every evaluation), eager and compiled: total time, the compilation included.
* ``architectures``: the ResNet and the ViT of ``bench_architectures`` (512 images 64x64, the
  callback's ``num_samples``): the floor, ``liegg`` "none" eager and compiled, the
  compilation timed apart (skipped with ``--models ""``; not run with ``--fast`` unless
  ``--models`` is given).

Usage::

    python -m benchmarks.bench_compiled                  # full run (minutes on 2 busy cores)
    python -m benchmarks.bench_compiled --threads 2
    python -m benchmarks.bench_compiled --fast --json /tmp/c.json   # tiny sizes (smoke test)
    python -m benchmarks.bench_compiled --sections architectures --models vit --repeats 5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import torch

import lightning_liegg as lg
from benchmarks._shared import environment, floor, median_ratio, mlp_image, time_interleaved
from lightning_liegg.exceptions import LieGGWarning
from lightning_liegg.functional._autodiff import compiled as _compiled

TARGETS = {1: {"none": 2.9, "sum": 1.15}, 2: {"none": 3.3, "sum": 1.15}}


def section_speed(args: argparse.Namespace, model, x, action) -> list[dict]:
    compile_s = {}
    for reduction in ("none", "sum"):
        t0 = time.perf_counter()
        lg.polarization_matrix(model, x, action, reduction, compile=True)
        compile_s[reduction] = time.perf_counter() - t0
    fns = {"floor": lambda: floor(model, x)}
    for reduction in ("none", "sum"):
        for compiled in (False, True):
            name = f"{reduction} {'compiled' if compiled else 'eager'}"
            fns[name] = lambda r=reduction, c=compiled: lg.polarization_matrix(
                model, x, action, r, compile=c
            )
    times = time_interleaved(fns, repeats=args.repeats)
    rows = []
    target = TARGETS.get(args.threads, {})
    for name, ts in times.items():
        ratio = median_ratio(ts, times["floor"])
        reduction, _, kind = name.partition(" ")
        bound = target.get(reduction) if kind == "compiled" else None
        result = "-" if bound is None else ("PASS" if ratio <= bound else "FAIL")
        if args.fast and bound is not None:
            result = "n/a (--fast)"
        rows.append(
            {
                "method": name,
                "median_ms": 1000 * sorted(ts)[len(ts) // 2],
                "x_floor": ratio,
                "compile_s": compile_s.get(reduction) if kind == "compiled" else None,
                "target": bound,
                "result": result,
            }
        )
    return rows


def section_evaluations(args: argparse.Namespace, model, x, action) -> list[dict]:
    rows = []
    _compiled.clear_cache()
    for compiled in (False, True):
        net = mlp_image(hidden=args.hidden).eval()
        net.load_state_dict(model.state_dict())
        t0 = time.perf_counter()
        for _ in range(args.evaluations):
            with torch.no_grad():
                for p in net.parameters():
                    p.mul_(0.99)  # new weights, as after a training epoch
            lg.liegg(net, x, action, compile=compiled)
        total = time.perf_counter() - t0
        rows.append(
            {
                "method": f"{args.evaluations} evaluations, {'compiled' if compiled else 'eager'}",
                "total_s": total,
            }
        )
    rows[1]["x_eager"] = rows[1]["total_s"] / rows[0]["total_s"]
    return rows


def section_architectures(args: argparse.Namespace) -> list[dict]:
    """ResNet and ViT: floor, ``liegg`` "none" eager and compiled (x floor, compile s)."""
    from benchmarks.bench_architectures import build

    rows = []
    action = lg.ImageAction()
    for name in [m for m in args.models.split(",") if m]:
        model, x, _ = build(name, args.fast)
        model.eval()
        t0 = time.perf_counter()
        lg.liegg(model, x, action, compile=True)
        compile_s = time.perf_counter() - t0
        fns = {
            "floor": lambda m=model, x=x: floor(m, x),
            "none eager": lambda m=model, x=x: lg.liegg(m, x, action),
            "none compiled": lambda m=model, x=x: lg.liegg(m, x, action, compile=True),
        }
        times = time_interleaved(fns, repeats=args.arch_repeats)
        for method, ts in times.items():
            rows.append(
                {
                    "model": name,
                    "method": method,
                    "median_ms": 1000 * sorted(ts)[len(ts) // 2],
                    "x_floor": median_ratio(ts, times["floor"]),
                    "compile_s": compile_s if method == "none compiled" else None,
                }
            )
        ratio = median_ratio(times["none compiled"], times["none eager"])
        rows[-1]["x_eager"] = ratio
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--sections", default="speed,evaluations,architectures",
        help="comma-separated: speed, evaluations, architectures",
    )  # fmt: skip
    parser.add_argument("--models", default=None, help='resnet,vit (default); "" for none')
    parser.add_argument("--arch_repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if args.models is None:
        args.models = "" if args.fast else "resnet,vit"
    sections = set(args.sections.split(","))
    torch.set_num_threads(args.threads)
    args.repeats = args.repeats or (2 if args.fast else 20)
    args.hidden, n = (16, 32) if args.fast else (128, 2048)
    args.evaluations = 3 if args.fast else 20
    torch.manual_seed(0)
    model = mlp_image(hidden=args.hidden).eval()
    x = torch.rand(n, 1, 28, 28)
    action = lg.ImageAction()
    warnings.simplefilter("ignore", LieGGWarning)  # the "sum" warning, every call
    speed = section_speed(args, model, x, action) if "speed" in sections else []
    evaluations = section_evaluations(args, model, x, action) if "evaluations" in sections else []
    arch = section_architectures(args) if "architectures" in sections else []
    print(f"## compile=True on mlp-image 784-{args.hidden}x4-10, N={n}, {args.threads} thread(s)")
    print("| method | median ms | x floor | compile s | target | result |")
    print("|---|---|---|---|---|---|")
    for r in speed:
        c = "-" if r["compile_s"] is None else f"{r['compile_s']:.1f}"
        t = "-" if r["target"] is None else f"<= {r['target']}"
        print(
            f"| {r['method']} | {r['median_ms']:.1f} | {r['x_floor']:.2f} | {c} | {t} | "
            f"{r['result']} |"
        )
    print()
    print("| analyses with new weights | total s (compilation included) |")
    print("|---|---|")
    for r in evaluations:
        print(f"| {r['method']} | {r['total_s']:.1f} |")
    if arch:
        print()
        print(f"## liegg(compile=True) on the architectures benchmark's models, {args.threads} "
              f"thread(s), {args.arch_repeats} rounds")  # fmt: skip
        print("| model | method | median ms | x floor | compile s | compiled x eager |")
        print("|---|---|---|---|---|---|")
        for r in arch:
            c = "-" if r["compile_s"] is None else f"{r['compile_s']:.1f}"
            e = f"{r['x_eager']:.2f}" if "x_eager" in r else "-"
            print(
                f"| {r['model']} | {r['method']} | {r['median_ms']:.1f} | {r['x_floor']:.2f} | "
                f"{c} | {e} |"
            )
    if args.json is not None:
        meta = environment(args.fast, args.repeats)
        rows = speed + evaluations + arch
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
