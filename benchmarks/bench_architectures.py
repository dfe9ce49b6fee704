#!/usr/bin/env python
"""Cost of LieGG on real architectures at realistic sizes: a ResNet-style CNN and a ViT.

Both models take 64 x 64 RGB images (10 classes); the analysis runs on 512 samples with
``ImageAction()`` (4 generator coordinates). For each model one run prints:

* seconds per analysis (``lg.liegg``) for ``reduction="none"`` and ``"sum"`` (``ad_mode="auto"``;
  ``"none"`` also in forward and reverse mode), and at the callback's defaults
  (``num_samples`` and ``batch_size`` read from ``LieGGCallback``'s signature);
* ratios to the forward+backward floor (one forward and one backward to the inputs of the
  same model on the same batch, eval mode) and to one training step (train mode,
  cross-entropy, backward to the parameters, SGD step) on the same batch;
* the share of an epoch of 50,000 images the callback costs with one evaluation per epoch:
  analysis at defaults / (50,000 / batch x training step + analysis at defaults);
* peak memory: the resident-set high-water mark (``VmHWM`` of ``/proc/self/status`` on Linux,
  ``ru_maxrss`` elsewhere) of a fresh child process that builds the model and data, then runs
  the method once, minus the same mark before the method (MiB). Resident set size, so it
  includes everything torch's CPU allocator holds.

Repetitions are interleaved (every round runs every method once, shuffled order) and ratios
are medians of per-round ratios (helpers from ``bench_liegg.py``). The targets from the
project's issue: ``none`` <= 3x floor, ``sum`` <= 1.5x floor, callback < 2% of an epoch.

Usage::

    python -m benchmarks.bench_architectures              # realistic sizes (minutes on 2 cores)
    python -m benchmarks.bench_architectures --fast       # tiny sizes, seconds (smoke test)
    python -m benchmarks.bench_architectures --json out.json --no-memory
"""

from __future__ import annotations

import argparse
import inspect
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

import lightning_liegg as lg  # noqa: E402
from benchmarks._shared import environment, median_ratio, time_interleaved  # noqa: E402
from benchmarks.bench_liegg import _describe_check, _maxrss_mb, scheduling_check  # noqa: E402

THREADS = 2
EPOCH_IMAGES = 50_000
HEADER = "| model | method | median s | x floor | x train step | peak RSS MiB | target | result |"


# --------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------
class Block(nn.Module):
    """Basic residual block: two 3x3 convolutions with BatchNorm, projection when needed."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: Tensor) -> Tensor:
        """(N, c_in, H, W) -> (N, c_out, H / stride, W / stride)."""
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.skip(x))


class ResNet(nn.Module):
    """Stride-2 stem, one residual block per stage (strides 1, 2, 2), pooling, linear head."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64), classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 3, 2, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
        )
        blocks, c = [], widths[0]
        for i, w in enumerate(widths):
            blocks.append(Block(c, w, 1 if i == 0 else 2))
            c = w
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(c, classes)

    def forward(self, x: Tensor) -> Tensor:
        """Images (N, 3, H, W) -> logits (N, classes)."""
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


class ViT(nn.Module):
    """Patch embedding, class token, nn.TransformerEncoder (GELU, pre-norm), LayerNorm head."""

    def __init__(
        self, side: int = 64, patch: int = 8, dim: int = 96, depth: int = 4, heads: int = 4
    ) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, dim, patch, patch)
        tokens = (side // patch) ** 2 + 1
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, 2 * dim, dropout=0.1, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x: Tensor) -> Tensor:
        """Images (N, 3, side, side) -> logits (N, 10)."""
        t = self.embed(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(x.shape[0], -1, -1), t], dim=1) + self.pos
        return self.head(self.norm(self.encoder(t)[:, 0]))


