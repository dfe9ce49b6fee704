"""The README and the documentation pages: their Python snippets compile, the self-contained
ones run, the README stays short and its quickstart commands work as written."""

import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = sorted(p for p in (ROOT / "docs").rglob("*.md") if "reference" not in p.parts)
FENCE = re.compile(r"^( *)```python\n(.*?)^\1```", flags=re.S | re.M)


def python_blocks(path):
    """(name, code) of every python block of a markdown file; tab-indented ones dedented."""
    text = path.read_text()
    return [
        (f"{path.relative_to(ROOT)} block {i}", textwrap.dedent(m.group(2)))
        for i, m in enumerate(FENCE.finditer(text))
    ]


BLOCKS = [block for path in [README, *PAGES] for block in python_blocks(path)]
IDS = [name for name, _ in BLOCKS]


def test_readme_is_short_and_has_snippets():
    assert len(README.read_text().splitlines()) <= 250
    assert len(python_blocks(README)) >= 2
    assert len(BLOCKS) >= 15


def test_readme_site_links_point_at_pages():
    """Every documentation-site link of the README names a page of docs/ (site URLs drop .md)."""
    site = "https://lightning-liegg.github.io/lightning-liegg/"
    paths = re.findall(re.escape(site) + r"([\w/-]*)", README.read_text())
    assert len(paths) >= 10, paths
    missing = [
        path
        for path in paths
        if not (ROOT / "docs" / f"{path.strip('/') or 'index'}.md").is_file()
        and not (ROOT / "docs" / path.strip("/") / "index.md").is_file()
    ]
    assert not missing, f"README links to site pages that docs/ lacks: {missing}"


@pytest.mark.parametrize(("name", "code"), BLOCKS, ids=IDS)
def test_snippet_compiles(name, code):
    compile(code, name, "exec")


SELF_CONTAINED = [(n, c) for n, c in BLOCKS if "from lightning_liegg.testing" in c]


def test_there_are_self_contained_snippets():
    assert {n.split(" block")[0] for n, _ in SELF_CONTAINED} >= {
        "README.md",
        "docs/how-to/without-lightning.md",
        "docs/how-to/equivariant.md",
        "docs/how-to/layers.md",
    }


@pytest.mark.parametrize(("name", "code"), SELF_CONTAINED, ids=[n for n, _ in SELF_CONTAINED])
def test_self_contained_snippet_runs(name, code, capsys):
    exec(compile(code, name, "exec"), {})
    out = capsys.readouterr().out
    if "symmetry_dim" in code:
        assert "\n10\n" in out
    if "subspace_distance())  # ~1e-15" in code:  # printed right after the dimension
        assert float(re.search(r"\n10\n(\S+)\n", out).group(1)) < 1e-12


# The domain snippets (signals, volumes, colour) run too; each leaves its ``report`` behind.
DOMAINS = {"SignalAction(": 1, "VolumeAction(": 3, "ChannelAction(": 6}
DOMAIN_BLOCKS = [
    (name, code, dim)
    for name, code in BLOCKS
    for key, dim in DOMAINS.items()
    if key in code and "lg.liegg(" in code
]


def test_every_domain_has_a_snippet():
    assert len(DOMAIN_BLOCKS) == len(DOMAINS)


@pytest.mark.parametrize(("name", "code", "dim"), DOMAIN_BLOCKS, ids=[b[0] for b in DOMAIN_BLOCKS])
def test_domain_snippet_runs(name, code, dim):
    namespace: dict = {}
    exec(compile(code, name, "exec"), namespace)
    report = namespace["report"]
    assert report.symmetry_dim == dim
    assert report.subspace_distance() < 1e-3


# The README's quickstart: a complete fit, under both Lightning namespaces.
sys.path.insert(0, str(ROOT / "scripts"))
from release_check import quickstart_snippet  # noqa: E402

QUICKSTART = quickstart_snippet()
NAMESPACES = {
    "lightning": "import lightning as L  # or: import pytorch_lightning as L",
    "pytorch_lightning": "import pytorch_lightning as L",
}


@pytest.mark.integration
@pytest.mark.parametrize("namespace", NAMESPACES)
def test_readme_quickstart_fits(namespace, tmp_path, monkeypatch, capsys):
    assert NAMESPACES["lightning"] in QUICKSTART
    code = QUICKSTART.replace(NAMESPACES["lightning"], NAMESPACES[namespace])
    monkeypatch.chdir(tmp_path)  # lightning_logs/ lands here
    namespace_dict: dict = {"__name__": "__main__"}
    exec(compile(code, "README quickstart", "exec"), namespace_dict)
    history = namespace_dict["callback"].history
    assert len(history) == 6  # step 0 and one per epoch
    assert "'relative_variance'" in capsys.readouterr().out
    assert list((tmp_path / "lightning_logs").rglob("events.out.tfevents.*"))


def test_the_docs_page_includes_the_readme_quickstart():
    page = (ROOT / "docs" / "getting-started.md").read_text()
    assert '--8<-- "README.md:quickstart"' in page


# The quickstart's command block: its `make tensorboard` line starts TensorBoard from the venv.
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_readme_tensorboard_line_serves(tmp_path):
    commands = re.search(r"```bash\n(.*?)```", README.read_text(), re.S).group(1)
    (line,) = [c for c in commands.splitlines() if "tensorboard" in c.split("#")[0]]
    argv = line.split("#")[0].split()
    assert argv == ["make", "tensorboard"]
    stamp = tmp_path / "stamp"  # the venv is installed already: skip the Makefile's install
    stamp.touch()
    port = _free_port()
    variables = [f"VENV={Path(sys.executable).parents[1]}", f"STAMP={stamp}"]
    variables += [f"TB_PORT={port}", f"TB_LOGDIR={tmp_path}"]
    process = subprocess.Popen(
        [*argv, *variables],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    assert response.status == 200
                    assert b"TensorBoard" in response.read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    out = process.stdout.read().decode() if process.poll() is not None else ""
                    pytest.fail(f"TensorBoard did not serve on port {port}: {out[-2000:]}")
                time.sleep(0.5)
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)
