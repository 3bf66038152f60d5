"""Write the student edition: the chapter notebooks without solutions, and their HTML.

    .venv/bin/python tools/student_edition.py            # what `make student` runs
    .venv/bin/python tools/student_edition.py --no-html  # the notebooks only (seconds)

Output, in _build/student (or --out):
    chapters/*.ipynb         every chapter of _toc.yml with its solutions removed and outputs
                             stripped: the files to hand out or open in Colab
    student-notebooks.zip    the same notebooks in one file
    html/                    the student HTML book (index.html), built from those notebooks

Removed from each notebook: every ```{solution}``` directive, and everything from a
```{solution-start}``` directive to its ```{solution-end}```, inclusive, the code cells between
them included. Exercise statements and the stub cells (which call the `replearn.checks` checks
and print 尚未完成) stay.

The HTML is built by Jupyter Book from the stripped notebooks, so the pages show what a student's
own run shows. The generated _config.yml also sets sphinx-exercise's `hide_solutions: True`.
That option alone is not enough: in sphinx-exercise 1.2 it drops a gated solution's start but
keeps its content and end marker, and the HTML writer then fails on the orphaned end marker.
The Colab launch button is turned off in the student HTML: it would open the repository's
notebooks, which contain the solutions; students open the notebooks their instructor hands out.
"""
from __future__ import annotations

import argparse
import copy
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import nbformat
import yaml

BOOK = Path(__file__).resolve().parents[1]
INSTRUCTOR_PAGES = {"instructors"}  # toc entries left out of the student HTML
NOT_COPIED = {  # top-level entries of the book that the student HTML build does not need
    "chapters", "code", "tests", "tools", "benchmarks", "_build", "_config.yml", "_toc.yml",
    "Makefile", "README.md", "requirements.txt", "pytest.ini",
} | {f"{page}.md" for page in INSTRUCTOR_PAGES}

# A MyST fence: ``` or ::: (three or more), then an optional {directive} name.
FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|:{3,})\s*(?:\{(?P<name>[\w-]+)\})?\s*(?P<arg>.*)$")


def blocks(text: str) -> list[tuple[str | None, str]]:
    """Split markdown into top-level pieces: (directive name, text) for each fenced block,
    (None, line) for each line outside one. Fences nested inside a block stay inside it."""
    pieces: list[tuple[str | None, str]] = []
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            pieces.append((None, lines[i]))
            i += 1
            continue
        fence = opening["fence"]
        close = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = next((j for j in range(i + 1, len(lines)) if close.match(lines[j])), len(lines) - 1)
        pieces.append((opening["name"] or "", "".join(lines[i:end + 1])))
        i = end + 1
    return pieces


def directive_labels(nb: nbformat.NotebookNode, names=("exercise", "exercise-start")) -> list[str]:
    """The :label: of every directive called one of `names` in the notebook's markdown cells."""
    labels = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for name, text in blocks(cell.source):
                if name in names:
                    labels += re.findall(r"^\s*:label:\s*(\S+)", text, flags=re.M)
    return labels


def strip_solutions(nb: nbformat.NotebookNode, where: str = "notebook") -> nbformat.NotebookNode:
    """A copy of nb without solutions (see the module docstring) and without outputs."""
    nb = copy.deepcopy(nb)
    cells, gated = [], None  # gated: the exercise label of the open solution-start, if any
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            if gated is None:
                cells.append(cell)
            continue
        kept = []
        for name, text in blocks(cell.source):
            if gated is not None:
                if name == "solution-end":
                    gated = None
            elif name == "solution-start":
                gated = FENCE.match(text.splitlines()[0])["arg"].strip() or "?"
            elif name == "solution-end":
                raise ValueError(f"{where}: a solution-end without a solution-start")
            elif name != "solution":
                kept.append(text)
        if "".join(kept).strip():
            cell.source = "".join(kept).strip("\n")
            cells.append(cell)
    if gated is not None:
        raise ValueError(f"{where}: the solution-start of {gated} has no solution-end")
    for cell in cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    nb.cells = cells
    return nb


