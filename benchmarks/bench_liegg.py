#!/usr/bin/env python
"""Benchmarks of lightning-liegg: cost of the polarization matrix, and memory of the metric.

One run prints markdown tables of *ratios*; absolute times are for information only (the
machines this runs on are shared and noisy). Sections (``--only``):

* ``speed``: for each workload, the floor (one forward plus one backward to the inputs of the
  same model on the same batch), a naive baseline written here in the style of the LieGG
  paper's code (one backward per output, forward-difference image gradients, a dense
  broadcasting product with the coordinates), and ``lg.polarization_matrix`` with
  ``reduction="sum"`` and ``"none"``. Repetitions are interleaved (every round runs every
  method once, in a shuffled order) and ratios are medians over rounds of per-round ratios, so
  noise hits every method alike.
* ``memory``: peak RSS of a fresh child process streaming the ``LieGG`` metric over 10,000
  and over 100,000 samples (batches of 1,000 generated on the fly); the difference should be
  small, since the metric keeps only the (m, m) Gram matrix.
* ``profile`` (only when asked for): torch.profiler's top ops for the floor, liegg sum and
  liegg none of each workload (``--workload mlp`` to pick one).

To add a section (e.g. the overhead of ``LieGGCallback`` in a ``Trainer``), write a function
``section_<name>(args) -> dict`` that returns ``{"rows": [...], "table": str}`` and optionally
``"meta": {...}`` (see :func:`section_speed`), and register it in :data:`SECTIONS`; ``--only
<name>`` then runs it, ``--json`` saves its rows, and a row with ``"result": "FAIL"`` makes
``--strict`` exit 1.

Each speed table ends with a scheduling check: one parallel op timed with the chosen threads
and with one. When other processes keep the cores busy, every parallel region waits for a
descheduled thread, run times count regions more than work, and the check says so.

Usage::

    python -m benchmarks.bench_liegg                # full run (a few minutes on 2 cores)
    python -m benchmarks.bench_liegg --fast         # tiny sizes, a few seconds (smoke test)
    python -m benchmarks.bench_liegg --only speed --repeats 30 --json /tmp/bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]

import lightning_liegg as lg  # noqa: E402
from benchmarks._shared import (  # noqa: E402
    environment,
    floor,
    median_ratio,
    mlp_image,
    o5_mlp,
    time_interleaved,
)

THREADS = 2
HEADER = "| workload | method | median ms | x floor | x naive | target | result |"


# --------------------------------------------------------------------------------------------
# models and data
# --------------------------------------------------------------------------------------------
def small_cnn(channels: int = 8, classes: int = 10, side: int = 28) -> nn.Module:
    """conv3x3(c) - ReLU - pool2 - conv3x3(2c) - ReLU - pool2 - linear on (N, 1, 28, 28)."""
    c = channels
    return nn.Sequential(
        nn.Conv2d(1, c, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c, 2 * c, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * c * (side // 4) ** 2, classes),
    )


# --------------------------------------------------------------------------------------------
# the floor and the naive baselines (paper style)
# --------------------------------------------------------------------------------------------
def _input_grads(model: nn.Module, x: Tensor, per_output: bool):
    """Yield dF_k/dx for every output k (or for the summed output), one backward each.

    ``torch.autograd.grad`` w.r.t. the inputs only (the paper's ``.backward()`` would also
    accumulate parameter gradients, a slower baseline).
    """
    xi = x.detach().clone().requires_grad_(True)
    out = model(xi).reshape(x.shape[0], -1)
    if not per_output:
        out = out.sum(dim=1, keepdim=True)
    k = out.shape[1]
    for j in range(k):
        (g,) = torch.autograd.grad(out[:, j].sum(), xi, retain_graph=j < k - 1)
        yield g


def naive_image(model: nn.Module, x: Tensor, per_output: bool = True) -> Tensor:
    """The paper's image recipe, one backward per output (or one of the summed outputs).

    Forward differences, coordinates xy / (H // 2) - 1, and the dense product dF * dI * xy
    broadcast to (N, C, H-1, W-1, 2, 2) before summing, per output.
    """
    n, c, h, w = x.shape
    img = x.detach()
    d_x = img[:, :, :-1, 1:] - img[:, :, :-1, :-1]  # along the width
    d_y = img[:, :, 1:, :-1] - img[:, :, :-1, :-1]  # along the height
    d_img = torch.stack([d_x, d_y], dim=-1)  # (N, C, H-1, W-1, 2)
    ys, xs = torch.meshgrid(torch.arange(h - 1), torch.arange(w - 1), indexing="ij")
    xy = (torch.stack([xs, ys], dim=-1) / (h // 2) - 1).to(x.dtype)  # (H-1, W-1, 2)
    rows = []
    for g in _input_grads(model, x, per_output):
        d_f = g[:, :, :-1, :-1]
        dense = d_f[..., None, None] * d_img[..., None] * xy[None, None, :, :, None, :]
        rows.append(dense.reshape(n, -1, 2, 2).sum(dim=1).reshape(n, 4))
    return torch.stack(rows, dim=1).reshape(-1, 4)


def naive_vector(model: nn.Module, x: Tensor, per_output: bool = True, dim: int = 5) -> Tensor:
    """The paper's vector recipe: per output, sum over vectors c of bmm(dF/dx_c, x_c^T)."""
    n = x.shape[0]
    xv = x.detach().reshape(n, -1, dim)
    rows = []
    for g in _input_grads(model, x, per_output):
        gv = g.reshape(n, -1, dim)
        rows.append(
            sum(torch.bmm(gv[:, c, :, None], xv[:, c, None, :]) for c in range(xv.shape[1]))
        )
    return torch.stack(rows, dim=1).reshape(-1, dim * dim)


# --------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------
@dataclass
class Workload:
    """A model, a batch, an action, its naive baseline, and the targets (if any)."""

    name: str
    model: nn.Module
    x: Tensor
    action: lg.Action
    naive: Callable[..., Tensor]
    outputs: int
    targets: dict[str, list[tuple[str, str, float]]] = field(default_factory=dict)


def build_workloads(fast: bool) -> list[Workload]:
    torch.manual_seed(0)
    n_img, n_cnn, n_vec = (64, 16, 256) if fast else (2048, 512, 10_000)
    out = []
    model = mlp_image(hidden=32 if fast else 128).eval()
    out.append(
        Workload(
            "mlp-image 784-128x4-10" if not fast else "mlp-image (fast)",
            model,
            torch.rand(n_img, 1, 28, 28),
            lg.ImageAction(),
            naive_image,
            10,
            # (what, comparison, bound): ratio to floor / speed-up over naive
            targets={
                "sum": [("floor", "<=", 1.25)],
                "none": [("floor", "<=", 2.75), ("speedup", ">=", 3.0)],
            },
        )
    )
    model = small_cnn(channels=4 if fast else 8).eval()
    out.append(
        Workload(
            "cnn-image 28x28" if not fast else "cnn-image (fast)",
            model,
            torch.rand(n_cnn, 1, 28, 28),
            lg.ImageAction(),
            naive_image,
            10,
        )
    )
    model = o5_mlp().eval()
    out.append(
        Workload(
            "o5-mlp 10-32x2-1" if not fast else "o5-mlp (fast)",
            model,
            torch.randn(n_vec, 10),
            lg.VectorAction(dim=5, channels=2),
            naive_vector,
            1,
        )
    )
    return out


def methods(w: Workload) -> dict[str, Callable[[], object]]:
    mode = "forward" if w.action.dim < w.outputs else "reverse"
    passes = f"{w.action.dim} JVPs" if mode == "forward" else f"{w.outputs} VJPs"
    return {
        "floor (fwd+bwd)": lambda: floor(w.model, w.x),
        "naive sum (paper)": lambda: w.naive(w.model, w.x, per_output=False),
        "naive none": lambda: w.naive(w.model, w.x, per_output=True),
        "liegg sum": lambda: lg.polarization_matrix(w.model, w.x, w.action, reduction="sum"),
        f"liegg none ({passes})": lambda: lg.polarization_matrix(
            w.model, w.x, w.action, reduction="none"
        ),
    }


def _check(value: float, op: str, bound: float) -> bool:
    return value <= bound if op == "<=" else value >= bound


def scheduling_check(threads: int, repeats: int = 25) -> dict:
    """Time one parallel elementwise op (1M floats) with ``threads`` threads and with one.

    On an idle machine the threaded op is faster. When other processes keep the cores busy,
    each parallel region waits for a descheduled thread (up to a scheduler time slice, ~ms), so
    run times count parallel regions more than work, and ratios between methods drift with the
    load. The ratio printed says which regime a run was in.
    """
    a = torch.rand(1 << 20)

    def med() -> float:
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.add(a, 1.0)
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    torch.set_num_threads(1)
    single = med()
    torch.set_num_threads(threads)
    multi = med()
    return {
        "threads": threads,
        "ms_threaded": 1e3 * multi,
        "ms_single": 1e3 * single,
        "slowdown": multi / single,
    }


def _describe_check(c: dict) -> str:
    verdict = "OVERSUBSCRIBED, ratios unreliable" if c["slowdown"] > 2.0 else "ok"
    return (
        f"1M-float add {c['ms_threaded']:.2f} ms on {c['threads']} thread(s) vs "
        f"{c['ms_single']:.2f} ms on 1 (x{c['slowdown']:.1f}, {verdict})"
    )


def section_speed(args: argparse.Namespace) -> dict:
    rows = []
    checks: dict[str, list[dict]] = {}
    for w in build_workloads(args.fast):
        if args.workload and args.workload not in w.name:
            continue
        fns = methods(w)
        before = scheduling_check(args.threads)
        times = time_interleaved(fns, args.repeats, warmup=1 if args.fast else 2)
        checks[w.name] = [before, scheduling_check(args.threads)]
        names = list(fns)
        floor_t = times[names[0]]
        naive_of = {names[3]: names[1], names[4]: names[2]}  # sum -> naive sum, none -> naive none
        for name in names:
            reduction = (
                "sum"
                if name.startswith("liegg sum")
                else "none"
                if name.startswith("liegg none")
                else None
            )
            med = statistics.median(times[name])
            x_floor = median_ratio(times[name], floor_t)
            x_naive = median_ratio(times[name], times[naive_of[name]]) if name in naive_of else None
            goals = w.targets.get(reduction, []) if reduction else []
            texts, ok = [], True
            for what, op, bound in goals:
                if what == "floor":
                    texts.append(f"{op} {bound:g}x floor")
                    ok &= _check(x_floor, op, bound)
                else:  # speed-up over the naive baseline
                    texts.append(f"{op} {bound:g}x faster than naive")
                    ok &= _check(1.0 / x_naive, op, bound)
            result = (
                "-" if not goals else ("skip (--fast)" if args.fast else ("PASS" if ok else "FAIL"))
            )
            rows.append(
                {
                    "workload": w.name,
                    "method": name,
                    "n": int(w.x.shape[0]),
                    "outputs": w.outputs,
                    "generator_dims": w.action.dim,
                    "median_ms": 1e3 * med,
                    "iqr_ms": 1e3 * _iqr(times[name]),
                    "x_floor": x_floor,
                    "x_naive": x_naive,
                    "x_floor_of_medians": med / statistics.median(floor_t),
                    "target": "; ".join(texts),
                    "result": result,
                    "times_ms": [1e3 * t for t in times[name]],
                }
            )
    lines = [HEADER, "|---|---|---:|---:|---:|---|---|"]
    for r in rows:
        xn = "-" if r["x_naive"] is None else f"{r['x_naive']:.2f}"
        lines.append(
            f"| {r['workload']} (N={r['n']}) | {r['method']} | {r['median_ms']:.1f} "
            f"| {r['x_floor']:.2f} | {xn} | {r['target'] or '-'} | {r['result']} |"
        )
    lines.append("")
    lines.append(
        "x floor, x naive: medians over rounds of the per-round ratio (time / floor's time in "
        "the same round); x naive compares liegg sum with naive sum, liegg none with naive none."
    )
    lines.append("")
    lines.append("scheduling check (before, after each workload):")
    for name, (before, after) in checks.items():
        lines.append(f"- {name}: {_describe_check(before)}; {_describe_check(after)}")
    return {"rows": rows, "table": "\n".join(lines), "meta": {"scheduling_checks": checks}}


def _iqr(v: list[float]) -> float:
    if len(v) < 4:
        return 0.0
    q = statistics.quantiles(v, n=4)
    return q[2] - q[0]


# --------------------------------------------------------------------------------------------
# memory: a fresh child process per sample count
# --------------------------------------------------------------------------------------------
def _maxrss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024.0 if sys.platform != "darwin" else rss / 2**20  # KiB on Linux, B on macOS


def memory_child(num_samples: int, batch: int, fast: bool) -> dict:
    """Stream the LieGG metric over ``num_samples`` images made batch by batch; report RSS."""
    torch.manual_seed(0)
    model = mlp_image(hidden=32 if fast else 128).eval()
    metric = lg.LieGG(lg.ImageAction(), reduction="none")
    gen = torch.Generator().manual_seed(1)
    # one batch first, so imports, the first-call allocations of torch.func and the allocator's
    # pools count in the baseline and not as growth
    metric.update(model, torch.rand(batch, 1, 28, 28, generator=gen))
    base = _maxrss_mb()
    seen = batch
    while seen < num_samples:
        b = min(batch, num_samples - seen)
        metric.update(model, torch.rand(b, 1, 28, 28, generator=gen))
        seen += b
    report = metric.compute()
    return {
        "num_samples": seen,
        "batch": batch,
        "rss_after_first_batch_mb": base,
        "peak_rss_mb": _maxrss_mb(),
        "symmetry_variance": report.symmetry_variance,
    }


def memory_sizes(fast: bool) -> tuple[tuple[int, int], int, float]:
    """(sample counts, batch size, limit in MB on the difference of peak RSS)."""
    return ((500, 5_000), 250, 50.0) if fast else ((10_000, 100_000), 1_000, 50.0)


def spawn_memory_children(args: argparse.Namespace) -> list[tuple[int, subprocess.Popen]]:
    """Start one fresh process per N.

    ru_maxrss is per process (and tracemalloc would not see torch's allocations). They run side
    by side: peak RSS does not depend on the other's timing.
    """
    counts, batch, _ = memory_sizes(args.fast)
    procs = []
    for n in counts:
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.bench_liegg",
            "--memory-child",
            str(n),
            "--batch",
            str(batch),
            "--threads",
            str(args.threads),
        ] + (["--fast"] if args.fast else [])
        procs.append(
            (
                n,
                subprocess.Popen(
                    cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
                ),
            )
        )
    return procs


