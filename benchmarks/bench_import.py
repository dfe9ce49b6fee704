"""Import time: ``import lightning_liegg`` against ``import torch``, in fresh processes.

Each round starts one fresh Python per variant, in turn: ``import torch`` alone, and
``import torch`` followed by ``import lightning_liegg`` (timed separately inside the process,
so interpreter start-up does not count). The result is the median over rounds of the ratio
(torch + lightning_liegg) / torch and of the difference in seconds; the target is a difference
of at most 1 s. Each run also lists which heavy modules ``import lightning_liegg`` loaded
(none of torchmetrics, matplotlib, scipy, Lightning is expected: they load on first use).

    python -m benchmarks.bench_import               # 7 rounds
    python -m benchmarks.bench_import --rounds 1    # the smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HEAVY = ("torchmetrics", "matplotlib", "scipy", "pytorch_lightning", "lightning", "tensorboard")

PROBE = """
import json, sys, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
if {package!r}:
    import lightning_liegg
t2 = time.perf_counter()
heavy = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"torch": t1 - t0, "package": t2 - t1, "heavy": heavy}}))
"""

TARGET_S = 1.0


def probe(package: bool) -> dict:
    """One fresh interpreter: seconds for ``import torch`` and then ``lightning_liegg``."""
    code = PROBE.format(package=package, heavy=HEAVY)
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args(argv)
    rounds = []
    for _ in range(args.rounds):
        torch_only = probe(package=False)
        both = probe(package=True)
        total = both["torch"] + both["package"]
        rounds.append(
            {
                "torch_s": torch_only["torch"],
                "torch_and_package_s": total,
                "ratio": total / torch_only["torch"],
                "extra_s": total - torch_only["torch"],
                "package_alone_s": both["package"],
                "heavy": both["heavy"],
            }
        )
    result = {
        "rounds": rounds,
        "median_ratio": statistics.median(r["ratio"] for r in rounds),
        "median_extra_s": statistics.median(r["extra_s"] for r in rounds),
        "median_package_alone_s": statistics.median(r["package_alone_s"] for r in rounds),
        "heavy": sorted({m for r in rounds for m in r["heavy"]}),
        "target_extra_s": TARGET_S,
    }
    result["within_target"] = result["median_extra_s"] <= TARGET_S
    print("| measure | median |")
    print("| --- | --- |")
    print(f"| import torch (s) | {statistics.median(r['torch_s'] for r in rounds):.2f} |")
    print(
        "| import torch + lightning_liegg (s) | "
        f"{statistics.median(r['torch_and_package_s'] for r in rounds):.2f} |"
    )
    print(f"| ratio | {result['median_ratio']:.2f} |")
    print(f"| extra (s), target <= {TARGET_S:.0f} | {result['median_extra_s']:.2f} |")
    print(f"heavy modules loaded by the import: {result['heavy'] or 'none'}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
