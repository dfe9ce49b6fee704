"""The callback on 1-D, 3-D and colour models: a real Trainer, TensorBoard files read back."""

import io

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from pytorch_lightning.loggers import TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightning_liegg as lg
from lightning_liegg._media import FigurePayload, render_media

from .helpers import read_events, scalar_steps, trainer


class Tiny(pl.LightningModule):
    """A small classifier on inputs of any shape: a convolution, then a linear head."""

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.net = nn.Sequential(conv, nn.Tanh(), nn.Flatten(), nn.LazyLinear(3))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


CASES = [
    (
        "signal",
        lambda: nn.Conv1d(2, 4, 5),
        (2, 24),
        lambda: lg.SignalAction(affine=True),
        "translation1d",
        (1, 2),
        "signal",
    ),
    (
        "volume",
        lambda: nn.Conv3d(1, 2, 3),
        (1, 6, 7, 8),
        lambda: lg.VolumeAction(),
        "so(3)",
        (3, 3),
        "volume",
    ),
    (
        "colour",
        lambda: nn.Conv2d(3, 4, 3),
        (3, 8, 8),
        lambda: lg.ChannelAction(3),
        "grey_rotations",
        (3, 3),
        "image",
    ),
]


@pytest.mark.parametrize(
    "conv,shape,action,reference,generator_shape,kind",
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_callback_logs_for_every_domain(
    tmp_path, conv, shape, action, reference, generator_shape, kind
):
    torch.manual_seed(0)
    x = torch.randn(48, *shape)
    y = torch.randint(0, 3, (48,))
    model = Tiny(conv())
    model(x[:2])  # materialise the lazy layer
    logger = TensorBoardLogger(tmp_path, name="tb")
    cb = lg.LieGGCallback(action(), reference=reference, num_samples=16, media_budget=None)
    t = trainer(tmp_path, max_epochs=2, logger=logger, callbacks=[cb], limit_train_batches=3)
    t.fit(model, DataLoader(TensorDataset(x, y), batch_size=8))
    steps = [e.step for e in cb.history]
    assert steps == [0, 3, 6]
    assert torch.tensor(cb.history[-1].generators).shape[1:] == generator_shape
    acc = read_events(logger.log_dir)
    for tag in ("symmetry_variance", "symmetry_bias", "subspace_distance", "symmetry_dim"):
        assert scalar_steps(acc, f"liegg/{tag}") == steps, tag
    images = acc.Tags()["images"]
    assert "liegg/generators" in images and "liegg/filmstrip" in images
    assert [e.step for e in acc.Images("liegg/filmstrip")] == steps
    # the logged filmstrip is the domain's: signals as line plots, volumes as mid-slices,
    # colour images as images (compared with a fresh drawing of the last evaluation)
    payload = FigurePayload.build(
        cb.last_report, cb.history, cb.action, cb.samples, cb.num_generators, 4
    )
    assert payload.frames_kind == kind and payload.frames.shape[:2] == (5, 4)
    logged = acc.Images("liegg/filmstrip")[-1].encoded_image_string
    logged = np.asarray(Image.open(io.BytesIO(logged)).convert("RGB"))
    assert np.array_equal(logged, render_media(payload)["filmstrip"])
    # the callback's numbers are those of the functional API on its samples
    report = lg.liegg(t.lightning_module, cb.samples, action(), reference=reference)
    assert report.symmetry_variance == pytest.approx(
        cb.history[-1].scalars["symmetry_variance"], rel=1e-5
    )
