"""LightningCLI with the LieGG callback configured purely from YAML.

The model is a small MLP classifier defined here; the data is
:class:`~lightning_liegg.datasets.RotatedDigitsDataModule`; ``config.yaml`` adds
``lightning_liegg.LieGGCallback`` under ``trainer.callbacks`` with an ``ImageAction``, the
``rotation2d`` reference and ``lightning_liegg.l2_normalize`` as output transform, all by
import path. No Python change is needed to watch symmetries in an existing CLI project.

    python examples/cli/train.py fit --config examples/cli/config.yaml
    python examples/cli/train.py fit --config examples/cli/config.yaml --trainer.max_epochs 1
    python examples/cli/train.py fit --print_config            # every option, with defaults
    tensorboard --logdir runs/cli

Any callback argument can be overridden on the command line, e.g.
``--trainer.callbacks.init_args.num_samples 128`` (with one callback in the list).
"""

from __future__ import annotations

from pytorch_lightning.cli import LightningCLI

from lightning_liegg.datasets import RotatedDigitsDataModule
from lightning_liegg.demos import DigitMLP


class DigitsCLI(LightningCLI):
    """Links the image size of the data to the model's input layer."""

    def add_arguments_to_parser(self, parser) -> None:  # noqa: D102
        parser.link_arguments("data.size", "model.input_dim", compute_fn=lambda size: size * size)


def main() -> None:
    DigitsCLI(DigitMLP, RotatedDigitsDataModule)


if __name__ == "__main__":
    main()
