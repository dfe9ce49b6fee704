"""Cost of the symmetry penalty: a training step with ``SymmetryRegularizer`` against a plain one.

One optimizer step (cross-entropy, Adam) on a batch of 256 images 28x28 for the benchmark MLP
(784 -> 128 x 4 -> 10) and the small CNN of ``bench_liegg.py``, plain and with the rotation
penalty (``ImageAction()``, reference ``"rotation2d"``) on ``num_samples`` 16 and 64, with
``relative`` on (all 4 directions of gl(2)) and off (the 1 rotation direction), computed by
both engines of ``symmetry_loss`` (``"autograd"``: batched double backward; ``"functorch"``:
vmapped ``torch.func.jvp``) and, with ``--engines ... compiled``, ``compile=True`` (its
compilation runs in the warm-up round, outside the timings), on 1 and 2 threads. All variants
of one setting run interleaved in shuffled order (``time_interleaved``); the result is the
median over rounds of (step with penalty) / (plain step) within a round.

    python -m benchmarks.bench_steer                 # a few minutes on 2 cores
    python -m benchmarks.bench_steer --clock cpu     # CPU time of this process (shared machine)
    python -m benchmarks.bench_steer --fast          # seconds, for the smoke test
    python -m benchmarks.bench_steer --json out.json
    python -m benchmarks.bench_steer --engines autograd functorch compiled --num_samples 64
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

import lightning_liegg as lg
from benchmarks._shared import environment, median_ratio, mlp_image, time_interleaved
from benchmarks.bench_liegg import small_cnn

HEADER = "| model | threads | num_samples | relative | engine | median ms | x plain step |"
TARGET = 1.5  # the defaults should keep a step within this factor of a plain one
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def step_fn(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, reg: nn.Module | None
) -> Callable[[], None]:
    """One Adam step on (x, y), with ``reg(model, x)`` added to the loss when given."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def run() -> None:
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        if reg is not None:
            loss = loss + reg(model, x)
        loss.backward()
        opt.step()

    return run


def measure(args: argparse.Namespace) -> list[dict]:
    """Rows of the table, one per (model, threads, num_samples, relative)."""
    rows = []
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (args.batch,), generator=g)
    for threads in args.threads:
        torch.set_num_threads(threads)
        for name, make in (("mlp 784-128x4-10", mlp_image), ("small cnn", small_cnn)):
            torch.manual_seed(0)
            fns: dict[str, Callable[[], None]] = {"plain": step_fn(make(), x, y, None)}
            for n in args.num_samples:
                for relative in (True, False):
                    for engine in args.engines:
                        reg = lg.SymmetryRegularizer(
                            lg.ImageAction(), "rotation2d", num_samples=n, relative=relative,
                            engine="auto" if engine == "compiled" else engine,
                            compile=engine == "compiled",
                        )  # fmt: skip
                        torch.manual_seed(0)
                        fns[f"{n}/{relative}/{engine}"] = step_fn(make(), x, y, reg)
            times = time_interleaved(fns, args.repeats, clock=CLOCKS[args.clock])
            plain = times["plain"]
            rows.append(dict(model=name, threads=threads, num_samples=0, relative=None,
                             engine=None, median_ms=1e3 * statistics.median(plain),
                             x_plain=1.0))  # fmt: skip
            for key, t in times.items():
                if key == "plain":
                    continue
                n, rel, engine = key.split("/")
                rows.append(
                    dict(
                        model=name, threads=threads, num_samples=int(n), relative=rel == "True",
                        engine=engine, median_ms=1e3 * statistics.median(t),
                        x_plain=median_ratio(t, plain),
                    )
                )  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, optionally write JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fast", action="store_true", help="tiny run for the smoke test")
    p.add_argument("--json", type=Path, default=None, help="write rows and setting here")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--clock", choices=tuple(CLOCKS), default="wall", help="what is timed")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument(
        "--engines", nargs="+", default=["autograd", "functorch"],
        choices=("autograd", "functorch", "compiled"),
        help="compiled: SymmetryRegularizer(compile=True), compiled in the warm-up round",
    )  # fmt: skip
    p.add_argument("--num_samples", type=int, nargs="+", default=[16, 64])
    args = p.parse_args(argv)
    args.batch = 256
    if args.fast:
        args.batch, args.threads, args.num_samples, args.repeats = 32, (1,), (16,), 2
    rows = measure(args)
    print(HEADER)
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        n = "-" if r["num_samples"] == 0 else r["num_samples"]
        rel = "-" if r["relative"] is None else r["relative"]
        print(
            f"| {r['model']} | {r['threads']} | {n} | {rel} | {r['engine'] or '-'} | "
            f"{r['median_ms']:.1f} | {r['x_plain']:.2f} |"
        )
    if args.json is not None:
        env = environment(args.fast, args.repeats, batch=args.batch, clock=args.clock)
        args.json.write_text(json.dumps({"setting": env, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
