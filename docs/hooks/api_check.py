"""MkDocs hook: fail the build when a public name has no entry in the API reference.

The public names are those of ``lightning_liegg.__all__`` and, recursively, of the ``__all__``
of every public module it exports (``plotting``, ``datasets``, ``algebras``, ...), plus
``lightning_liegg.functional``. A name has an entry when the reference pages render a heading
whose anchor is its dotted path, or one whose path resolves to the very same object (the
functional API's names are the top-level ones). Dunder names (``__version__``) are exempt.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

from mkdocs.exceptions import PluginError

PACKAGE = "lightning_liegg"
EXTRA_MODULES = ("lightning_liegg.functional",)
_ANCHOR = re.compile(r'id="(lightning_liegg(?:\.[A-Za-z_]\w*)*)"')
_rendered: set[str] = set()


def public_names() -> dict[str, Any]:
    """Dotted path -> object for every public name of the package."""
    names: dict[str, Any] = {}
    seen: set[int] = set()

    def visit(path: str, module: Any) -> None:
        if id(module) in seen:
            return
        seen.add(id(module))
        for name in getattr(module, "__all__", ()):
            if name.startswith("__"):
                continue
            obj = getattr(module, name)
            names[f"{path}.{name}"] = obj
            if inspect.ismodule(obj):
                visit(f"{path}.{name}", obj)

    visit(PACKAGE, importlib.import_module(PACKAGE))
    for module in EXTRA_MODULES:
        visit(module, importlib.import_module(module))
    return names


def _resolve(path: str) -> Any:
    obj: Any = importlib.import_module(PACKAGE)
    for part in path.split(".")[1:]:
        obj = getattr(obj, part)
    return obj


def missing_entries(rendered: set[str]) -> list[str]:
    """The public names without a rendered entry, sorted."""
    documented = set()
    for path in rendered:
        try:
            documented.add(id(_resolve(path)))
        except AttributeError:
            continue
    return sorted(
        path
        for path, obj in public_names().items()
        if path not in rendered and id(obj) not in documented
    )


def on_pre_build(config: Any) -> None:
    """Forget the anchors of a previous build (``mkdocs serve`` rebuilds in one process)."""
    _rendered.clear()


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Collect the anchors of the API reference pages."""
    if page.file.src_uri.startswith("reference/"):
        _rendered.update(_ANCHOR.findall(html))
    return html


def on_post_build(config: Any) -> None:
    """Fail when a public name has no entry."""
    missing = missing_entries(_rendered)
    if missing:
        raise PluginError(
            "Expected an API reference entry for every public name, but got none for: "
            + ", ".join(missing)
            + " (add a `::: <name>` block to a page under docs/reference/)"
        )
