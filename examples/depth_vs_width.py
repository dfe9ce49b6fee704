"""Depth versus width: which MLPs learn the rotation symmetry of rotated digits better?

The LieGG paper (Moskalev et al., NeurIPS 2022) trains MLPs of varied depth and width on
rotated MNIST and finds that (1) deeper networks learn symmetries better than wider ones at
a similar parameter count and (2) better symmetry goes with better accuracy. This study
repeats that on ``RotatedDigitsDataModule``: scikit-learn's 8x8 digits (bundled, no
download), upsampled into 28x28 images, rotated by uniform random angles and blurred
(sigma 1.5 as in the paper), 1,150 training / 288 validation / 359 test images. Rotated MNIST
itself is not bundled, and 12 trainings on its 12,000 images do not fit a 10-minute budget
on two CPU cores; the small set does, at the price of noisier accuracies.

Every configuration is the paper's MLP (Linear without bias, Swish) on flattened images,
``depth`` hidden layers of ``width`` units, the width chosen so that all configurations have
about the same number of parameters as the shallowest one. Each is trained with several
seeds (Adam, lr 1e-3, as in the paper's notebook); the data are the same for every run.
``LieGGCallback`` follows the symmetry during training (its histories are saved as CSV);
the final numbers are LieGG on the training images, as in the paper, with ``ImageAction()``
(gl(2): rotation, scaling, two shears) and L2-normalised logits:

- symmetry variance with reduction "sum" (the paper's), and the relative variance
  sigma_min^2 / sigma_max^2 with reduction "none" (scale free, no cancellations);
- symmetry bias of the most symmetric generator against rotations (``rotation2d``);
- test accuracy.

It prints a table (seed mean +- std), Spearman correlations, and says whether each finding
reproduces; the figure and JSON go to ``--out``.

    python examples/depth_vs_width.py                # about 5 minutes on 2 CPU cores
    python examples/depth_vs_width.py --fast         # seconds (smoke test)
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter
from scipy.stats import spearmanr

import lightning_liegg as lg
from lightning_liegg.datasets import RotatedDigitsDataModule
from lightning_liegg.demos import DigitMLP

INPUTS, CLASSES = 28 * 28, 10
#: depths of the full study; widths follow from the parameter budget of (depth 1, width 128).
DEPTHS, BASE_WIDTH = (1, 2, 4, 8), 128
FAST_DEPTHS, FAST_BASE_WIDTH = (1, 4), 32


def num_params(depth: int, width: int) -> int:
    """Weights of a bias-free MLP with ``depth`` hidden layers of ``width`` units."""
    return INPUTS * width + (depth - 1) * width * width + width * CLASSES


def width_for(depth: int, budget: int) -> int:
    """The width that brings an MLP of ``depth`` hidden layers closest to ``budget`` weights."""
    a, b = depth - 1, INPUTS + CLASSES
    w = budget / b if a == 0 else (-b + math.sqrt(b * b + 4 * a * budget)) / (2 * a)
    return min(
        (max(1, math.floor(w)), math.ceil(w)), key=lambda v: abs(num_params(depth, v) - budget)
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="tiny study for smoke tests (seconds)")
    parser.add_argument(
        "--seeds", type=int, default=None, help="seeds per configuration (default 3; 2 with --fast)"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="training epochs (default 200, the paper's; 2 with --fast)",
    )
    parser.add_argument(
        "--out",
        type=str,
        default="runs/depth_vs_width",
        help="directory for the figure, CSVs and JSON",
    )
    parser.add_argument(
        "--json", type=str, default=None, help="also write the results as JSON to this path"
    )
    args = parser.parse_args(argv)
    args.seeds = args.seeds if args.seeds is not None else (2 if args.fast else 3)
    args.epochs = args.epochs if args.epochs is not None else (2 if args.fast else 200)
    if args.seeds < 1 or args.epochs < 1:
        parser.error(
            f"Expected --seeds >= 1 and --epochs >= 1, but got {args.seeds} and {args.epochs}"
        )
    return args


def train_one(
    data: RotatedDigitsDataModule, depth: int, width: int, seed: int, epochs: int, out: Path
) -> dict[str, Any]:
    """Train one MLP and measure its accuracy and learned symmetry."""
    pl.seed_everything(seed, workers=True, verbose=False)
    model = DigitMLP(INPUTS, width, depth, lr=1e-3, bias=False, activation="silu")
    callback = lg.LieGGCallback(
        lg.ImageAction(),
        reference="rotation2d",
        output_transform=lg.l2_normalize,
        every_n_epochs=max(1, epochs // 4),
        num_samples=256,
        log_images=False,
    )
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        callbacks=[callback],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=True,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    seconds = time.perf_counter() - start
    callback.to_csv(out / f"history_d{depth}_w{width}_s{seed}.csv")

    model.eval()
    x_test, y_test = data.test_set.tensors
    with torch.no_grad():
        acc = float((model(x_test).argmax(1) == y_test).float().mean())
    x_train = data.train_set.tensors[0]
    common = dict(output_transform=lg.l2_normalize, reference="rotation2d")
    rep_sum = lg.liegg(model, x_train, lg.ImageAction(), reduction="sum", **common)
    rep_none = lg.liegg(model, x_train, lg.ImageAction(), reduction="none", **common)
    rep_test = lg.liegg(model, x_test, lg.ImageAction(), reduction="none", **common)
    return {
        "depth": depth,
        "width": width,
        "params": sum(p.numel() for p in model.parameters()),
        "seed": seed,
        "accuracy": acc,
        "symmetry_variance_sum": rep_sum.symmetry_variance,
        "relative_variance_sum": rep_sum.relative_variance,
        "symmetry_bias_sum": float(rep_sum.symmetry_bias[0]),
        "symmetry_variance_none": rep_none.symmetry_variance,
        "relative_variance_none": rep_none.relative_variance,
        "symmetry_bias_none": float(rep_none.symmetry_bias[0]),
        "generator_none": rep_none.generators[0].tolist(),
        "relative_variance_test": rep_test.relative_variance,
        "symmetry_bias_test": float(rep_test.symmetry_bias[0]),
        "seconds": seconds,
    }


def spearman(a: list[float], b: list[float]) -> tuple[float, float]:
    """Spearman's rho and its two-sided p-value (NaN when undefined)."""
    if len(a) < 3 or len(set(a)) < 2 or len(set(b)) < 2:
        return math.nan, math.nan
    res = spearmanr(a, b)
    return float(res.statistic), float(res.pvalue)