def section_memory(args: argparse.Namespace) -> dict:
    _, _, limit = memory_sizes(args.fast)
    procs = getattr(args, "memory_children", None) or spawn_memory_children(args)
    results = []
    for n, proc in procs:
        stdout, stderr = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"memory child for N={n} failed:\n{stdout}\n{stderr}")
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    small, big = results
    diff = big["peak_rss_mb"] - small["peak_rss_mb"]
    result = "skip (--fast)" if args.fast else ("PASS" if diff < limit else "FAIL")
    lines = [
        "| LieGG metric, mlp-image, reduction none | samples | batch | RSS after 1st batch MB "
        "| peak RSS MB | growth MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| fresh process | {r['num_samples']:,} | {r['batch']:,} "
            f"| {r['rss_after_first_batch_mb']:.1f} | {r['peak_rss_mb']:.1f} "
            f"| {r['peak_rss_mb'] - r['rss_after_first_batch_mb']:+.1f} |"
        )
    lines.append("")
    lines.append(
        f"peak RSS difference, {big['num_samples']:,} vs {small['num_samples']:,} samples: "
        f"{diff:+.1f} MB (target < {limit:g} MB): {result}"
    )
    row = {"runs": results, "peak_difference_mb": diff, "target_mb": limit, "result": result}
    return {"rows": [row], "table": "\n".join(lines)}


