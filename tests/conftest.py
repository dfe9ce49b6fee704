"""Shared fixtures: one dtype/tolerance table and seeding for every numeric test."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

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


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / max(||b||, tiny), in float64."""
    a64, b64 = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a64 - b64).norm() / b64.norm().clamp_min(1e-300))


torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
