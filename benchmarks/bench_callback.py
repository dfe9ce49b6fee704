"""Callback overhead: the rotated-digits demo with and without LieGGCallback, alternating.

Each round trains the demo's model (``examples/rotated_digits.py``: 4 x 256 MLP, rotated
digits, one torch thread) from the same seed four ways, in a shuffled order (seeded): without
the callback, with ``LieGGCallback`` at its default settings (as the demo configures it:
ImageAction, reference so(2), L2-normalised logits; figures within a 5% time budget), with
figures at every evaluation (``media_budget=None``), and with those drawn in a background
process. Every run uses the demo's Trainer (``examples/_common.py``) and logs to TensorBoard.
The ratios of the wall times of ``trainer.fit`` within a round are what to read (the machine is
shared and noisy); their median over rounds is the result. Each run also reports how many
evaluations got their figures (at the defaults: all of them, the budget holds none back) and
the seconds the figures cost. Separately, one set of figures for the demo's final evaluation
is drawn repeatedly and timed (target: at most 0.15 s per set), and once more with the
layer-wise figures of ``layers=`` added (10 layers, seeded values).

    python -m benchmarks.bench_callback            # 3 rounds of 6 epochs (the demo's)
    python -m benchmarks.bench_callback --fast     # seconds, for the smoke test
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

import lightning_liegg as lg  # noqa: E402
from examples._common import tensorboard_trainer  # noqa: E402 - the demo's own Trainer
from lightning_liegg.datasets import RotatedDigitsDataModule  # noqa: E402
from lightning_liegg.demos import DigitMLP  # noqa: E402 - the demo's own model

VARIANTS = (
    "without",
    "with callback (defaults)",
    "figures every evaluation",
    "figures in a background process",
    "with 2 discrete transforms",
)
#: the discrete transforms of the last variant (one extra forward pass each per evaluation)
DISCRETE = {"hflip": lg.transforms.hflip, "rot90": lg.transforms.rot90(1)}


def fit(variant: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Train once; return the wall time of ``trainer.fit`` and the callback's own numbers."""
    pl.seed_everything(args.seed, verbose=False)
    data = RotatedDigitsDataModule(seed=args.seed, copies=args.copies, limit=args.limit)
    model = DigitMLP(data.input_dim, 256, 4, 2e-3, cosine_schedule=True)
    callbacks = []
    if variant != "without":
        options: dict[str, Any] = {}
        if variant == "figures every evaluation":
            options["media_budget"] = None
        if variant == "figures in a background process":
            options.update(media_budget=None, background_rendering=True)
        if variant == "with 2 discrete transforms":
            options["transforms"] = DISCRETE
        callbacks.append(
            lg.LieGGCallback(
                lg.ImageAction(),
                reference="rotation2d",
                output_transform=lg.l2_normalize,
                **options,
            )
        )
    name = variant.replace(" ", "_").strip("()")
    trainer = tensorboard_trainer(root, name, args.epochs, callbacks)
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    seconds = time.perf_counter() - start
    analysis = sum(e.seconds for e in callbacks[0].history) if callbacks else 0.0
    evaluations = len(callbacks[0].history) if callbacks else 0
    figures = callbacks[0].engine.figures if callbacks else None
    return {
        "seconds": seconds,
        "analysis_seconds": analysis,
        "evaluations": evaluations,
        "figure_sets": figures.renders if figures is not None else 0,
        "figure_seconds": figures.seconds if figures is not None else 0.0,
        "callback": callbacks[0] if callbacks else None,
        "module": model,
    }


def with_layers(payload: Any, layers: int = 10) -> Any:
    """``payload`` plus the layer-wise figures' data for ``layers`` layers (seeded values).

    The shapes of ``layers="auto"`` on the demo's DigitMLP (Flatten, 4 x Linear-ReLU, the
    logits' Linear); the values are random: drawing time does not depend on them.
    """
    rng = np.random.default_rng(0)
    k, p, q = payload.generators.shape
    s = len(payload.steps)
    return dataclasses.replace(
        payload,
        layer_names=tuple(f"net.{i} {'Linear' if i % 2 else 'ReLU'}" for i in range(layers)),
        layer_variances=10 ** rng.uniform(-4, 0, (layers, s)),
        layer_reference=10 ** rng.uniform(-4, 0, (layers, s)),
        layer_generators=rng.normal(size=(layers, k, p, q)),
        layer_generator_variances=10 ** rng.uniform(-4, 0, (layers, k)),
    )


def time_figures(callback: lg.LieGGCallback, repeats: int, layers: bool = False) -> list[float]:
    """Seconds per set of figures for the callback's last evaluation (in this process).

    ``layers``: with the layer-wise figures too (:func:`with_layers`).
    """
    from lightning_liegg._media import FigurePayload, render_media

    payload = FigurePayload.build(
        callback.last_report,
        callback.history,
        callback.action,
        callback.samples,
        callback.num_generators,
        callback.filmstrip_samples,
    )
    if layers:
        payload = with_layers(payload)
    render_media(payload)  # first-call costs (fonts)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        render_media(payload)
        times.append(time.perf_counter() - start)
    return times


