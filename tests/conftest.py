"""Fixtures shared by test files.

The built-book tests (test_links.py, test_book_browser.py, test_colab.py) read the book's own
configuration and the HTML that `make book` writes to _build/html; `make test` builds it first.
A test that takes `book_chapter` runs once per chapter of _toc.yml ("chapters/vae"); one that
takes `book_page` runs once per HTML page of the build ("intro", "chapters/vae", "search").
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

BOOK_ROOT = Path(__file__).resolve().parents[1]
BOOK_HTML = BOOK_ROOT / "_build" / "html"


def book_docs(toc: dict | None = None) -> list[str]:
    """Every document of the toc (default: _toc.yml) in reading order, without suffix:
    ["intro", "chapters/...", ...]."""
    toc = toc or yaml.safe_load((BOOK_ROOT / "_toc.yml").read_text(encoding="utf-8"))
    docs = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                docs.append(entry["file"])
            walk(entry.get("sections"))

    walk(toc.get("chapters"))
    for part in toc.get("parts") or []:
        walk(part.get("chapters"))
    return [str(Path(d).with_suffix("")) if Path(d).suffix in (".md", ".ipynb") else d for d in docs]


def book_chapters() -> list[str]:
    return [d for d in book_docs() if d.startswith("chapters/")]


def book_pages() -> list[str]:
    """The HTML pages of the build (the toc's documents if the book is not built yet)."""
    built = {str(p.relative_to(BOOK_HTML).with_suffix(""))
             for p in BOOK_HTML.rglob("*.html")
             if not p.relative_to(BOOK_HTML).parts[0].startswith("_")} if BOOK_HTML.is_dir() else set()
    return sorted(set(book_docs()) | built)


def pytest_generate_tests(metafunc):
    if "book_chapter" in metafunc.fixturenames:
        metafunc.parametrize("book_chapter", book_chapters())
    if "book_page" in metafunc.fixturenames:
        metafunc.parametrize("book_page", book_pages())


def skip_or_fail(reason: str):
    """Skip on a developer's machine; fail under CI, where the thing must be there."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def book_config() -> dict:
    """_config.yml as a dict."""
    return yaml.safe_load((BOOK_ROOT / "_config.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def book_html() -> Path:
    """_build/html, once it holds a build at least as new as every chapter's source."""
    if not (BOOK_HTML / "intro.html").is_file():
        skip_or_fail(f"no built book in {BOOK_HTML}: run `make book` (`make test` builds it first)")
    for doc in book_docs():
        source = next(BOOK_ROOT.glob(f"{doc}.*"), None)
        page = BOOK_HTML / f"{doc}.html"
        if source and (not page.is_file() or page.stat().st_mtime < source.stat().st_mtime):
            skip_or_fail(f"{page.relative_to(BOOK_ROOT)} is older than {source.relative_to(BOOK_ROOT)}: "
                         "run `make book` (`make test` builds it first)")
    return BOOK_HTML
