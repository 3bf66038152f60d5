"""Every internal link and image of the built book leads to a file, and to an anchor, that exist.

Read straight from the HTML files (no browser, no network): <a href>, <img src>, <link href>,
<script src> and <source src> that point inside the book are resolved the way a browser resolves
them, and a #fragment must name an id (or <a name>) on the target page.
"""
from __future__ import annotations

from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

LINK_ATTRIBUTES = {"a": "href", "link": "href", "img": "src", "script": "src", "source": "src"}


class _Page(HTMLParser):
    """The ids a page defines and the (tag, url) references it makes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.refs: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        url = attrs.get(LINK_ATTRIBUTES.get(tag, ""))
        if url is not None:
            self.refs.append((tag, url))


@lru_cache(maxsize=None)
def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def broken_references(page_path: Path, html_root: Path) -> list[str]:
    page_path, html_root = page_path.resolve(), html_root.resolve()
    problems = []
    for tag, url in parse(page_path).refs:
        parts = urlsplit(url)
        if parts.scheme or parts.netloc or url.startswith(("mailto:", "javascript:")):
            continue  # external: the browser test asserts that pages load nothing from outside
        if not parts.path and parts.fragment in ("", "!"):
            continue  # href="#": a button of the theme
        target = (page_path.parent / unquote(parts.path)).resolve() if parts.path else page_path
        if parts.path.endswith("/") or target.is_dir():
            target = target / "index.html"
        where = f"<{tag}> {url!r}"
        if not target.is_relative_to(html_root):
            problems.append(f"{where} leaves the book ({target})")
        elif not target.is_file():
            problems.append(f"{where}: no file {target.relative_to(html_root)}")
        elif target.stat().st_size == 0:
            problems.append(f"{where}: {target.relative_to(html_root)} is empty")
        elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in parse(target).ids:
            problems.append(f"{where}: {target.relative_to(html_root)} has no anchor #{unquote(parts.fragment)}")
    return problems


def test_internal_links_and_images_resolve(book_html, book_page):
    page_path = book_html / f"{book_page}.html"
    assert page_path.is_file(), f"the toc names {book_page}, but the build has no {page_path.name}"
    problems = broken_references(page_path, book_html)
    assert not problems, f"{book_page}.html:\n" + "\n".join(problems)


def test_the_link_check_finds_a_broken_anchor_and_a_missing_image(tmp_path):
    (tmp_path / "a.html").write_text('<p id="here">x</p><a href="#here">ok</a><a href="b.html#gone">b</a>'
                                     '<img src="_images/missing.png"><a href="#">menu</a>'
                                     '<a href="https://example.org/x">out</a>', encoding="utf-8")
    (tmp_path / "b.html").write_text('<h1 id="there">b</h1>', encoding="utf-8")
    problems = broken_references(tmp_path / "a.html", tmp_path)
    assert len(problems) == 2, problems
    assert "no anchor #gone" in problems[0] and "missing.png" in problems[1]
