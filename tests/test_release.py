"""Release metadata: one repository URL everywhere, README links that resolve, the licence."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
MKDOCS = (ROOT / "mkdocs.yml").read_text()
REPO = PYPROJECT["urls"]["Repository"]
DOCS = PYPROJECT["urls"]["Documentation"]
README = (ROOT / "README.md").read_text()


def test_one_repository_and_docs_url():
    assert re.search(rf"^repo_url: {re.escape(REPO)}$", MKDOCS, re.M)
    assert re.search(rf"^site_url: {re.escape(DOCS)}$", MKDOCS, re.M)
    for url in PYPROJECT["urls"].values():
        assert url.startswith((REPO, DOCS))


def test_readme_links_are_absolute_and_resolve():
    links = re.findall(r"\]\(([^)\s]+)\)|<(https?://[^>]+)>", README)
    links = [a or b for a, b in links]
    assert links
    for link in links:
        assert link.startswith("https://"), f"PyPI shows the README: {link} must be absolute"
        if link.startswith(DOCS):  # a page of the site: docs/<path>.md or <path>/index.md
            path = link[len(DOCS) :].split("#")[0].strip("/")
            candidates = [f"{path}.md", f"{path}/index.md"] if path else ["index.md"]
            assert any((ROOT / "docs" / c).exists() for c in candidates), link
        elif link.startswith(REPO + "/blob/main/"):
            assert (ROOT / link[len(REPO + "/blob/main/") :]).exists(), link
        elif "raw.githubusercontent.com" in link:
            owner_name = REPO.removeprefix("https://github.com/")
            prefix = f"https://raw.githubusercontent.com/{owner_name}/main/"
            assert link.startswith(prefix), link
            assert (ROOT / link[len(prefix) :]).exists(), link


def test_long_description_and_licence():
    assert PYPROJECT["readme"] == {"file": "README.md", "content-type": "text/markdown"}
    assert PYPROJECT["license"] == "MIT"
    assert PYPROJECT["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT")
    assert (ROOT / "CHANGELOG.md").read_text().count("## [Unreleased]") == 1
