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

import torch
from pytorch_lightning import LightningModule
from pytorch_lightning.cli import LightningCLI
from torch import Tensor, nn

from lightning_liegg.datasets import RotatedDigitsDataModule


class DigitClassifier(LightningModule):
    """``Flatten - [Linear - ReLU] x depth - Linear(num_classes)`` on square images.

    Args:
        image_size: side of the input images (linked to ``data.size`` by the CLI).
        width: hidden units per layer.
        depth: number of hidden layers.
        num_classes: number of classes.
        lr: Adam learning rate.
    """

    def __init__(
        self,
        image_size: int = 28,
        width: int = 128,
        depth: int = 4,
        num_classes: int = 10,
        lr: float = 2e-3,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        layers: list[nn.Module] = [nn.Flatten()]
        features = image_size * image_size
        for _ in range(depth):
            layers += [nn.Linear(features, width), nn.ReLU()]
            features = width
        layers.append(nn.Linear(features, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of shape (B, 10)."""
        return self.net(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """Cross-entropy on a batch of images and labels."""
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """Log validation loss and accuracy."""
        x, y = batch
        logits = self(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y), prog_bar=True)
        self.log("val_acc", (logits.argmax(dim=1) == y).float().mean(), prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam."""
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


class DigitsCLI(LightningCLI):
    """Links the image size of the data to the model's input layer."""

    def add_arguments_to_parser(self, parser) -> None:  # noqa: D102
        parser.link_arguments("data.size", "model.image_size")


def main() -> None:
    DigitsCLI(DigitClassifier, RotatedDigitsDataModule)


if __name__ == "__main__":
    main()
