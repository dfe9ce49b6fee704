"""The examples in docstrings run and print what they claim."""

import doctest
import importlib

import pytest

MODULES = [
    "lightning_liegg.functional.actions.vector",
    "lightning_liegg.functional.actions.tensor",
    "lightning_liegg.functional.actions.algebraic",
    "lightning_liegg.functional.actions.channel",
    "lightning_liegg.functional.polarization",
    "lightning_liegg.functional.analysis",
    "lightning_liegg.metric",
    "lightning_liegg.testing",
    "lightning_liegg.callback",
    "lightning_liegg._samples",
    "lightning_liegg.history",
    "lightning_liegg._checks",
    "lightning_liegg.functional.actions.grid",
    "lightning_liegg.functional.actions.vector_field",
    "lightning_liegg.replay",
    "lightning_liegg.functional.violation",
    "lightning_liegg.functional.discrete",
    "lightning_liegg.transforms",
    "lightning_liegg.functional.steer",
    "lightning_liegg.regularizer",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0, f"{name} has no docstring example"