def build(name: str, fast: bool) -> tuple[nn.Module, Tensor, Tensor]:
    """The model, smooth random images (N, 3, side, side) and labels, all seeded."""
    torch.manual_seed(0)
    side, n = (16, 16) if fast else (64, 512)
    if name == "resnet":
        model: nn.Module = ResNet((4, 8, 8) if fast else (16, 32, 64))
    elif name == "vit":
        model = ViT(side, 4, 16, 1, 2) if fast else ViT(side)
    else:
        raise ValueError(f"unknown model {name!r}")
    coarse = torch.randn(n, 3, side // 4, side // 4)
    x = F.interpolate(coarse, size=(side, side), mode="bilinear", align_corners=True)
    y = torch.randint(0, 10, (n,))
    return model, x, y


# --------------------------------------------------------------------------------------------
# methods
# --------------------------------------------------------------------------------------------
def callback_defaults() -> tuple[int, int]:
    """``num_samples`` and ``chunk_size`` defaults of ``LieGGCallback``."""
    params = inspect.signature(lg.LieGGCallback.__init__).parameters
    return int(params["num_samples"].default), int(params["chunk_size"].default)


def methods(model: nn.Module, x: Tensor, y: Tensor) -> dict[str, Callable[[], object]]:
    action = lg.ImageAction()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    num_samples, batch_size = callback_defaults()

    def floor() -> None:
        model.eval()
        xi = x.detach().requires_grad_(True)
        out = model(xi)
        torch.autograd.grad(out, xi, torch.ones_like(out))

    def train_step() -> None:
        model.train()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    def analysis(reduction: str, mode: str = "auto", batch: int | None = None) -> Callable:
        def run() -> None:
            model.eval()
            lg.liegg(
                model,
                x[:num_samples] if batch else x,
                action,
                reduction,
                chunk_size=batch,
                ad_mode=mode,
            )

        return run

    return {
        "floor (fwd+bwd)": floor,
        "train step": train_step,
        "liegg none": analysis("none"),
        "liegg none forward": analysis("none", "forward"),
        "liegg none reverse": analysis("none", "reverse"),
        "liegg sum": analysis("sum"),
        "callback defaults": analysis("none", "auto", batch_size),
    }


MEMORY_METHODS = ("floor (fwd+bwd)", "liegg none", "train step", "liegg sum", "callback defaults")
TARGETS = {"liegg none": ("<=", 3.0), "liegg sum": ("<=", 1.5)}


# --------------------------------------------------------------------------------------------
# memory: one fresh child process per (model, method)
# --------------------------------------------------------------------------------------------
def _peak_rss_mb() -> float:
    """Peak resident set size of this address space (MiB).

    ``VmHWM`` from ``/proc/self/status`` on Linux: ``ru_maxrss`` survives ``execve``, so a child
    started by a large parent would report the parent's peak. Elsewhere ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return _maxrss_mb()


def memory_child(name: str, method: str, fast: bool) -> dict:
    model, x, y = build(name, fast)
    fn = methods(model, x, y)[method]
    before = _peak_rss_mb()
    fn()
    return {"peak_rss_delta_mb": _peak_rss_mb() - before, "baseline_mb": before}


def measure_memory(name: str, names: list[str], args: argparse.Namespace) -> dict[str, float]:
    out = {}
    for method in names:
        child = "benchmarks.bench_architectures"
        cmd = [sys.executable, "-m", child, "--memory-child", name, method, "--threads", "1"]
        if args.fast:
            cmd.append("--fast")
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=900, check=False, cwd=ROOT
        )
        if proc.returncode != 0:
            raise RuntimeError(f"memory child {name}/{method} failed:\n{proc.stderr[-2000:]}")
        out[method] = json.loads(proc.stdout.strip().splitlines()[-1])["peak_rss_delta_mb"]
    return out


# --------------------------------------------------------------------------------------------
# one model
# --------------------------------------------------------------------------------------------
def bench_model(name: str, args: argparse.Namespace) -> dict:
    model, x, y = build(name, args.fast)
    fns = methods(model, x, y)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    times = time_interleaved(fns, args.repeats)
    model.load_state_dict(state)  # training steps changed it; not needed further, but tidy
    measured = MEMORY_METHODS[:2] if args.fast else MEMORY_METHODS
    memory = measure_memory(name, list(measured), args) if args.memory else {}
    floor_t, step_t = times["floor (fwd+bwd)"], times["train step"]
    rows = []
    for method, ts in times.items():
        row = {
            "model": name,
            "method": method,
            "median_s": sorted(ts)[len(ts) // 2],
            "x_floor": median_ratio(ts, floor_t),
            "x_train_step": median_ratio(ts, step_t),
            "peak_rss_delta_mb": memory.get(method),
        }
        if method in TARGETS:
            op, bound = TARGETS[method]
            row["target"] = f"x floor {op} {bound}"
            row["result"] = "PASS" if row["x_floor"] <= bound else "FAIL"
        rows.append(row)
    num_samples, batch_size = callback_defaults()
    steps = EPOCH_IMAGES / x.shape[0]
    med = {r["method"]: r["median_s"] for r in rows}
    epoch_s = steps * med["train step"]
    share = med["callback defaults"] / (epoch_s + med["callback defaults"])
    callback = {
        "model": name,
        "method": "callback share of an epoch",
        "median_s": med["callback defaults"],
        "epoch_s_estimate": epoch_s,
        "share": share,
        "target": "< 2%",
        "result": "PASS" if share < 0.02 else "FAIL",
        "num_samples": num_samples,
        "batch_size": batch_size,
    }
    return {"rows": rows, "callback": callback, "batch": x.shape[0], "side": x.shape[-1]}


def table(results: list[dict]) -> str:
    lines = [HEADER, HEADER_RULE]
    for res in results:
        for r in res["rows"]:
            mem = "-" if r["peak_rss_delta_mb"] is None else f"{r['peak_rss_delta_mb']:.0f}"
            lines.append(
                f"| {r['model']} | {r['method']} | {r['median_s']:.3f} | {r['x_floor']:.2f} | "
                f"{r['x_train_step']:.2f} | {mem} | {r.get('target', '')} | "
                f"{r.get('result', '')} |"
            )
    lines.append("")
    lines.append(
        "| model | analysis at callback defaults s | epoch of 50,000 s (est.) | share | "
        + "target | result |"
    )
    lines.append("|---|---|---|---|---|---|")
    for res in results:
        c = res["callback"]
        lines.append(
            f"| {c['model']} | {c['median_s']:.3f} | {c['epoch_s_estimate']:.1f} | "
            f"{100 * c['share']:.2f}% | {c['target']} | {c['result']} |"
        )
    return "\n".join(lines)


HEADER_RULE = "|---|---|---|---|---|---|---|---|"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fast", action="store_true", help="tiny sizes, seconds (smoke test)")
    p.add_argument("--json", metavar="PATH", help="save the results as JSON")
    p.add_argument("--models", default="resnet,vit", help="comma-separated: resnet, vit")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5; 2 fast)")
    p.add_argument("--threads", type=int, default=None, help=f"torch threads (default {THREADS})")
    p.add_argument("--no-memory", dest="memory", action="store_false", help="skip memory")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target FAILs")
    p.add_argument("--memory-child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.fast else 5
    if args.threads is None:
        args.threads = 1 if args.fast else THREADS
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.memory_child is not None:
        print(json.dumps(memory_child(*args.memory_child, args.fast)))
        return 0
    env = environment(
        args.fast,
        args.repeats,
        machine=platform.machine(),
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    )
    print(
        f"# lightning-liegg architectures benchmark: torch {env['torch']}, {env['threads']} "
        f"threads, {env['cpus']} CPUs, float32, {args.repeats} interleaved rounds, medians; "
        f"load average {env['loadavg_start']}; {env['date']}"
    )
    results = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        res = bench_model(name, args)
        print(f"\n## {name}: {res['batch']} samples of 3 x {res['side']} x {res['side']}")
        results.append(res)
    print()
    print(table(results))
    print(f"\nScheduling: {_describe_check(scheduling_check(args.threads))}")
    if args.json:
        Path(args.json).write_text(json.dumps({"env": env, "results": results}, indent=1))
    failed = any(
        r.get("result") == "FAIL" for res in results for r in [*res["rows"], res["callback"]]
    )
    return 1 if (failed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
