"""The built book as a reader sees it: every page opened in headless Chromium.

Debian's Chromium (`apt-get install chromium`), driven by Playwright with `executable_path`, so
nothing downloads a browser. The pages are served from _build/html on 127.0.0.1 (search needs
http, not file://), by a server that lives as long as this module's tests. Each page is loaded
once; every request that leaves 127.0.0.1 is blocked and counts as a failure, since the book must
work offline and from places where common CDNs are unreliable. A full-page screenshot of the
front page and of each chapter goes to _build/screenshots/ for a person to look at.
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest

from conftest import BOOK_ROOT, book_chapters, skip_or_fail

CHROMIUM = os.environ.get("REPLEARN_CHROMIUM", "/usr/bin/chromium")
INSTALL = "apt-get update && apt-get install -y chromium"
# The flags this machine's Chromium needs without a network; Playwright adds a fresh profile.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGE_TIMEOUT_MS = 30_000
# text a reader should never see outside code: TeX that MathJax left untypeset
RAW_TEX = re.compile(r"\$\$|\\begin\{|\\end\{|\\frac|\\\[|\\\(")
EQ_NUMBER = re.compile(r"^\(\d+(\.\d+)*\)$")  # math_eqref_format "({number})", numbered per chapter
REDIRECT = re.compile(r'<meta http-equiv="refresh"', re.IGNORECASE)
SEARCHES = [("变分", "chapters/vae"), ("稀疏", "chapters/sparse_autoencoder")]

# Runs in the page after it loaded: waits for MathJax, fonts and images, then reads what a reader
# would see. Code (pre, code) is left out of the raw-TeX check: a plot label may be TeX on purpose.
READ_PAGE_JS = r"""
async () => {
  const mathjax = window.MathJax && window.MathJax.startup ? window.MathJax : null;
  if (mathjax) await mathjax.startup.promise;
  await document.fonts.ready;
  await Promise.all([...document.images].filter(img => !img.complete)
    .map(img => new Promise(done => { img.onload = img.onerror = done; })));

  const rawTex = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest("pre, code, script, style, textarea, mjx-container")) continue;
    if (RAW_TEX.test(node.textContent)) rawTex.push(node.textContent.trim().slice(0, 160));
  }
  const eqrefs = [...document.querySelectorAll('a.reference.internal[href*="#equation-"]')].map(a => {
    const url = new URL(a.href);
    const here = url.pathname === location.pathname;
    const target = here ? document.getElementById(decodeURIComponent(url.hash.slice(1))) : null;
    const eqno = target ? target.querySelector(".eqno") : null;
    return {href: a.getAttribute("href"), text: a.textContent.trim(), here, found: !!target,
            number: eqno ? eqno.firstChild.textContent.trim() : null};
  });
  return {
    title: document.title,
    mathjaxVersion: mathjax ? mathjax.version : null,
    mathCount: document.querySelectorAll(".math").length,
    untypeset: [...document.querySelectorAll(".math")].filter(el => !el.querySelector("mjx-container"))
      .map(el => (el.id ? "#" + el.id + " " : "") + el.textContent.trim().slice(0, 120)),
    // a TeX error (merror) or an undefined macro (shown in red by MathJax's noundefined package)
    texErrors: mathjax ? Array.from(mathjax.startup.document.math)
      .filter(item => /<merror|mathcolor="red"/.test(mathjax.startup.toMML(item.root)))
      .map(item => item.math.trim().slice(0, 160)) : [],
    badFonts: [...document.fonts].filter(f => f.status === "error").map(f => f.family),
    rawTex,
    eqrefs,
    images: [...document.images].map(img => ({src: img.getAttribute("src"),
                                              ok: img.complete && img.naturalWidth > 0})),
    colabLinks: [...document.querySelectorAll('a[href*="colab.research.google.com"]')].map(a => a.href),
    solutions: document.querySelectorAll(".solution").length,
    // display equations wider than the text column: MathJax 3 does not break lines by itself
    wideMath: [...document.querySelectorAll("div.math")].map(el => {
      const math = el.querySelector("mjx-container > mjx-math");
      if (!math) return null;
      const over = math.getBoundingClientRect().right - el.getBoundingClientRect().right;
      return over > 1 ? `${Math.round(over)} px too wide: ${el.textContent.trim().slice(0, 80)}` : null;
    }).filter(Boolean),
  };
}
""".replace("RAW_TEX", "/" + RAW_TEX.pattern + "/")


@dataclass
class Visit:
    """One page as the browser showed it."""

    page: str
    url: str
    errors: list[str] = field(default_factory=list)  # console errors, uncaught exceptions, failed loads
    outside: list[str] = field(default_factory=list)  # requests that tried to leave 127.0.0.1
    seen: dict = field(default_factory=dict)  # what READ_PAGE_JS returned


@pytest.fixture(scope="module")
def site(book_html):
    """The built book over http on 127.0.0.1; the server stops with this module."""

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(QuietHandler, directory=str(book_html)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        skip_or_fail(f"no Chromium at {CHROMIUM}: install it with `{INSTALL}` "
                     "(or point REPLEARN_CHROMIUM at one)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("Playwright is missing: `.venv/bin/pip install -r requirements.txt`")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS,
                                              timeout=60_000)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def screenshots(book_html) -> Path:
    folder = book_html.parent / "screenshots"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def open_page(site, browser, screenshots, book_html):
    """open_page("chapters/vae") -> (Visit, the live Playwright page); each page loads once."""
    visits = {}
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    context.set_default_timeout(PAGE_TIMEOUT_MS)

    def open_(page_name: str):
        if page_name in visits:
            return visits[page_name]
        visit = Visit(page_name, f"{site}{page_name}.html")
        page = context.new_page()

        def on_console(message):
            if message.type == "error":
                visit.errors.append(f"console: {message.text} ({message.location.get('url', '')})")

        def on_request_failed(request):
            if request.url.startswith(site):  # outside requests are aborted on purpose, below
                visit.errors.append(f"failed to load {request.url}: {request.failure}")

        def on_response(response):
            if response.status >= 400:
                visit.errors.append(f"HTTP {response.status} for {response.url}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: visit.errors.append(f"uncaught: {error}"))
        page.on("requestfailed", on_request_failed)
        page.on("response", on_response)

        def keep_inside(route):
            if route.request.url.startswith(site):
                route.continue_()
            else:
                visit.outside.append(route.request.url)
                route.abort()

        page.route("**/*", keep_inside)
        page.goto(visit.url, wait_until="load")
        if REDIRECT.search((book_html / f"{page_name}.html").read_text(encoding="utf-8")):
            page.wait_for_url(lambda url: url != visit.url)  # index.html -> intro.html
            page.wait_for_load_state("load")
        visit.seen = page.evaluate(READ_PAGE_JS)
        if page_name in ("intro", *book_chapters()):
            page.screenshot(path=str(screenshots / f"{Path(page_name).name}.png"), full_page=True)
        visits[page_name] = visit, page
        return visits[page_name]

    yield open_
    context.close()


def test_page_loads_without_errors(open_page, book_page):
    visit, _ = open_page(book_page)
    assert not visit.errors, f"{visit.url}:\n" + "\n".join(visit.errors)


def test_page_loads_nothing_from_outside_the_book(open_page, book_page):
    visit, _ = open_page(book_page)
    assert not visit.outside, (f"{visit.url} asks other hosts for {visit.outside}; the book must "
                               "work offline (self-host the file under _static/)")


def test_every_equation_is_typeset_by_mathjax_3(open_page, book_page):
    visit, _ = open_page(book_page)
    seen = visit.seen
    if seen["mathCount"]:
        assert (seen["mathjaxVersion"] or "").startswith("3."), (
            f"{visit.url} has math but MathJax 3 did not start (version {seen['mathjaxVersion']})")
    assert not seen["untypeset"], f"MathJax left these untypeset on {visit.url}: {seen['untypeset']}"
    assert not seen["texErrors"], f"MathJax reports TeX errors on {visit.url}: {seen['texErrors']}"
    assert not seen["rawTex"], f"raw TeX visible on {visit.url}: {seen['rawTex']}"
    assert not seen["badFonts"], f"MathJax fonts failed to load on {visit.url}: {seen['badFonts']}"


def test_display_equations_fit_the_text_column(open_page, book_page):
    visit, _ = open_page(book_page)
    assert not visit.seen["wideMath"], (
        f"{visit.url} at 1280 px: break these equations into lines (aligned, or one relation a line): "
        + "; ".join(visit.seen["wideMath"]))


def test_equation_references_resolve_to_numbered_equations(open_page, book_page):
    visit, _ = open_page(book_page)
    problems = []
    for ref in visit.seen["eqrefs"]:
        if not EQ_NUMBER.match(ref["text"]):
            problems.append(f"{ref['href']} reads {ref['text']!r}, not an equation number like (2.3)")
        if ref["here"] and not ref["found"]:
            problems.append(f"{ref['href']} points at no anchor on this page")
        elif ref["here"] and ref["number"] != ref["text"]:
            problems.append(f"{ref['href']} reads {ref['text']!r} but the equation is numbered {ref['number']!r}")
    assert not problems, f"{visit.url}:\n" + "\n".join(problems)


def test_every_image_loaded(open_page, book_page):
    visit, _ = open_page(book_page)
    broken = [img["src"] for img in visit.seen["images"] if not img["ok"]]
    assert not broken, f"images that did not load on {visit.url} (naturalWidth 0): {broken}"


def test_chapter_shows_the_figures_its_cells_made(open_page, book_html, book_chapter):
    """Every figure the executed cells wrote into _images/ for this chapter is on its page, loaded."""
    visit, _ = open_page(book_chapter)
    html = (book_html / f"{book_chapter}.html").read_text(encoding="utf-8")
    made = set(re.findall(r'src="\.\./(_images/[^"]+\.(?:png|svg|jpg))"', html))
    loaded = {img["src"].removeprefix("../") for img in visit.seen["images"] if img["ok"]}
    assert made <= loaded, f"figures not shown on {visit.url}: {sorted(made - loaded)}"


def test_solutions_start_collapsed_and_open_on_click(open_page, book_chapter):
    visit, page = open_page(book_chapter)
    solutions = page.locator(".solution")
    if solutions.count() == 0:
        pytest.skip(f"{book_chapter} has no exercise solutions yet")
    for i in range(solutions.count()):
        solution = solutions.nth(i)
        name = solution.get_attribute("id")
        body = solution.locator("section").first
        assert "dropdown" in (solution.get_attribute("class") or ""), (
            f"solution {name} on {visit.url} is not a dropdown: add `:class: dropdown`")
        assert not body.is_visible(), f"solution {name} on {visit.url} is open before any click"
        toggle = solution.locator("button.toggle-button")  # the chevron in the title bar
        toggle.click()
        body.wait_for(state="visible", timeout=5_000)
        toggle.click()  # and shut again
        body.wait_for(state="hidden", timeout=5_000)


def test_colab_link_opens_this_chapter_from_the_repository(open_page, book_config, book_chapter):
    visit, _ = open_page(book_chapter)
    repository = book_config["repository"]
    colab = book_config["launch_buttons"]["colab_url"].rstrip("/")
    owner_repo = re.sub(r"^https://github\.com/|\.git$|/$", "", repository["url"])
    book_path = repository.get("path_to_book", "").strip("/")
    notebook = "/".join(p for p in (book_path, f"{book_chapter}.ipynb") if p)
    expected = f"{colab}/github/{owner_repo}/blob/{repository.get('branch', 'main')}/{notebook}"
    assert (BOOK_ROOT / book_path / f"{book_chapter}.ipynb").is_file()
    assert visit.seen["colabLinks"] == [expected], (
        f"Colab links on {visit.url}: {visit.seen['colabLinks']}; expected exactly {expected}")


def png_size(path: Path) -> tuple[int, int]:
    with path.open("rb") as f:
        header = f.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def test_a_screenshot_of_each_chapter_is_saved(open_page, screenshots, book_chapter):
    open_page(book_chapter)
    shot = screenshots / f"{Path(book_chapter).name}.png"
    width, height = png_size(shot)
    assert width >= 1000 and height >= 600, f"{shot} is only {width}x{height}"


@pytest.mark.parametrize("query, chapter", SEARCHES)
def test_search_finds_the_chapter(site, browser, query, chapter):
    """Chinese search needs word segmentation at build time (jieba, html_search_language: zh)."""
    page = browser.new_page()
    try:
        page.goto(f"{site}search.html?q={quote(query)}", wait_until="load")
        page.wait_for_selector("#search-results .search-summary", timeout=PAGE_TIMEOUT_MS)
        page.wait_for_function("() => document.querySelector('#search-results .search-summary')"
                               ".textContent.trim() !== ''", timeout=PAGE_TIMEOUT_MS)
        found = [href.split("?")[0].split("#")[0].removesuffix(".html")
                 for href in page.eval_on_selector_all("ul.search li a", "els => els.map(a => a.getAttribute('href'))")]
    finally:
        page.close()
    assert chapter in found, f"searching for {query!r} found {found}, not {chapter}"