def toc_chapters(toc: dict) -> list[str]:
    """The chapter files of the toc in reading order ("chapters/vae")."""
    entries = list(toc.get("chapters") or [])
    for part in toc.get("parts") or []:
        entries += part.get("chapters") or []
    files = []
    while entries:
        entry = entries.pop(0)
        if "file" in entry:
            files.append(str(Path(entry["file"]).with_suffix("")))
        entries[:0] = entry.get("sections") or []
    return [f for f in files if f.startswith("chapters/")]


def write_notebooks(out: Path, book: Path = BOOK) -> list[Path]:
    """Write out/chapters/<name>.ipynb for every chapter of the toc, and out/student-notebooks.zip."""
    toc = yaml.safe_load((book / "_toc.yml").read_text(encoding="utf-8"))
    (out / "chapters").mkdir(parents=True, exist_ok=True)
    written = []
    for chapter in toc_chapters(toc):
        source = book / f"{chapter}.ipynb"
        nb = strip_solutions(nbformat.read(source, as_version=4), where=str(source))
        target = out / f"{chapter}.ipynb"
        nbformat.write(nb, target)
        written.append(target)
    with zipfile.ZipFile(out / "student-notebooks.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for path in written:
            archive.write(path, path.relative_to(out))
    return written


def student_toc(toc: dict) -> dict:
    """The toc without the instructors' pages."""
    toc = copy.deepcopy(toc)

    def keep(entries):
        return [e for e in entries or []
                if str(Path(e.get("file", "")).with_suffix("")) not in INSTRUCTOR_PAGES]

    if "chapters" in toc:
        toc["chapters"] = keep(toc["chapters"])
    if "parts" in toc:
        for part in toc["parts"]:
            part["chapters"] = keep(part.get("chapters"))
        toc["parts"] = [part for part in toc["parts"] if part["chapters"]]  # no empty part
    return toc


def student_config(config: dict) -> dict:
    """The book's _config.yml with solutions hidden and no Colab button."""
    config = copy.deepcopy(config)
    config["title"] = f"{config.get('title', '')}（学生版）"
    config.setdefault("launch_buttons", {})["colab_url"] = ""
    config.setdefault("sphinx", {}).setdefault("config", {})["hide_solutions"] = True
    return config


def build_html(out: Path, book: Path = BOOK) -> Path:
    """Build out/html from the notebooks in out/chapters; returns the HTML folder.

    The book's sources (pages, figures, configuration) are assembled in a temporary folder, so
    that `out` holds only what an instructor hands out: chapters/, the zip and html/.
    """
    with tempfile.TemporaryDirectory(prefix="student-book-") as tmp:
        source = Path(tmp)
        for entry in book.iterdir():
            if entry.name in NOT_COPIED or entry.name.startswith("."):
                continue
            if entry.is_dir():
                shutil.copytree(entry, source / entry.name)
            else:
                shutil.copy2(entry, source / entry.name)
        shutil.copytree(out / "chapters", source / "chapters")
        for name, make in (("_config.yml", student_config), ("_toc.yml", student_toc)):
            data = make(yaml.safe_load((book / name).read_text(encoding="utf-8")))
            (source / name).write_text(
                f"# Generated by tools/student_edition.py from {name}\n"
                + yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
        jupyter_book = Path(sys.executable).with_name("jupyter-book")
        command = [str(jupyter_book if jupyter_book.exists() else "jupyter-book"),
                   "build", str(source), "-n", "-W", "--keep-going"]
        if subprocess.run(command).returncode:
            raise RuntimeError("the student HTML build failed; Jupyter Book's output above says why")
        html = out / "html"
        shutil.rmtree(html, ignore_errors=True)
        shutil.move(source / "_build" / "html", html)
    return html


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=BOOK / "_build" / "student",
                        help="output folder (default: _build/student)")
    parser.add_argument("--no-html", action="store_true", help="write the notebooks only")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    try:
        notebooks = write_notebooks(out)
    except ValueError as error:
        sys.exit(f"student_edition: {error}")
    print(f"{len(notebooks)} student notebooks in {out / 'chapters'} "
          f"(and {out / 'student-notebooks.zip'})")
    if not args.no_html:
        try:
            html = build_html(out)
        except RuntimeError as error:
            sys.exit(f"student_edition: {error}")
        print(f"student HTML in {html} (open index.html)")


if __name__ == "__main__":
    main()
