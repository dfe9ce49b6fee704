"""Smoke tests: the demo (``make demo``) and the LightningCLI example run end to end.

Each runs in a subprocess, as a user would run it, writing into ``tmp_path``. The numbers of
these tiny runs mean nothing; the tests check that the table is printed and that the PNGs,
the JSON and TensorBoard event files (with LieGG scalars and images) are written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.slow


def tensorboard_tags(log_dir: Path) -> dict[str, list[str]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert list(log_dir.glob("events.out.tfevents.*")), f"no TensorBoard event file in {log_dir}"
    events = EventAccumulator(str(log_dir), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    return events.Tags()


def assert_png(path: Path) -> None:
    assert path.is_file(), f"missing {path}"
    assert path.read_bytes()[:8] == PNG_MAGIC, f"{path} is not a PNG"


def test_rotated_digits_demo_fast(tmp_path: Path, run_script) -> None:
    logdir, out_json = tmp_path / "runs", tmp_path / "final.json"
    script = "examples/rotated_digits.py"
    proc = run_script(
        script, "--fast", "--logdir", str(logdir), "--json", str(out_json), cwd=tmp_path
    )
    out = proc.stdout

    # one table per run: a header, then the untrained model ("start") and one row per epoch,
    # numbered from 0 like trainer.current_epoch (TensorBoard's epoch, the LieGG summary)
    assert out.count("val_acc   sym_var   rel_var") == 2, out
    for name in ("[rotated digits]", "[upright digits]"):
        assert name in out, f"missing the {name} table:\n{out}"
    rows = re.findall(
        r"^\s*(start|\d+)\s+(?:-|\d\.\d{3})\s+\S+e[-+]\d+\s+\S+e[-+]\d+\s+x", out, re.M
    )
    results = json.loads(out_json.read_text())
    epochs = results["args"]["epochs"]
    assert rows == 2 * ["start", *map(str, range(epochs))], out
    # the summary under each table names the same last epoch as the table's last row
    assert out.count(f"epoch {epochs - 1} (fit)") == 2, out
    assert f"After {epochs} epochs (last evaluation: epoch {epochs - 1}):" in out
    for label in ("validation accuracy", "rotation bias", "symmetry dimension"):
        assert label in out, f"missing {label!r} in the summary:\n{out}"
    assert f"tensorboard --logdir {logdir}" in out

    assert_png(logdir / "symmetry_evolution.png")
    assert set(results["runs"]) == {"rotated", "upright"}
    for name, run_result in results["runs"].items():
        log_dir = Path(run_result["log_dir"])
        assert log_dir.parent == logdir / name
        assert_png(log_dir / "spectrum_evolution.png")
        assert len(json.loads((log_dir / "liegg_history.json").read_text())) == epochs + 1
        tags = tensorboard_tags(log_dir)
        for tag in ("liegg/symmetry_bias", "liegg/relative_variance", "val_acc"):
            assert tag in tags["scalars"], f"{tag} not logged for {name}: {tags['scalars']}"
        assert "liegg/generators" in tags["images"], tags["images"]
        assert run_result["epoch"] == epochs - 1 and run_result["epochs_done"] == epochs
        assert 0 <= run_result["rotation_bias"] <= 1


def test_rotated_digits_demo_no_control(tmp_path: Path, run_script) -> None:
    logdir = tmp_path / "runs"
    script = "examples/rotated_digits.py"
    out = run_script(
        script, "--fast", "--no-control", "--epochs", "1", "--logdir", str(logdir), cwd=tmp_path
    )
    assert "[rotated digits]" in out.stdout and "[upright digits]" not in out.stdout
    assert not (logdir / "upright").exists()
    assert_png(logdir / "symmetry_evolution.png")


def test_lightning_cli_example_with_callback_from_yaml(tmp_path: Path, run_script) -> None:
    logs = tmp_path / "cli_logs"
    proc = run_script(
        "examples/cli/train.py",
        "fit",
        "--config",
        str(EXAMPLES / "cli" / "config.yaml"),
        "--trainer.max_epochs=1",
        "--trainer.limit_train_batches=3",
        "--trainer.limit_val_batches=1",
        "--trainer.enable_progress_bar=false",
        f"--trainer.logger.init_args.save_dir={logs}",
        "--trainer.callbacks.init_args.num_samples=32",
        "--data.copies=1",
        "--model.width=32",
        cwd=tmp_path,
    )
    log_dir = logs / "rotated_digits" / "version_0"
    tags = tensorboard_tags(log_dir)
    for tag in ("liegg/symmetry_bias", "liegg/subspace_distance", "liegg/symmetry_variance"):
        assert tag in tags["scalars"], f"{tag} not logged: {tags['scalars']}\n{proc.stderr[-2000:]}"
    assert {"liegg/generators", "liegg/filmstrip"} <= set(tags["images"]), tags["images"]
    # the CLI saved the resolved config: the callback came from YAML, by import path
    config = (log_dir / "config.yaml").read_text()
    assert "lightning_liegg.LieGGCallback" in config and "lightning_liegg.l2_normalize" in config
    assert "rotation2d" in config
