"""The README's Python snippets compile, and the self-contained ones run."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_snippets():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_snippet_compiles(index):
    compile(BLOCKS[index], f"README block {index}", "exec")


SELF_CONTAINED = [i for i, b in enumerate(BLOCKS) if "from lightning_liegg.testing" in b]


@pytest.mark.parametrize("index", SELF_CONTAINED)
def test_self_contained_snippet_runs(index, capsys):
    exec(compile(BLOCKS[index], f"README block {index}", "exec"), {})
    out = capsys.readouterr().out
    if "symmetry_dim" in BLOCKS[index]:
        assert "\n10\n" in out
