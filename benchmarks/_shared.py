"""What the benchmarks share: timing, per-round ratios, the floor, two MLPs, the run's setting.

Imported as ``benchmarks._shared``: run the benchmarks from the repository root as
``python -m benchmarks.<script>`` (no ``sys.path`` editing).
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn


def mlp_image(hidden: int = 128, depth: int = 4, classes: int = 10, side: int = 28) -> nn.Module:
    """784 -> 128 x 4 (ReLU) -> 10 on (N, 1, 28, 28) images; the model flattens."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = side * side
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def o5_mlp(channels: int = 32, outputs: int = 1) -> nn.Module:
    """EMLP's MLP baseline for the O(5) task: 10 -> 32 -> 32 -> outputs, two SiLU nonlinearities.

    ``outputs=5``: the O(5) task with a vector target.
    """
    return nn.Sequential(
        nn.Linear(10, channels),
        nn.SiLU(),
        nn.Linear(channels, channels),
        nn.SiLU(),
        nn.Linear(channels, outputs),
    )


def floor(model: nn.Module, x: Tensor) -> Tensor:
    """One forward and one backward to the inputs (summed outputs): the least any method pays."""
    xi = x.detach().requires_grad_(True)
    out = model(xi)
    (g,) = torch.autograd.grad(out, xi, torch.ones_like(out))
    return g


def time_interleaved(
    fns: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Seconds per call of each function; every round runs every function once.

    ``clock``: wall time by default; ``time.process_time`` counts this process's CPU time
    only (all its threads), which a machine shared with other jobs disturbs less.

    The order is shuffled in every round (seeded): on a shared VM a call runs slower after an
    idle spell or after a call that faults in much memory (the naive baselines), so a fixed
    order would bill that to whichever method always follows.
    """
    for _ in range(warmup):
        for f in fns.values():
            f()
    order = list(fns)
    rng = random.Random(0)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        rng.shuffle(order)
        for name in order:
            t0 = clock()
            fns[name]()
            times[name].append(clock() - t0)
    return times


def median_ratio(a: list[float], b: list[float]) -> float:
    """Median over rounds of a / b measured in the same round.

    Load that drifts slower than a round cancels out (the JSON also keeps the ratio of medians).
    """
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def environment(fast: bool, repeats: int, **extra: object) -> dict:
    """Versions, threads, CPUs and the load average at the start (plus ``extra``) of a run."""
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        **extra,
        "fast": fast,
        "repeats": repeats,
        "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
