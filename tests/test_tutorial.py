"""The tutorial (docs/tutorial.py, a jupytext script) runs as a notebook and shows its figures."""

from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.py"

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_tutorial_notebook_executes():
    notebook = jupytext.read(TUTORIAL)
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT)}},  # imports this checkout's package
    )
    client.execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(output.get("output_type") != "error" for cell in code for output in cell.outputs)
    text = "".join(output.get("text", "") for cell in code for output in cell.outputs)
    assert "step    0  relative variance" in text  # the history, before training
    assert "SymmetryReport(" in text
    images = [
        output for cell in code for output in cell.outputs if "image/png" in output.get("data", {})
    ]
    assert len(images) >= 5  # history, evolution, generators, spectrum, filmstrip
