"""Without the extras (scikit-learn, jsonargparse) the package imports, ``liegg`` and a fit
with the callback run; the digits loader and the replay CLI name the extra to install."""

from __future__ import annotations

import textwrap

from tests.conftest import ROOT

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, importlib.util, sys

    class Hide(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        # imports of the two modules fail as if they were not installed

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("sklearn", "jsonargparse"):
                return importlib.util.spec_from_loader(name, self)
            return None

        def create_module(self, spec):
            raise ModuleNotFoundError(f"No module named {spec.name!r} (hidden)", name=spec.name)

        def exec_module(self, module):
            raise AssertionError("unreachable")

    sys.meta_path.insert(0, Hide())

    import torch
    import pytorch_lightning as pl
    import lightning_liegg as lg
    from tests.integration.models import TinyDataModule, TinyImageModel

    x = torch.randn(32, 3, dtype=torch.float64)
    report = lg.liegg(lambda v: (v**2).sum(1), x, lg.VectorAction(dim=3), reference="so(3)")
    assert report.symmetry_dim == 3, report.symmetry_dim

    cb = lg.LieGGCallback(lg.ImageAction(), num_samples=8, log_images=False, print_summary=False)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, callbacks=[cb],
                         enable_progress_bar=False, enable_model_summary=False,
                         accelerator="cpu", default_root_dir=sys.argv[1])
    trainer.fit(TinyImageModel(), TinyDataModule())
    assert [e.step for e in cb.history] == [0, 6], cb.history

    for call, extra in ((lg.datasets.load_digits_images, "datasets"),
                        (lambda: lg.replay.main(["--help"]), "cli")):
        try:
            call()
        except lg.LieGGError as err:
            assert f"lightning-liegg[{extra}]" in str(err), str(err)
            print("named", extra)
        else:
            raise AssertionError(f"{extra}: no error")
    assert "sklearn" not in sys.modules and "jsonargparse" not in sys.modules
    print("ok")
    """
)


def test_package_works_without_the_extras(run_script, tmp_path):
    proc = run_script("-c", SCRIPT, str(tmp_path), env={"PYTHONPATH": str(ROOT)})
    assert proc.stdout.split() == ["named", "datasets", "named", "cli", "ok"], proc.stdout
