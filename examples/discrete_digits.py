"""Discrete symmetries of digits: flips are not one, small rotations are.

An MLP classifies scikit-learn's digits (28x28, randomly rotated and blurred, as in
``rotated_digits.py``). ``LieGGCallback(transforms=...)`` follows, at every evaluation, the
relative change of its (L2-normalised) class scores under discrete maps: a horizontal and a
vertical flip, a quarter turn and a small rotation by 10 degrees. A flipped digit is not a
rotated one (chirality: a mirrored 2 is no 2 at any angle): as the network learns the digits
the flips' errors grow to several times the small rotation's, which stays small (and the
continuous analysis finds the rotation: its bias falls near 0). TensorBoard also gets
each transform's error histogram, the per-sample violation along the most symmetric generator
and along the rotation, and the images of the samples that break them most.

    python examples/discrete_digits.py            # about half a minute on 2 CPUs
    python examples/discrete_digits.py --quick    # a few seconds (smoke test)
    tensorboard --logdir runs/discrete_digits
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

import pytorch_lightning as pl
import torch
from _common import tensorboard_trainer

import lightning_liegg as lg
from lightning_liegg.datasets import RotatedDigitsDataModule
from lightning_liegg.demos import DigitMLP

ROTATION = torch.tensor([[0.0, -1.0], [1.0, 0.0]])  # exp(t ROTATION): a rotation by t radians


class Rotate:
    """Rotate images ``(N, C, H, W)`` by ``degrees`` (a warp along the rotation generator)."""

    def __init__(self, degrees: float) -> None:
        self.degrees = degrees
        self.action = lg.ImageAction()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The batch rotated counter-clockwise by ``degrees``."""
        return self.action.transform(x, ROTATION.to(x.dtype), math.radians(self.degrees))

    def __repr__(self) -> str:
        return f"Rotate({self.degrees})"


TRANSFORMS = {
    "hflip": lg.transforms.hflip,
    "vflip": lg.transforms.vflip,
    "rot90": lg.transforms.rot90(1),
    "rotate10": Rotate(10.0),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line: ``--quick``, ``--epochs``, ``--seed``, ``--logdir``, ``--json``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", "--fast", action="store_true", help="tiny run (smoke test)")
    parser.add_argument("--epochs", type=int, default=None, help="default 4 (1 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--logdir", default="runs/discrete_digits", help="TensorBoard root")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = 1 if args.quick else 4
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train once with the callback; print and return the discrete errors per evaluation."""
    args = parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*")
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    pl.seed_everything(args.seed, verbose=False)
    quick = args.quick
    data = RotatedDigitsDataModule(
        blur_sigma=1.5, seed=args.seed, copies=1 if quick else 8, limit=300 if quick else None
    )
    model = DigitMLP(data.input_dim, 32 if quick else 128, 2 if quick else 3, 2e-3)
    cb = lg.LieGGCallback(
        lg.ImageAction(),
        reference="rotation2d",
        output_transform=lg.l2_normalize,
        num_samples=64 if quick else 256,
        transforms=TRANSFORMS,
        print_summary=False,
    )
    trainer = tensorboard_trainer(args.logdir, "digits", args.epochs, [cb])
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    seconds = time.perf_counter() - start

    names = list(TRANSFORMS)
    print("mean relative change of the L2-normalised class scores, |F(g x) - F(x)| / |F(x)|")
    print(f"{'step':>6} {'epoch':>5} " + " ".join(f"{n:>9}" for n in names) + "  rot. bias")
    rows = []
    for r in cb.history:
        values = {n: r.scalars.get(f"discrete/{n}", math.nan) for n in names}
        bias = r.scalars.get("symmetry_bias", math.nan)
        rows.append({"step": r.step, "epoch": r.epoch, **values, "symmetry_bias": bias})
        line = " ".join(f"{values[n]:9.3f}" for n in names)
        print(f"{r.step:>6} {r.epoch:>5} {line}  {bias:9.3f}")
    last = rows[-1] if rows else {}
    if last:
        flips = min(last["hflip"], last["vflip"])
        verdict = "yes" if flips > 2 * last["rotate10"] else "no"
        print(
            f"\nflips change the scores more than twice as much as a 10-degree rotation: {verdict}"
        )
    worst = cb.last_per_sample.worst if cb.last_per_sample else {}
    for label, idx in worst.items():
        print(f"  worst samples, {label}: {idx}")
    result = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "rows": rows,
        "train_seconds": seconds,
        "log_dir": str(trainer.logger.log_dir),
    }
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1))
    print(f"\nTraining took {seconds:.1f} s. tensorboard --logdir {args.logdir}")
    return result


if __name__ == "__main__":
    main()