def section_isolation(args: argparse.Namespace) -> dict:
    """Per-call cost of the side-effect guard (eval switching and restoring every module).

    ``isolated()`` puts the model in eval mode and gives each module its mode back; models of
    many modules pay it at every call (every chunk of every evaluation).
    """
    from lightning_liegg.functional._autodiff.isolation import isolated

    rows, lines = [], ["| modules | isolated() per call, ms (median) |", "|---:|---:|"]
    for blocks in (3, 66, 666):
        model = nn.Sequential(*[nn.Sequential(nn.Linear(2, 2), nn.ReLU()) for _ in range(blocks)])
        count = len(list(model.modules()))
        times = []
        for _ in range(5 if args.fast else 50):
            t0 = time.perf_counter()
            with isolated(model, torch.device("cpu")):
                pass
            times.append(time.perf_counter() - t0)
        ms = 1e3 * statistics.median(times)
        rows.append({"modules": count, "ms": ms})
        lines.append(f"| {count:,} | {ms:.3f} |")
    return {"rows": rows, "table": "\n".join(lines)}


def section_profile(args: argparse.Namespace) -> dict:
    """torch.profiler: where the time of floor, liegg sum and liegg none goes (top ops)."""
    from torch.profiler import ProfilerActivity, profile

    rows, blocks = [], []
    for w in build_workloads(args.fast):
        if args.workload and args.workload not in w.name:
            continue
        for name, f in methods(w).items():
            if name.startswith("naive"):
                continue
            f()
            f()
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(3):
                    f()
            events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
            total = sum(e.self_cpu_time_total for e in events) or 1.0
            top = [
                {
                    "op": e.key,
                    "self_ms": e.self_cpu_time_total / 3e3,
                    "share": e.self_cpu_time_total / total,
                }
                for e in events[:8]
            ]
            rows.append({"workload": w.name, "method": name, "self_ms": total / 3e3, "top": top})
            ops = ", ".join(f"{t['op']} {100 * t['share']:.0f}%" for t in top)
            blocks.append(f"| {w.name} | {name} | {total / 3e3:.1f} | {ops} |")
    lines = [
        "| workload | method | self CPU ms per call | top ops (share of self CPU) |",
        "|---|---|---:|---|",
    ]
    return {"rows": rows, "table": "\n".join(lines + blocks)}