#: symmetry metrics of a run, as printed; the first three are the paper's protocol.
METRICS = {
    "symmetry_variance_sum": "symmetry variance (sum)",
    "relative_variance_none": "relative variance (none)",
    "symmetry_bias_none": "rotation bias",
    "relative_variance_test": "relative variance (none), test imgs",
    "symmetry_bias_test": "rotation bias, test images",
}
PRIMARY = ("symmetry_variance_sum", "relative_variance_none", "symmetry_bias_none")


def correlations(runs: list[dict[str, Any]]) -> dict[str, dict[str, tuple[float, float]]]:
    """Spearman correlations of each symmetry metric with depth and with accuracy.

    Over all runs, and with accuracy after removing each configuration's mean (what is left
    is seed-to-seed variation, free of the architecture's effect).
    """
    depth = [float(r["depth"]) for r in runs]
    acc = [r["accuracy"] for r in runs]
    config = [(r["depth"], r["width"]) for r in runs]

    def within(values: list[float]) -> list[float]:
        means = {
            c: np.mean([v for v, d in zip(values, config, strict=True) if d == c]) for c in config
        }
        return [v - means[c] for v, c in zip(values, config, strict=True)]

    out: dict[str, dict[str, tuple[float, float]]] = {
        "depth": {},
        "accuracy": {},
        "accuracy_within_config": {},
    }
    for key in METRICS:
        values = [r[key] for r in runs]
        out["depth"][key] = spearman(depth, values)
        out["accuracy"][key] = spearman(values, acc)
        out["accuracy_within_config"][key] = spearman(within(values), within(acc))
    return out


def verdict(rho: float, p: float, expected_sign: int) -> str:
    """Whether a correlation with the expected sign is there."""
    if math.isnan(rho):
        return "undetermined (too few runs)"
    if rho == 0:
        return "does not reproduce (no correlation)"
    if rho * expected_sign > 0 and p < 0.05:
        return "reproduces"
    if rho * expected_sign > 0:
        return "same direction, not significant (p >= 0.05)"
    return "does not reproduce (opposite direction)"


