"""Where in the network does rotation invariance appear, and when? A layer-wise LieGG study.

The digits MLP (:class:`~lightning_liegg.demos.DigitMLP`: Flatten, then Linear-ReLU blocks,
then the logits) trains on randomly rotated, blurred digits
(:class:`~lightning_liegg.datasets.RotatedDigitsDataModule`; nothing is downloaded), with
``LieGGCallback(layers="auto")``: every leaf module's output is analysed at every epoch, from
the same forward-mode pass as the logits. For each layer and epoch the script prints the
relative variance of the *rotation* (the Lie derivative of that representation along the
rotation generator, over the largest direction's: 0 = invariant, 1 = as variant as the most
variant direction of gl(2)), and the relative variance of the layer's most symmetric generator
with its rotation bias. ``net.0`` (Flatten) is the raw image: the baseline.

It saves the layer x epoch heatmap (``layer_heatmap.png``, drawn with
:func:`lightning_liegg.plotting.plot_layer_heatmap` from the data the callback's
``liegg/layer_heatmap`` shows) and the numbers (``--json``).

    python examples/where_symmetry_emerges.py            # about 2-4 minutes on 2 CPUs
    python examples/where_symmetry_emerges.py --fast     # a few seconds (smoke test)
    tensorboard --logdir runs/where_symmetry_emerges     # liegg/layers/<name>/..., layer_heatmap
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
from _common import tensorboard_trainer

import lightning_liegg as lg
from lightning_liegg import plotting
from lightning_liegg.datasets import RotatedDigitsDataModule
from lightning_liegg.demos import DigitMLP


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--epochs", type=int, help="default 8")
    add("--width", type=int, help="hidden units (default 128)")
    add("--depth", type=int, help="hidden layers (default 4)")
    add("--copies", type=int, help="rotated copies per training digit (default 12)")
    add("--num-samples", type=int, help="LieGG samples (default 256)")
    add("--lr", type=float, default=2e-3)
    add("--seed", type=int, default=0)
    add("--logdir", default="runs/where_symmetry_emerges", help="TensorBoard root")
    add("--png", type=Path, default=None, help="also save the layer heatmap here")
    add("--json", type=Path, default=None, help="write the numbers here")
    add("--fast", action="store_true", help="tiny run for smoke tests")
    args = parser.parse_args(argv)
    defaults = {
        "epochs": 2 if args.fast else 8,
        "width": 16 if args.fast else 128,
        "depth": 2 if args.fast else 4,
        "copies": 1 if args.fast else 12,
        "num_samples": 32 if args.fast else 256,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.limit = 200 if args.fast else None
    return args


def table(title: str, names: list[str], epochs: list[str], values: np.ndarray) -> str:
    """A layer x evaluation table of ``values`` (L, S)."""
    width = max(len(n) for n in names)
    lines = [title, " " * width + "".join(f"{e:>10}" for e in epochs)]
    for name, row in zip(names, values, strict=True):
        cells = "".join(f"{v:10.2e}" if math.isfinite(v) else f"{'-':>10}" for v in row)
        lines.append(f"{name:<{width}}{cells}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(1)  # one thread is fastest for this small MLP
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*isinstance.treespec, LeafSpec.*")
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    pl.seed_everything(args.seed, verbose=False)
    data = RotatedDigitsDataModule(
        rotate=True, blur_sigma=1.5, seed=args.seed, copies=args.copies, limit=args.limit
    )
    model = DigitMLP(data.input_dim, args.width, args.depth, args.lr, cosine_schedule=True)
    liegg = lg.LieGGCallback(
        lg.ImageAction(),
        reference="rotation2d",
        output_transform=lg.l2_normalize,  # the logits on the unit sphere, as in the paper
        num_samples=args.num_samples,
        layers="auto",  # DigitMLP has one Sequential: its leaf modules net.0, net.1, ...
    )
    trainer = tensorboard_trainer(args.logdir, "mlp", args.epochs, [liegg])
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    seconds = time.perf_counter() - start
    history = [r for r in liegg.history if r.layers]
    if not history:
        raise SystemExit("No LieGG evaluation succeeded (see the LieGGWarning above).")
    names = list(history[-1].layers)
    modules = dict(model.named_modules())
    labels = [
        n if n == "output" else f"{n} {type(modules[n]).__name__}".replace("Linear", "Lin")
        for n in names
    ]

    def grid(key: str) -> np.ndarray:
        return np.array(
            [[r.layers.get(n, {}).get("scalars", {}).get(key, math.nan) for r in history]
             for n in names]
        )  # fmt: skip

    rotation = grid("reference_variance")  # rotation2d is one generator: its own variance
    best = grid("relative_variance")
    bias = grid("symmetry_bias")
    epochs = ["init"] + [f"ep {r.epoch + 1}" for r in history[1:]]
    val_acc = float(trainer.callback_metrics.get("val_acc", torch.tensor(math.nan)))
    print(f"\nDigitMLP {args.depth} x {args.width} on rotated digits, {args.epochs} epochs, "
          f"val acc {val_acc:.3f}, {seconds:.0f} s")  # fmt: skip
    print()
    print(table("Relative variance of the rotation, per layer (rows) and evaluation:", labels,
                epochs, rotation))  # fmt: skip
    print()
    print(table("Relative variance of each layer's most symmetric generator:", labels, epochs,
                best))  # fmt: skip
    print()
    print(table("Its rotation bias (0: the rotation itself):", labels, epochs, bias))

    out = Path(trainer.logger.log_dir)
    title = "rotated digits: log10 relative variance per layer and step"
    fig = plotting.plot_layer_heatmap(labels, [r.step for r in history], best, rotation, title)
    paths = [out / "layer_heatmap.png", *([args.png] if args.png else [])]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    summary = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "layers": labels,
        "steps": [r.step for r in history],
        "rotation_relative_variance": rotation.tolist(),
        "best_relative_variance": best.tolist(),
        "best_rotation_bias": bias.tolist(),
        "val_acc": val_acc,
        "train_seconds": seconds,
    }
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1, allow_nan=True))
    print("\nFiles:")
    for path in paths:
        print(f"  {path}")
    print(f"  {out}/  (TensorBoard: liegg/layers/<name>/..., liegg/layer_heatmap)")
    return summary


if __name__ == "__main__":
    main()
