"""LieGGCallback(layers=...) in a real Trainer: per-layer scalars and figures read back from
TensorBoard, the history record, no hook left on the model, and DDP."""

from __future__ import annotations

import pytest
import torch
from pytorch_lightning.loggers import TensorBoardLogger

import lightning_liegg as lg

from .helpers import read_events, scalar_steps, single_and_ddp, trainer
from .models import TinyDataModule, TinyImageModel

LAYER_SCALARS = [
    "relative_variance",
    "symmetry_dim",
    "symmetry_bias",
    "subspace_distance",
    "reference_variance",
]


def hooks(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_per_layer_scalars_heatmap_and_history(tmp_path):
    logger = TensorBoardLogger(tmp_path, name="tb")
    cb = lg.LieGGCallback(
        lg.ImageAction(),
        reference="rotation2d",
        num_samples=32,
        media_budget=None,
        layers=["net.3", "net.1"],
    )
    model = TinyImageModel()
    t = trainer(tmp_path, max_epochs=2, logger=logger, callbacks=[cb])
    t.fit(model, TinyDataModule())
    assert hooks(model) == 0
    steps = [r.step for r in cb.history]
    assert steps == [0, 6, 12]
    report = cb.last_layer_report
    assert list(report) == ["net.1", "net.3", "output"]  # forward order
    assert report["output"].relative_variance == pytest.approx(cb.last_report.relative_variance)
    # the last evaluation's per-layer results equal a direct layer-wise run on the same samples
    direct = lg.liegg(
        model, cb.samples, lg.ImageAction(), reference="rotation2d", layers=["net.1", "net.3"]
    )
    for name in direct:
        assert report[name].relative_variance == pytest.approx(
            direct[name].relative_variance, rel=1e-4
        )
    record = cb.history[-1]
    assert list(record.layers) == ["net.1", "net.3", "output"]
    assert record.layers["net.1"]["scalars"]["relative_variance"] == pytest.approx(
        report["net.1"].relative_variance
    )
    # plain JSON in the checkpoint, read back
    restored = lg.LieGGCallback(lg.ImageAction(), layers=["net.1"])
    restored.load_state_dict(cb.state_dict())
    assert restored.history[-1].layers == record.layers

    acc = read_events(logger.log_dir)
    scalars = acc.Tags()["scalars"]
    for name in ("net.1", "net.3", "output"):
        for key in LAYER_SCALARS:
            tag = f"liegg/layers/{name}/{key}"
            assert tag in scalars, tag
            assert scalar_steps(acc, tag) == steps, tag
    logged = [e.value for e in acc.Scalars("liegg/layers/net.3/reference_variance")]
    want = [r.layers["net.3"]["scalars"]["reference_variance"] for r in cb.history]
    assert logged == pytest.approx(want, rel=1e-6)
    images = acc.Tags()["images"]
    for tag in ("liegg/layer_heatmap", "liegg/layer_generators"):
        assert tag in images, images
        events = acc.Images(tag)
        assert [e.step for e in events] == steps
        assert events[-1].width > 100 and events[-1].height > 80


def test_auto_layers_and_csv(tmp_path):
    cb = lg.LieGGCallback(lg.ImageAction(), num_samples=16, log_images=False, layers="auto")
    t = trainer(tmp_path, max_epochs=1, logger=False, callbacks=[cb], enable_checkpointing=False)
    model = TinyImageModel()
    t.fit(model, TinyDataModule())
    # TinyImageModel has one Sequential child: its leaf modules, in forward order
    assert list(cb.last_layer_report) == [*(f"net.{i}" for i in range(6)), "output"]
    assert "reference_variance" not in cb.history[-1].layers["net.1"]["scalars"]
    cb.to_csv(tmp_path / "h.csv")
    header = (tmp_path / "h.csv").read_text().splitlines()[0].split(",")
    assert "layers/net.3/relative_variance" in header
    assert hooks(model) == 0


class FailsInAnalysis(TinyImageModel):
    """Raises inside the analysis only (under a torch.func transform), after net.1 ran."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.net[:2](x)
        if torch._C._functorch.is_functorch_wrapped_tensor(h):
            raise RuntimeError("analysis-only failure")
        return self.net[2:](h)


def test_no_hook_left_after_a_failed_analysis(tmp_path):
    model = FailsInAnalysis()
    cb = lg.LieGGCallback(lg.ImageAction(), num_samples=16, log_images=False, layers=["net.1"])
    t = trainer(tmp_path, max_epochs=1, logger=False, callbacks=[cb], enable_checkpointing=False)
    with pytest.warns(lg.LieGGWarning, match="analysis-only failure"):
        t.fit(model, TinyDataModule())
    assert cb.history == []
    assert hooks(model) == 0


def test_layer_errors_are_clear():
    with pytest.raises(lg.LieGGError, match="layers"):
        lg.LieGGCallback(lg.ImageAction(), layers=3)
    with pytest.raises(lg.LieGGError, match="For layer 'net.1'"):
        lg.LieGGCallback(lg.ImageAction(), layers={"net.1": lg.VectorAction(dim=3)})


def test_unknown_layer_fails_at_setup(tmp_path):
    cb = lg.LieGGCallback(lg.ImageAction(), num_samples=16, log_images=False, layers=["net.9"])
    t = trainer(tmp_path, max_epochs=1, logger=False, callbacks=[cb], enable_checkpointing=False)
    model = TinyImageModel()
    with pytest.raises(lg.LieGGError, match=r"no submodule 'net.9'.*Close names"):
        t.fit(model, TinyDataModule())
    assert hooks(model) == 0


def test_training_is_bitwise_identical_with_layers(tmp_path):
    torch.manual_seed(1)
    weights = TinyImageModel().state_dict()
    finals = []
    cb = lg.LieGGCallback(lg.ImageAction(), num_samples=16, layers="auto")
    for callbacks in ([], [cb]):
        model = TinyImageModel()
        model.load_state_dict(weights)
        torch.manual_seed(0)
        t = trainer(
            tmp_path, max_epochs=1, logger=False, callbacks=callbacks, enable_checkpointing=False
        )
        t.fit(model, TinyDataModule(shuffle=False))
        finals.append(model.state_dict())
    # the callback did analyse every layer at every evaluation (at the start and each epoch)
    assert [r.step for r in cb.history] == [0, 6]
    for record in cb.history:
        assert len(record.layers) >= 3 and list(record.layers)[-1] == "output", record.layers
        assert all(len(data["relative_spectrum"]) == 4 for data in record.layers.values())
    for key in finals[0]:
        assert torch.equal(finals[0][key], finals[1][key]), key


@pytest.mark.slow
def test_ddp_layers_match_single_process(tmp_path):
    results = {}
    for name, kwargs, model in single_and_ddp(TinyImageModel, seed=3):
        logger = TensorBoardLogger(tmp_path / name, name="tb", version=0)
        cb = lg.LieGGCallback(
            lg.ImageAction(),
            reference="rotation2d",
            num_samples=48,
            media_budget=None,
            layers=["net.1", "net.3"],
        )
        t = trainer(
            tmp_path / name,
            max_epochs=1,
            logger=logger,
            callbacks=[cb],
            enable_checkpointing=False,
            **kwargs,
        )
        t.validate(model, TinyDataModule(), verbose=False)
        results[name] = read_events(logger.log_dir)
    for layer in ("net.1", "net.3", "output"):
        for key in ("relative_variance", "reference_variance"):
            tag = f"liegg/layers/{layer}/{key}"
            got = [e.value for e in results["ddp"].Scalars(tag)]
            want = [e.value for e in results["single"].Scalars(tag)]
            assert got == pytest.approx(want, rel=1e-4), tag
    assert "liegg/layer_heatmap" in results["ddp"].Tags()["images"]


def test_layers_with_an_output_action(tmp_path):
    """The output keeps its output action (equivariance); the layers their own (invariance)."""
    cb = lg.LieGGCallback(
        lg.ImageAction(),
        num_samples=16,
        log_images=False,
        output_action=lg.VectorAction(dim=2),  # two logits read as a 2-vector
        layers=["net.1"],
    )
    t = trainer(tmp_path, max_epochs=1, logger=False, callbacks=[cb], enable_checkpointing=False)
    model = TinyImageModel()
    t.fit(model, TinyDataModule())
    record = cb.history[-1]
    assert record.output_action == repr(lg.VectorAction(dim=2))
    assert list(record.layers) == ["net.1", "output"]
    direct = lg.liegg(
        model, cb.samples, lg.ImageAction(), output_action=lg.VectorAction(dim=2), layers=["net.1"]
    )
    for name in direct:
        assert cb.last_layer_report[name].relative_variance == pytest.approx(
            direct[name].relative_variance, rel=1e-4
        )
    assert hooks(model) == 0


def test_layers_of_a_two_input_model_with_forward_fn(tmp_path):
    """With forward_fn the model runs inside a wrapper; layer names still are the model's."""
    from .test_model_signatures import TwoInputModel, _loaders, _two_input_callback

    cb = _two_input_callback(layers=["net.2"])
    t = trainer(tmp_path, max_epochs=1, logger=False, callbacks=[cb], enable_checkpointing=False)
    model = TwoInputModel()
    t.fit(model, *_loaders())
    assert list(cb.last_layer_report) == ["net.2", "output"]
    # net.2 (Tanh) does not see the second input: a plain layer-wise run on the images agrees
    direct = lg.liegg(model.net, cb.samples, lg.ImageAction(), layers=["2"])
    assert cb.last_layer_report["net.2"].relative_variance == pytest.approx(
        direct["2"].relative_variance, rel=1e-4
    )
    assert hooks(model) == 0
