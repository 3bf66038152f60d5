"""Every page source in the tree is in the toc or excluded by _config.yml.

Sphinx reads every .md and .ipynb below the book's root that `exclude_patterns` does not exclude;
one that no toctree lists gives "document isn't included in any toctree", which the strict build
(-W) turns into a failure. Tools write such files next to the book (pytest's .pytest_cache/README.md
made `make test` fail on its second run), so the whole tree is checked, not just the committed files.
"""
from __future__ import annotations

import os
from pathlib import Path

import yaml
from sphinx.util.matching import Matcher

from conftest import BOOK_ROOT, book_docs

SUFFIXES = (".md", ".ipynb")


def is_excluded(excluded: Matcher, path: str) -> bool:
    """As Sphinx decides: the file matches a pattern, or a folder on its way does (it is not entered)."""
    parts = path.split("/")
    return any(excluded("/".join(parts[:i])) for i in range(1, len(parts) + 1))


def stray_pages(root: Path, toc: dict, exclude_patterns: list[str]) -> list[str]:
    """Page sources below `root` that Sphinx would read although no toctree lists them."""
    excluded, listed, stray = Matcher(exclude_patterns), set(book_docs(toc)), []
    for folder, dirs, files in os.walk(root):
        rel = Path(folder).relative_to(root)
        dirs[:] = [d for d in dirs if d != ".git" and not excluded((rel / d).as_posix())]
        for name in files:
            path = (rel / name).as_posix()
            if (name.endswith(SUFFIXES) and not excluded(path)
                    and str((rel / name).with_suffix("")) not in listed):
                stray.append(path)
    return sorted(stray)


def test_no_page_source_outside_the_toc_is_read(book_config):
    toc = yaml.safe_load((BOOK_ROOT / "_toc.yml").read_text(encoding="utf-8"))
    stray = stray_pages(BOOK_ROOT, toc, book_config["exclude_patterns"])
    assert not stray, f"add these to exclude_patterns in _config.yml (or to _toc.yml): {stray}"


# Written by tools next to the book, and not there in a fresh clone: pytest's cache (its README.md
# once made `make test` fail on its second run), notebook checkpoints, builds, the venv.
WRITTEN_BY_TOOLS = [".pytest_cache/README.md", "chapters/.ipynb_checkpoints/vae-checkpoint.ipynb",
                    "_build/student/chapters/vae.ipynb", ".venv/lib/python3.11/site-packages/x.md",
                    "code/replearn.egg-info/README.md", "benchmarks/results/report.md"]


def test_files_that_tools_write_are_excluded(book_config):
    excluded = Matcher(book_config["exclude_patterns"])
    assert [path for path in WRITTEN_BY_TOOLS if not is_excluded(excluded, path)] == []


def test_the_check_finds_a_stray_page(tmp_path):
    for path in ("intro.md", "chapters/a.ipynb", "cache/README.md", "notes/x.md", "skip/y.md"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("# page")
    toc = {"root": "intro", "parts": [{"chapters": [{"file": "chapters/a"}]}]}
    assert stray_pages(tmp_path, toc, ["skip/**"]) == ["cache/README.md", "notes/x.md"]
    assert stray_pages(tmp_path, toc, ["skip/**", "cache/**", "notes/**"]) == []
