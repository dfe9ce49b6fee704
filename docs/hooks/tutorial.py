"""MkDocs hook: render the jupytext tutorial script as a page.

``docs/tutorial.md`` holds the marker ``<!-- tutorial: docs/tutorial.py -->``; this hook
replaces it with the script's cells: markdown cells as text, code cells as Python blocks. The
script is executed as a notebook by ``tests/test_tutorial.py``, not at docs build.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_MARKER = re.compile(r"<!-- tutorial: (\S+) -->")


def percent_to_markdown(source: str) -> str:
    """The cells of a percent-format script as markdown (front matter dropped)."""
    cells: list[tuple[str, list[str]]] = []
    for line in source.splitlines():
        if line.startswith("# %%"):
            cells.append(("markdown" if "[markdown]" in line else "code", []))
        elif cells:
            cells[-1][1].append(line)
    out = []
    for kind, lines in cells:
        text = "\n".join(lines).strip("\n")
        if not text:
            continue
        if kind == "markdown":
            out.append("\n".join(re.sub(r"^# ?", "", line) for line in text.splitlines()))
        else:
            out.append(f"```python\n{text}\n```")
    return "\n\n".join(out) + "\n"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace the tutorial marker with the rendered script."""

    def render(match: re.Match[str]) -> str:
        path = Path(config["config_file_path"]).parent / match.group(1)
        return percent_to_markdown(path.read_text())

    return _MARKER.sub(render, markdown)
