"""Shared fixtures: one dtype/tolerance table and seeding for every numeric test."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

# Tolerances by dtype: relative errors for comparisons of polarization matrices and spectra.
TOLERANCES = {torch.float32: 1e-4, torch.float64: 1e-10}


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Every test starts from the same global RNG state."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    """Run a numeric test in float32 and in float64."""
    return request.param


@pytest.fixture
def tol(dtype: torch.dtype) -> float:
    """The relative tolerance that goes with ``dtype``."""
    return TOLERANCES[dtype]


@pytest.fixture
def run_script(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a script as a user would: ``run_script("examples/demo.py", "--fast", cwd=...)``.

    The first argument is a path relative to the repository root (or ``"-c"``); the script
    runs in a fresh Python with warnings off and the Agg backend (``env`` adds to both), in
    ``cwd`` (default ``tmp_path``), and must exit with 0. Returns the completed process.
    """

    def run(
        script: str,
        *args: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "PYTHONWARNINGS": "ignore", "MPLBACKEND": "Agg", **(env or {})}
        target = script if script.startswith("-") else str(ROOT / script)
        proc = subprocess.run(
            [sys.executable, target, *args],
            cwd=cwd or tmp_path,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert proc.returncode == 0, (
            f"{script} exited with {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
        return proc

    return run


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / max(||b||, tiny), in float64."""
    a64, b64 = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a64 - b64).norm() / b64.norm().clamp_min(1e-300))


torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def demo_rotated_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """The demo's rotated half at its defaults, run once per session in a fresh interpreter.

    Returns its ``--json`` summary and its TensorBoard log directory (the results-block check
    and the demo's TensorBoard test read the same run: about 45 s saved).
    """
    import json

    tmp = tmp_path_factory.mktemp("demo")
    out = tmp / "summary.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "rotated_digits.py"), "--no-control",
         "--json", str(out), "--logdir", str(tmp / "runs")],
        cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "MPLBACKEND": "Agg"},
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(out.read_text())
    return summary, Path(summary["runs"]["rotated"]["log_dir"])