#: name -> section runner; a later section (e.g. "callback") registers here. The default run
#: (no --only) runs DEFAULT_SECTIONS.
SECTIONS: dict[str, Callable[[argparse.Namespace], dict]] = {
    "speed": section_speed,
    "memory": section_memory,
    "isolation": section_isolation,
    "profile": section_profile,
}
DEFAULT_SECTIONS = ("speed", "memory", "isolation")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fast", action="store_true", help="tiny sizes, a few seconds (smoke test)")
    p.add_argument("--json", metavar="PATH", help="save the results as JSON")
    p.add_argument(
        "--only",
        default=",".join(DEFAULT_SECTIONS),
        help=f"comma-separated sections to run, from {', '.join(SECTIONS)} "
        f"(default: {','.join(DEFAULT_SECTIONS)})",
    )
    p.add_argument(
        "--repeats", type=int, default=None, help="timed rounds (default 21, 3 with --fast)"
    )
    p.add_argument(
        "--workload", default=None, help="speed: only workloads whose name contains this"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help=f"torch threads (default {THREADS}; 1 with --fast, whose timings mean nothing)",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when a target FAILs")
    p.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=1_000, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.fast else 21
    if args.threads is None:
        args.threads = 1 if args.fast else THREADS
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        p.error(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_child is not None:
        torch.set_num_threads(args.threads)
        print(json.dumps(memory_child(args.memory_child, args.batch, args.fast)))
        return 0
    torch.set_num_threads(args.threads)
    env = environment(args.fast, args.repeats, machine=platform.machine(), dtype="float32")
    print(
        f"# lightning-liegg benchmark: torch {env['torch']}, {env['threads']} threads, "
        f"{env['cpus']} CPUs, float32, {args.repeats} interleaved rounds, medians; "
        f"load average {env['loadavg_start']}"
    )
    results: dict = {"env": env}
    failed = False
    if args.fast and "memory" in args.sections:  # let the children's imports overlap the rest
        args.memory_children = spawn_memory_children(args)
    for name in args.sections:
        t0 = time.perf_counter()
        out = SECTIONS[name](args)
        print(f"\n## {name} ({time.perf_counter() - t0:.0f} s)\n")
        print(out["table"], flush=True)
        results[name] = out["rows"]
        if "meta" in out:
            results[f"{name}_meta"] = out["meta"]
        failed |= any(r.get("result") == "FAIL" for r in out["rows"])
    env["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(
        f"\nRatios are what to compare; ms are for information (load average at the end "
        f"{env['loadavg_end']})."
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
        print(f"saved {args.json}")
    return 1 if (failed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
