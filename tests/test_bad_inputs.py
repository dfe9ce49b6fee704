"""A table of bad inputs across every public entry point.

Each case must raise a :class:`~lightning_liegg.exceptions.LieGGError` worded "Expected ...,
but got ...", within a few seconds, and never print the values of a tensor, array or list
(the distinctive 123.456 planted in the bad values must not appear in the message; a plain
scalar option may be echoed, so those cases use 2.5). A raw
``TypeError`` or ``RuntimeError`` from torch, numpy or Python fails the case.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import lightning_liegg as lg
from lightning_liegg import algebras, datasets, plotting
from lightning_liegg.exceptions import LieGGError

pytestmark = pytest.mark.timeout(30)

MARK = 123.456  # planted in bad values: its digits must never reach a message
DIGITS = ("123.456", "123.45", "1.2346e+02", "1.235e+02")


def _x(n: int = 4, d: int = 3) -> torch.Tensor:
    return torch.randn(n, d, dtype=torch.float64)


def _marked(*shape: int) -> torch.Tensor:
    return torch.full(shape, MARK, dtype=torch.float64)


def _norm(x):
    return x.norm(dim=1, keepdim=True)


V3 = lg.VectorAction(dim=3)
IMG = lg.ImageAction()
IMAGES = torch.rand(2, 1, 5, 5, dtype=torch.float64)


def _report(reference=None):
    return lg.liegg(_norm, _x(8), V3, reference=reference)


class _NotAModule:
    """A class without ``load_from_checkpoint``."""


CASES = {
    # -- functional API: polarization_matrix / liegg ------------------------------------------
    "x-list": lambda: lg.polarization_matrix(_norm, [[MARK, 1.0, 2.0]], V3),
    "x-numpy": lambda: lg.polarization_matrix(_norm, np.full((2, 3), MARK), V3),
    "x-int-dtype": lambda: lg.polarization_matrix(_norm, torch.ones(4, 3, dtype=torch.long), V3),
    "x-wrong-shape": lambda: lg.polarization_matrix(_norm, _marked(4, 5), V3),
    "x-empty": lambda: lg.polarization_matrix(_norm, torch.zeros(0, 3), V3),
    "x-scalar": lambda: lg.polarization_matrix(_norm, torch.tensor(MARK), V3),
    "x-nan": lambda: lg.polarization_matrix(_norm, torch.full((4, 3), math.nan), V3),
    "action-string": lambda: lg.polarization_matrix(_norm, _x(), "so(3)"),
    "action-class": lambda: lg.polarization_matrix(_norm, _x(), lg.VectorAction),
    "reduction": lambda: lg.polarization_matrix(_norm, _x(), V3, reduction="mean"),
    "reduction-tensor": lambda: lg.polarization_matrix(_norm, _x(), V3, reduction=_marked(2)),
    "ad-mode-list": lambda: lg.liegg(_norm, _x(), V3, ad_mode=[MARK]),
    "reference-numpy": lambda: lg.liegg(_norm, _x(), V3, reference=np.full((1, 3, 3), MARK)),
    "ad-mode": lambda: lg.polarization_matrix(_norm, _x(), V3, ad_mode="sideways"),
    "output-transform": lambda: lg.polarization_matrix(_norm, _x(), V3, output_transform=3),
    "model-not-callable": lambda: lg.polarization_matrix(_marked(2, 2), _x(), V3),
    "model-returns-dict": lambda: lg.polarization_matrix(lambda x: {"a": x, "b": x}, _x(), V3),
    "model-returns-string": lambda: lg.polarization_matrix(lambda x: "out", _x(), V3),
    "model-returns-list": lambda: lg.polarization_matrix(lambda x: [MARK, 2.0], _x(), V3),
    "model-nan": lambda: lg.polarization_matrix(lambda x: x * math.nan, _x(), V3),
    "output-action-type": lambda: lg.polarization_matrix(_norm, _x(), V3, output_action="vec"),
    "output-action-shape": lambda: lg.polarization_matrix(
        lambda x: x, _x(), V3, output_action=lg.VectorAction(dim=2)
    ),
    "output-action-sum": lambda: lg.polarization_matrix(
        lambda x: x, _x(), V3, reduction="sum", output_action=lg.VectorAction(dim=3)
    ),
    "output-action-rejects-output": lambda: lg.polarization_matrix(
        _norm, _x(), V3, output_action=lg.VectorAction(dim=3)
    ),
    "reference-shape": lambda: lg.liegg(_norm, _x(), V3, reference=torch.zeros(1, 2, 2)),
    "reference-name": lambda: lg.liegg(_norm, _x(), V3, reference="so(7"),
    "reference-nested-junk": lambda: lg.liegg(_norm, _x(), V3, reference=[[["a", MARK]]]),
    "reference-flat-list": lambda: lg.liegg(_norm, _x(), V3, reference=[MARK, 1.0]),
    "reference-nan": lambda: lg.liegg(_norm, _x(), V3, reference=torch.full((1, 3, 3), math.nan)),
    "reference-int": lambda: lg.liegg(_norm, _x(), V3, reference=torch.ones(1, 3, 3).long()),
    "chunk-size-zero": lambda: lg.liegg(_norm, _x(), V3, chunk_size=0),
    "chunk-size-float": lambda: lg.liegg(_norm, _x(), V3, chunk_size=2.5),
    "layers-not-module": lambda: lg.liegg(_norm, _x(), V3, layers=["net.0"]),
    "report-no-reference": lambda: _report().subspace_distance(),
    "report-k": lambda: _report().closure(k=-1),
    # -- actions --------------------------------------------------------------------------------
    "vector-dim-zero": lambda: lg.VectorAction(dim=0),
    "vector-dim-float": lambda: lg.VectorAction(dim=2.5),
    "vector-basis-shape": lambda: lg.VectorAction(3, basis=torch.zeros(1, 2, 2)),
    "vector-basis-list": lambda: lg.VectorAction(2, basis=[[MARK, 1.0], [0.0, 1.0]]),
    "vector-basis-zero": lambda: lg.VectorAction(3, basis=torch.zeros(1, 3, 3)),
    "image-padding": lambda: lg.ImageAction(padding="wrap"),
    "image-affine": lambda: lg.ImageAction(affine="yes"),
    "image-flat-input": lambda: IMG.transform(_marked(2, 30), algebras.rotation2d()[0]),
    "image-generator-shape": lambda: IMG.transform(IMAGES, torch.zeros(3, 3)),
    "image-generator-list": lambda: IMG.transform(IMAGES, [[0.0, -MARK], [MARK, 0.0]]),
    "transform-times-2d": lambda: V3.transform(_x(), torch.eye(3), t=torch.ones(2, 2)),
    "transform-times-string": lambda: V3.transform(_x(), torch.eye(3), t="soon"),
    "tangent-generators-list": lambda: V3.transform(_x(), [[MARK] * 3] * 3, t=1.0),
    "signal-padding": lambda: lg.SignalAction(padding="bogus"),
    "volume-input": lambda: lg.VolumeAction().transform(IMAGES, torch.zeros(3, 3)),
    "channel-zero": lambda: lg.ChannelAction(0),
    "channel-input": lambda: lg.ChannelAction(3).transform(IMAGES, torch.eye(3)),
    "tensor-dim": lambda: lg.TensorAction(dim=-1),
    "direct-sum-empty": lambda: lg.DirectSum(),
    "direct-sum-image": lambda: lg.DirectSum(lg.ImageAction()),
    "direct-sum-not-action": lambda: lg.DirectSum([MARK]),
    "direct-sum-shapes": lambda: lg.DirectSum(lg.VectorAction(2), lg.VectorAction(3)),
    "trivial-shape": lambda: lg.TrivialAction(2, generator_shape=(0, 1)),
    "trivial-on-inputs": lambda: lg.polarization_matrix(_norm, _x(), lg.TrivialAction(3)),
    # -- callback constructor -------------------------------------------------------------------
    "callback-action": lambda: lg.LieGGCallback("image"),
    "callback-every-n-epochs": lambda: lg.LieGGCallback(IMG, every_n_epochs=0),
    "callback-both-triggers": lambda: lg.LieGGCallback(
        IMG, every_n_epochs=1, every_n_train_steps=5
    ),
    "callback-num-samples-list": lambda: lg.LieGGCallback(IMG, num_samples=[MARK]),
    "callback-num-samples-float": lambda: lg.LieGGCallback(IMG, num_samples=2.5),
    "callback-reduction": lambda: lg.LieGGCallback(IMG, reduction="mean"),
    "callback-reference": lambda: lg.LieGGCallback(IMG, reference=torch.zeros(1, 3, 3)),
    "callback-output-transform": lambda: lg.LieGGCallback(IMG, output_transform=3),
    "callback-input-fn": lambda: lg.LieGGCallback(IMG, input_fn="x"),
    "callback-forward-fn": lambda: lg.LieGGCallback(IMG, forward_fn=_marked(2)),
    "callback-media-budget": lambda: lg.LieGGCallback(IMG, media_budget=2.0),
    "callback-tangent-cache": lambda: lg.LieGGCallback(IMG, tangent_cache_mb=-1.0),
    "callback-layers": lambda: lg.LieGGCallback(IMG, layers=5),
    # -- metric ---------------------------------------------------------------------------------
    "metric-action": lambda: lg.LieGG(3),
    "metric-reduction": lambda: lg.LieGG(V3, reduction="avg"),
    "metric-layers": lambda: lg.LieGG(V3, layers=2.5),
    "metric-update-list": lambda: lg.LieGG(V3).update(_norm, [[MARK, 1.0, 2.0]]),
    "metric-update-shape": lambda: lg.LieGG(V3).update(_norm, _marked(4, 5)),
    # -- replay ---------------------------------------------------------------------------------
    "replay-callback": lambda: lg.replay(_NotAModule, ".", None, callback=[MARK]),
    "replay-model": lambda: lg.replay(_NotAModule, ".", None, lg.LieGGCallback(IMG)),
    "replay-model-path": lambda: lg.replay("nowhere.Model", ".", None, lg.LieGGCallback(IMG)),
    "replay-no-checkpoints": lambda: lg.replay(
        "pytorch_lightning.LightningModule", "/nonexistent/ckpts", None, lg.LieGGCallback(IMG)
    ),
    # -- datasets -------------------------------------------------------------------------------
    "rotate-images-list": lambda: datasets.rotate_images([[MARK]], 0.5),
    "rotate-images-shape": lambda: datasets.rotate_images(_marked(3, 3), 0.5),
    "blur-sigma": lambda: datasets.gaussian_blur(IMAGES, -1.0),
    "blur-images-list": lambda: datasets.gaussian_blur([[MARK]], 1.0),
    "o5-target-shape": lambda: datasets.o5_target(_marked(2, 9)),
    "invariant-mass-shape": lambda: datasets.invariant_mass(_marked(2, 7)),
    "lorentz-mass-range": lambda: datasets.lorentz_data(8, mass_range=(2.0, 1.0)),
    "rotated-digits-split": lambda: datasets.rotated_digits("val"),
    "o5-data-n": lambda: datasets.o5_regression_data(0),
    # -- plotting -------------------------------------------------------------------------------
    "plot-spectrum-text": lambda: plotting.plot_spectrum("abc"),
    "plot-spectrum-2d": lambda: plotting.plot_spectrum([[MARK, 1.0]]),
    "plot-spectrum-dim": lambda: plotting.plot_spectrum([1e-3, 1.0], reference_dim=9),
    "plot-bias-empty": lambda: plotting.plot_bias([]),
    "plot-generators-shape": lambda: plotting.plot_generators(_marked(3), [1.0]),
    "plot-filmstrip-times": lambda: plotting.plot_filmstrip(torch.rand(3, 2, 5, 5), [0.0, 1.0]),
    "plot-history-empty": lambda: plotting.plot_history([0, 1], {}),
    "plot-evolution-shape": lambda: plotting.plot_evolution([0, 1, 2], _marked(2, 4)),
    # -- algebras -------------------------------------------------------------------------------
    "so-zero": lambda: algebras.so(0),
    "so-float": lambda: algebras.so(2.5),
    "gl-bool": lambda: algebras.gl(True),
    "from-name-unknown": lambda: algebras.from_name("so(7"),
    "from-name-not-string": lambda: algebras.from_name(MARK),
    "brightness-zero": lambda: algebras.brightness(0),
}


@pytest.mark.parametrize("call", list(CASES.values()), ids=list(CASES))
def test_bad_input_raises_a_clear_lieggerror(call):
    with pytest.raises(Exception) as caught:  # noqa: B017 (checked just below)
        call()
    err = caught.value
    assert isinstance(err, LieGGError), f"a raw {type(err).__name__}: {err}"
    msg = str(err)
    # "Expected <what was expected>, but <what came>" (got ..., found ..., 4 samples gave NaN)
    assert msg.startswith("Expected") and ", but " in msg, msg
    assert not any(d in msg for d in DIGITS), f"values in the message: {msg}"
    assert len(msg) < 1200, f"a message of {len(msg)} characters"


def test_the_table_covers_every_entry_point():
    groups = {name.split("-")[0] for name in CASES}
    assert len(CASES) >= 40
    for group in ("x", "callback", "metric", "replay", "plot", "so", "vector", "image"):
        assert group in groups, group