def time_discrete(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> list[float]:
    """Per-round ratios: the discrete pass (both transforms) over the LieGG analysis.

    On the callback's cached samples ``x`` and the trained ``model``, in this process,
    alternating the two; the analysis with the callback's options.
    """
    options = dict(reference="rotation2d", output_transform=lg.l2_normalize, chunk_size=256)
    ratios = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        lg.liegg(model, x, lg.ImageAction(), **options)
        middle = time.perf_counter()
        lg.transform_errors(model, x, DISCRETE, output_transform=lg.l2_normalize, chunk_size=256)
        ratios.append((time.perf_counter() - middle) / (middle - start))
    return ratios[1:]  # the first round pays first-call costs


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6, help="the demo's default")
    parser.add_argument("--copies", type=int, default=24, help="the demo's default")
    parser.add_argument("--limit", type=int, default=None, help="digits used (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="the demo's default")
    parser.add_argument("--fast", action="store_true", help="tiny run for the smoke test")
    parser.add_argument("--json", type=str, default=None)
    args = parser.parse_args(argv)
    if args.fast:
        args.rounds, args.epochs, args.copies, args.limit = 1, 1, 1, 200
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*")

    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        fit("with callback (defaults)", args, Path(tmp) / "warmup")  # imports, first-call costs
        order, shuffler = list(VARIANTS), random.Random(args.seed)
        for _ in range(args.rounds):
            shuffler.shuffle(order)  # no variant always first, or always after another one
            for variant in order:
                runs[variant].append(fit(variant, args, Path(tmp)))

    last = runs["with callback (defaults)"][-1]["callback"]
    discrete_ratios = time_discrete(
        runs["with callback (defaults)"][-1]["module"], last.samples, 11
    )
    figure_times = time_figures(last, 21)
    layer_figure_times = time_figures(last, 21, layers=True)
    for variant_runs in runs.values():
        for r in variant_runs:
            r.pop("callback")
            r.pop("module")
    base = [r["seconds"] for r in runs["without"]]
    print(
        f"# callback overhead: rotated-digits demo, {args.epochs} epochs, {args.rounds} rounds, "
        f"{args.threads} torch thread(s), {os.cpu_count()} CPUs, load average "
        f"{tuple(round(v, 2) for v in os.getloadavg())}\n"
    )
    print(
        "| variant | median fit s | x without (median of per-round ratios) | evaluations "
        "| with figures | analysis s | figures s | target | result |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    result: dict[str, Any] = {"args": vars(args), "variants": {}}
    for variant in VARIANTS:
        times = [r["seconds"] for r in runs[variant]]
        ratio = statistics.median(t / b for t, b in zip(times, base, strict=True))
        default = variant == "with callback (defaults)"
        evaluations = runs[variant][0]["evaluations"]
        drawn = min(r["figure_sets"] for r in runs[variant])
        target = "<= 1.05x, figures at every evaluation" if default else "-"
        verdict = "-"
        if default:
            verdict = "PASS" if ratio <= 1.05 and drawn == evaluations else "FAIL"
        analysis = statistics.median(r["analysis_seconds"] for r in runs[variant])
        figures = statistics.median(r["figure_seconds"] for r in runs[variant])
        print(
            f"| {variant} | {statistics.median(times):.1f} | {ratio:.3f} | {evaluations} | "
            f"{drawn if variant != 'without' else '-'} | {analysis:.2f} | {figures:.2f} | "
            f"{target} | {verdict} |"
        )
        result["variants"][variant] = {"seconds": times, "ratio": ratio, "runs": runs[variant]}
    per_set = statistics.median(figure_times)
    print(
        f"\none set of figures (generators, spectrum, bias, evolution, filmstrip), median of "
        f"{len(figure_times)}: {per_set * 1000:.1f} ms (range {min(figure_times) * 1000:.1f}-"
        f"{max(figure_times) * 1000:.1f}); target <= 150 ms: "
        f"{'PASS' if per_set <= 0.15 else 'FAIL'}"
    )
    per_set = statistics.median(layer_figure_times)
    print(
        f"the same with layers= (plus the layer heatmap and the layer generators, 10 layers), "
        f"median of {len(layer_figure_times)}: {per_set * 1000:.1f} ms; target <= 150 ms: "
        f"{'PASS' if per_set <= 0.15 else 'FAIL'}"
    )
    with_discrete = statistics.median(
        d / c
        for d, c in zip(
            (r["seconds"] for r in runs["with 2 discrete transforms"]),
            (r["seconds"] for r in runs["with callback (defaults)"]),
            strict=True,
        )
    )
    print(
        f"discrete part (hflip, rot90 on the {last.samples.shape[0]} cached samples): fit "
        f"{with_discrete:.3f}x the callback at its defaults (median of per-round ratios); per "
        f"evaluation the two forward passes cost {statistics.median(discrete_ratios):.3f}x the "
        f"LieGG analysis (median of {len(discrete_ratios)} alternating rounds)"
    )
    result["discrete_vs_defaults"] = with_discrete
    result["discrete_vs_analysis"] = discrete_ratios
    result["figure_set_seconds"] = figure_times
    result["figure_set_with_layers_seconds"] = layer_figure_times
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
