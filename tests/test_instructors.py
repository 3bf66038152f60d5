"""The instructors' page lists every exercise of the chapters once, with kind, time, difficulty."""
import importlib.util
import re
from pathlib import Path

import nbformat
import yaml

from replearn import checks

BOOK = Path(__file__).resolve().parents[1]
PAGE = (BOOK / "instructors.md").read_text(encoding="utf-8")
spec = importlib.util.spec_from_file_location("student_edition", BOOK / "tools" / "student_edition.py")
student_edition = importlib.util.module_from_spec(spec)
spec.loader.exec_module(student_edition)

# | {ref}`label` | title | kind | minutes | difficulty | check |
ROW = re.compile(r"^\| \{ref\}`(?P<label>[\w-]+)` \| (?P<title>[^|]+) \| (?P<kind>[^|]+) \| "
                 r"(?P<minutes>\d+) \| (?P<stars>★{1,3}) \| (?P<check>[^|]+) \|$", re.M)
KINDS = {"推导", "代码", "实验"}


def chapter_exercises() -> dict[str, str]:
    """{label: title} for every exercise of the chapters in the toc."""
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text(encoding="utf-8"))
    exercises = {}
    for chapter in student_edition.toc_chapters(toc):
        nb = nbformat.read(BOOK / f"{chapter}.ipynb", as_version=4)
        for cell in (c for c in nb.cells if c.cell_type == "markdown"):
            for name, text in student_edition.blocks(cell.source):
                label = re.search(r"^\s*:label:\s*(\S+)", text, flags=re.M)
                if name in ("exercise", "exercise-start") and label:
                    title = student_edition.FENCE.match(text.splitlines()[0])["arg"]
                    exercises[label[1]] = title.strip()
    return exercises


def test_table_lists_every_exercise_once_with_its_title():
    rows = [m.groupdict() for m in ROW.finditer(PAGE)]
    listed = [row["label"] for row in rows]
    assert len(listed) == len(set(listed)), "an exercise appears twice in the table"
    exercises = chapter_exercises()
    missing, stale = sorted(set(exercises) - set(listed)), sorted(set(listed) - set(exercises))
    assert not missing, f"add these exercises to the table in instructors.md: {missing}"
    assert not stale, f"these rows of instructors.md name no exercise of the chapters: {stale}"
    for row in rows:
        assert row["title"].strip() == exercises[row["label"]], row
        assert set(row["kind"].split("、")) <= KINDS, row


def test_checks_named_in_the_table_exist():
    for row in (m.groupdict() for m in ROW.finditer(PAGE)):
        check = row["check"].strip()
        if check != "—":
            assert check.strip("`") in checks.__all__ and "代码" in row["kind"], row


def test_the_student_target_the_page_describes_exists():
    assert re.search(r"^student:", (BOOK / "Makefile").read_text(), flags=re.M)
    assert "make student" in PAGE