def overall(verdicts: dict[str, str]) -> str:
    """One verdict from the paper-protocol metrics: the majority of the three."""
    votes = [verdicts[key] for key in PRIMARY]
    if sum(v == "reproduces" for v in votes) >= 2:
        return "reproduces"
    if sum(v.startswith("does not reproduce") for v in votes) >= 2:
        return "does not reproduce"
    return "inconclusive (trend in the expected direction at best, not significant)"


def summarise(runs: list[dict[str, Any]], configs: list[tuple[int, int]]) -> list[dict[str, Any]]:
    keys = (
        "accuracy",
        "symmetry_variance_sum",
        "relative_variance_none",
        "symmetry_bias_none",
        "seconds",
    )
    rows = []
    for depth, width in configs:
        mine = [r for r in runs if r["depth"] == depth and r["width"] == width]
        row: dict[str, Any] = {
            "depth": depth,
            "width": width,
            "params": mine[0]["params"],
            "n": len(mine),
        }
        for k in keys:
            v = np.array([r[k] for r in mine], dtype=float)
            row[k] = (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0)
        rows.append(row)
    return rows


def plot(
    runs: list[dict[str, Any]], rows: list[dict[str, Any]], rho_acc: float, path: Path
) -> None:
    """Symmetry variance and bias against depth (widths annotated); symmetry against accuracy."""
    fig = Figure(figsize=(13, 3.8), layout="constrained")
    axes = fig.subplots(1, 3)
    depths = [r["depth"] for r in rows]
    labels = [f"{r['depth']}x{r['width']}" for r in rows]
    for ax, key, title in (
        (axes[0], "symmetry_variance_sum", "symmetry variance (sum, paper)"),
        (axes[0], "relative_variance_none", "relative variance (none)"),
        (axes[1], "symmetry_bias_none", "rotation bias (none)"),
    ):
        mean = np.array([r[key][0] for r in rows])
        per_config = [[run[key] for run in runs if run["depth"] == r["depth"]] for r in rows]
        spread = [mean - [min(v) for v in per_config], [max(v) for v in per_config] - mean]
        ax.errorbar(depths, mean, yerr=spread, marker="o", capsize=3, label=title)
        ax.scatter([r["depth"] for r in runs], [r[key] for r in runs], s=8, alpha=0.4)
    for ax, ylabel in ((axes[0], "variance (log)"), (axes[1], "bias of most symmetric generator")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(depths, labels)
        ax.set_xlabel("depth x width (similar #params)")
        ax.set_ylabel(ylabel)
    axes[0].set_yscale("log")
    axes[1].set_yscale("log")
    axes[0].legend(fontsize=8)
    axes[0].set_title("symmetry variance vs depth/width (mean, min-max)")
    axes[1].set_title("rotation bias vs depth/width")
    for row in rows:
        mine = [r for r in runs if r["depth"] == row["depth"] and r["width"] == row["width"]]
        axes[2].scatter(
            [r["symmetry_variance_sum"] for r in mine],
            [r["accuracy"] for r in mine],
            label=f"{row['depth']}x{row['width']}",
        )
    axes[2].legend(fontsize=8, title="depth x width", title_fontsize=8)
    axes[2].set_xscale("log")
    axes[2].set_xlabel("symmetry variance (sum)")
    axes[2].set_ylabel("test accuracy")
    axes[2].xaxis.set_minor_formatter(NullFormatter())
    axes[2].set_title(f"symmetry vs accuracy (Spearman {rho_acc:+.2f})")
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    # These models are tiny: one thread is fastest, and on a shared machine two threads spin
    # against other jobs (several times slower here).
    torch.set_num_threads(1)
    for pattern in (
        ".*does not have many workers.*",
        ".*smaller than the logging interval.*",
        ".*LeafSpec.*",
    ):
        warnings.filterwarnings("ignore", pattern)
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)  # quiet, 12 Trainers
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    depths, base = (FAST_DEPTHS, FAST_BASE_WIDTH) if args.fast else (DEPTHS, BASE_WIDTH)
    budget = num_params(1, base)
    configs = [(d, width_for(d, budget)) for d in depths]
    data = RotatedDigitsDataModule(
        blur_sigma=1.5, size=28, batch_size=128, seed=0, limit=300 if args.fast else None
    )
    data.setup()
    print(
        f"rotated digits: {len(data.train_set)} train / {len(data.val_set)} val / "
        f"{len(data.test_set)} test images; configs (depth, width) {configs}; "
        f"{args.seeds} seeds; {args.epochs} epochs",
        flush=True,
    )

    runs = []
    for depth, width in configs:
        for seed in range(args.seeds):
            run = train_one(data, depth, width, seed, args.epochs, out)
            runs.append(run)
            print(
                f"  depth {depth} width {width:4d} seed {seed}: acc {run['accuracy']:.3f}  "
                f"var(sum) {run['symmetry_variance_sum']:.3e}  "
                f"rel(none) {run['relative_variance_none']:.3e}  "
                f"bias {run['symmetry_bias_none']:.4f}  ({run['seconds']:.1f} s)",
                flush=True,
            )
    rows = summarise(runs, configs)

    tests = correlations(runs)
    figure = out / "depth_vs_width.png"
    plot(runs, rows, tests["accuracy"]["symmetry_variance_sum"][0], figure)

    print()
    print(
        f"{'config':>8s} {'depth':>5s} {'width':>5s} {'params':>7s}  {'test accuracy':>15s}  "
        f"{'sym. variance (sum)':>21s}  {'rel. variance (none)':>21s}  {'rotation bias':>15s}"
    )
    for r in rows:
        print(
            f"{r['depth']}x{r['width']:<6d} {r['depth']:5d} {r['width']:5d} {r['params']:7d}  "
            f"{r['accuracy'][0]:7.3f} +- {r['accuracy'][1]:.3f}  "
            f"{r['symmetry_variance_sum'][0]:9.3e} +- {r['symmetry_variance_sum'][1]:.1e}  "
            f"{r['relative_variance_none'][0]:9.3e} +- {r['relative_variance_none'][1]:.1e}  "
            f"{r['symmetry_bias_none'][0]:6.4f} +- {r['symmetry_bias_none'][1]:.4f}"
        )
    print(
        f"(mean +- std over {args.seeds} seeds; LieGG on the {len(data.train_set)} training "
        "images, L2-normalised logits, ImageAction (gl(2)), bias against rotation2d)"
    )
    print()
    print(f"Spearman correlations over all {len(runs)} runs (rho, p); expected sign: negative")
    titles = {
        "depth": "(1) with depth (deeper, narrower)",
        "accuracy": "(2) with test accuracy",
        "accuracy_within_config": "(2') with accuracy, within configurations (seed-to-seed)",
    }
    findings: dict[str, dict[str, str]] = {}
    for group, title in titles.items():
        print(f"  {title}:")
        findings[group] = {}
        for key, label in METRICS.items():
            rho, p = tests[group][key]
            findings[group][key] = verdict(rho, p, expected_sign=-1)
            print(f"    {label:36s} rho = {rho:+.3f}  p = {p:<8.3g} {findings[group][key]}")
    print()
    print("Findings (the paper's protocol: metrics on the training images):")
    if args.fast:
        print("  (--fast: a smoke test; these verdicts mean nothing)")
    print("  (1) deeper networks learn symmetries better than wider ones at similar #params:")
    for key in PRIMARY:
        print(f"      by {METRICS[key]:26s}: {findings['depth'][key]}")
    print(f"      overall: {overall(findings['depth'])}")
    print("  (2) better symmetry goes with better accuracy:")
    for key in PRIMARY:
        print(f"      by {METRICS[key]:26s}: {findings['accuracy'][key]}")
    summary_2 = overall(findings["accuracy"])
    if summary_2 == "reproduces" and overall(findings["accuracy_within_config"]) != "reproduces":
        summary_2 += (
            " across architectures only: not seen seed-to-seed within a configuration, so "
            "the correlation may come from the architecture (worse nets are worse at both)"
        )
    print(f"      overall: {summary_2}")
    print(
        "  Rows on test images check that the trend is not an artefact of overfit training "
        "points;\n  within-configuration rows check whether (2) holds apart from the "
        "architecture (few seeds: weak test)."
    )
    total = time.perf_counter() - t0
    print(f"\nfigure: {figure}; total {total:.0f} s")

    results = {
        "args": vars(args),
        "data": {
            "train": len(data.train_set),
            "val": len(data.val_set),
            "test": len(data.test_set),
        },
        "configs": configs,
        "runs": runs,
        "summary": rows,
        "spearman": {
            g: {k: {"rho": v[0], "p": v[1]} for k, v in t.items()} for g, t in tests.items()
        },
        "findings": findings,
        "figure": str(figure),
        "seconds": total,
    }
    text = json.dumps(results, indent=1)
    (out / "results.json").write_text(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)
    return results


if __name__ == "__main__":
    main()
