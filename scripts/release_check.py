"""Install a built wheel into a clean virtual environment and run the README's snippet there.

``make release-check`` runs this after ``python -m build`` and ``twine check``. The venv gets
torch first (``--torch``, pinned as in the Makefile, with ``--torch-pip-args``: pip's own index
and find-links otherwise), then the wheel with its runtime dependencies only (no extras, so no
``lightning`` package: the snippet runs with ``import pytorch_lightning as L``). It checks that
``pip show`` displays the licence and the project URLs, then runs the README's quickstart
snippet, a tiny fit with the callback, in an empty folder.

    python scripts/release_check.py dist/lightning_liegg-0.1.0-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- --8<-- [start:quickstart] -->", "<!-- --8<-- [end:quickstart] -->"


def quickstart_snippet(readme: Path = ROOT / "README.md") -> str:
    """The README's quickstart block (between its snippet markers), without the fences."""
    text = readme.read_text()
    section = text.split(START, 1)[1].split(END, 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    if match is None:
        raise SystemExit(f"Expected a python block between {START} and {END} in {readme}")
    return match.group(1)


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a command, echoing it; fail loudly."""
    print("+", shlex.join(command), flush=True)
    return subprocess.run(command, check=True, **kwargs)


def main(argv: list[str] | None = None) -> None:
    """Create the venv, install torch and the wheel, check the metadata, run the snippet."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path)
    parser.add_argument("--torch", default="torch==2.13.0")
    parser.add_argument("--torch-pip-args", default="", help="e.g. --index-url ...")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    metadata = (
        zipfile.ZipFile(args.wheel)
        .read(
            next(
                n
                for n in zipfile.ZipFile(args.wheel).namelist()
                if n.endswith(".dist-info/METADATA")
            )
        )
        .decode()
    )
    for needed in ("License-Expression: MIT", "License-File: LICENSE", "text/markdown"):
        if needed not in metadata:
            raise SystemExit(f"Expected '{needed}' in the wheel's METADATA, but it is missing")
    with tempfile.TemporaryDirectory(prefix="liegg-release-") as tmp:
        venv = Path(tmp) / "venv"
        run([sys.executable, "-m", "venv", str(venv)])
        python = str(venv / "bin" / "python")
        pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        run([*pip, "--upgrade", "pip"])  # an old pip shows License-Expression as ""
        run([*pip, *shlex.split(args.torch_pip_args), args.torch])
        run([*pip, str(args.wheel.resolve())])
        show = run(
            [python, "-m", "pip", "show", "--verbose", "lightning-liegg"],
            capture_output=True,
            text=True,
        ).stdout
        for needed in ("License-Expression: MIT", "Documentation, https://"):
            if needed not in show:
                raise SystemExit(f"Expected '{needed}' in pip show, but got:\n{show}")
        for extra in ("lightning", "pytest"):  # runtime dependencies only
            found = subprocess.run([python, "-c", f"import {extra}"], capture_output=True)
            if found.returncode == 0:
                raise SystemExit(f"Expected a clean venv without {extra}, but it imports")
        snippet = quickstart_snippet().replace(
            "import lightning as L  # or: import pytorch_lightning as L",
            "import pytorch_lightning as L",
        )
        work = Path(tmp) / "work"
        work.mkdir()
        (work / "quickstart.py").write_text(snippet)
        out = run([python, "quickstart.py"], cwd=work, capture_output=True, text=True).stdout
        if "'relative_variance'" not in out:
            raise SystemExit(f"Expected the callback's scalars in the output, but got:\n{out}")
        print(out.strip().splitlines()[-1])
    print(f"release check: OK ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
