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


# The domain snippets (signals, volumes, colour) run too; each leaves its ``report`` behind.
DOMAINS = {"SignalAction(": 1, "VolumeAction(": 3, "ChannelAction(": 6}
DOMAIN_BLOCKS = [
    (i, dim)
    for i, b in enumerate(BLOCKS)
    for key, dim in DOMAINS.items()
    if key in b and "lg.liegg(" in b
]


def test_every_domain_has_a_snippet():
    assert len(DOMAIN_BLOCKS) == len(DOMAINS)


@pytest.mark.parametrize(("index", "dim"), DOMAIN_BLOCKS)
def test_domain_snippet_runs(index, dim):
    namespace: dict = {}
    exec(compile(BLOCKS[index], f"README block {index}", "exec"), namespace)
    report = namespace["report"]
    assert report.symmetry_dim == dim
    assert report.subspace_distance() < 1e-3
