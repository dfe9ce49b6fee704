"""A small model for the examples, the CLI and the benchmarks (as ``pytorch_lightning.demos``).

:class:`DigitMLP` is the MLP the rotated-digits demo, the depth-vs-width study, the
LightningCLI example and the callback benchmark train, so they share one definition and none
of them edits ``sys.path`` to find another's.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from ._checks import check_choice, check_positive_int

__all__ = ["DigitMLP"]

_ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU}


class DigitMLP(pl.LightningModule):
    """``Flatten - [Linear - activation] x depth - Linear(num_classes)``, cross-entropy.

    Logs ``train_loss``, ``train_acc``, ``val_loss`` and ``val_acc``.

    Args:
        input_dim: pixels per image (``size * size``).
        width: hidden units per layer.
        depth: number of hidden layers (0: a linear classifier).
        lr: Adam's (peak) learning rate.
        num_classes: number of classes.
        bias: give the linear layers biases (the paper's MLP has none).
        activation: ``"relu"`` or ``"silu"`` (Swish, the paper's).
        cosine_schedule: decay the learning rate to zero over training (cosine, per step).
    """

    def __init__(
        self,
        input_dim: int = 784,
        width: int = 256,
        depth: int = 4,
        lr: float = 2e-3,
        num_classes: int = 10,
        bias: bool = True,
        activation: str = "relu",
        cosine_schedule: bool = False,
    ) -> None:
        super().__init__()
        check_positive_int("input_dim", input_dim)
        check_positive_int("width", width)
        check_positive_int("depth", depth, minimum=0)
        check_choice("activation", activation, tuple(_ACTIVATIONS))
        self.save_hyperparameters()
        layers: list[nn.Module] = [nn.Flatten()]
        features = input_dim
        for _ in range(depth):
            layers += [nn.Linear(features, width, bias=bias), _ACTIVATIONS[activation]()]
            features = width
        layers.append(nn.Linear(features, num_classes, bias=bias))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(N, num_classes)`` for images ``(N, ...)`` of ``input_dim`` pixels."""
        return self.net(x)

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        logits = self(x)
        loss = nn.functional.cross_entropy(logits, y)
        self.log(f"{stage}_loss", loss, prog_bar=stage == "val")
        self.log(f"{stage}_acc", (logits.argmax(1) == y).float().mean(), prog_bar=stage == "val")
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """Cross-entropy on a batch of images and labels."""
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """Log validation loss and accuracy."""
        self._step(batch, "val")

    def configure_optimizers(self) -> Any:
        """Adam, with a per-step cosine decay if ``cosine_schedule``."""
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        if not self.hparams.cosine_schedule:
            return optimizer
        steps = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
