"""The student edition (tools/student_edition.py) keeps every exercise and no solution, and runs."""
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

BOOK = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("student_edition", BOOK / "tools" / "student_edition.py")
student_edition = importlib.util.module_from_spec(spec)
spec.loader.exec_module(student_edition)


def notebook(*cells: tuple[str, str]) -> nbformat.NotebookNode:
    make = {"markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}
    return nbformat.v4.new_notebook(cells=[make[kind](source) for kind, source in cells])


def text(nb: nbformat.NotebookNode) -> str:
    return "\n".join(cell.source for cell in nb.cells)


# --- strip_solutions on small notebooks ---------------------------------------------------------

def test_plain_and_gated_solutions_go_statements_and_stubs_stay():
    nb = notebook(
        ("markdown", "```{exercise} One\n:label: t-ex-one\nSTATEMENT ONE\n```\n\n"
                     "```{solution} t-ex-one\n:class: dropdown\nPLAIN SOLUTION\n```\n\nAFTER ONE"),
        ("markdown", "```{exercise} Two\n:label: t-ex-two\nSTATEMENT TWO\n```"),
        ("code", "def f(x):\n    raise NotImplementedError\ncheck(f)"),
        ("markdown", "```{solution-start} t-ex-two\n:class: dropdown\n```\nGATED TEXT"),
        ("code", "def f(x):\n    return SOLUTION_CODE"),
        ("markdown", "MORE GATED TEXT\n\n```{solution-end}\n```\n\nAFTER TWO"),
        ("markdown", "::::{solution} t-ex-one\n```python\nFENCED_IN_SOLUTION\n```\n::::"),
    )
    student = student_edition.strip_solutions(nb)
    kept = text(student)
    for gone in ("PLAIN SOLUTION", "GATED TEXT", "SOLUTION_CODE", "MORE GATED TEXT",
                 "FENCED_IN_SOLUTION", "{solution"):
        assert gone not in kept
    for stays in ("STATEMENT ONE", "AFTER ONE", "STATEMENT TWO", "NotImplementedError", "AFTER TWO"):
        assert stays in kept
    assert [c.cell_type for c in student.cells] == ["markdown", "markdown", "code", "markdown"]
    assert student_edition.directive_labels(student) == ["t-ex-one", "t-ex-two"]


def test_outputs_are_stripped():
    nb = notebook(("code", "print(1)"))
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    nb.cells[0].execution_count = 3
    cell = student_edition.strip_solutions(nb).cells[0]
    assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.parametrize("cells, message", [
    ([("markdown", "```{solution-start} t-ex\n```"), ("code", "x = 1")], "no solution-end"),
    ([("markdown", "```{solution-end}\n```")], "without a solution-start"),
])
def test_unbalanced_gates_are_an_error(cells, message):
    with pytest.raises(ValueError, match=message):
        student_edition.strip_solutions(notebook(*cells))


def test_student_toc_and_config():
    toc = {"format": "jb-book", "root": "intro", "parts": [
        {"caption": "章节", "chapters": [{"file": "chapters/vae"}, {"file": "instructors.md"}]},
        {"caption": "教师指南", "chapters": [{"file": "instructors"}]}]}
    assert student_edition.student_toc(toc)["parts"] == [
        {"caption": "章节", "chapters": [{"file": "chapters/vae"}]}]
    config = student_edition.student_config({"title": "书", "sphinx": {"config": {"numfig": True}}})
    assert config["sphinx"]["config"] == {"numfig": True, "hide_solutions": True}
    assert config["launch_buttons"]["colab_url"] == ""


# --- the real chapters ---------------------------------------------------------------------------

def solution_lines(nb: nbformat.NotebookNode) -> tuple[set[str], set[str]]:
    """(lines inside solutions, lines outside), stripped, read independently of the tool:
    a {solution} fence runs to the next line equal to its opening fence; a {solution-start}
    line opens a region that the next {solution-end} line closes, across cells."""
    inside, outside = set(), set()
    gated, fence = False, None
    for cell in nb.cells:
        for line in cell.source.splitlines():
            stripped = line.strip()
            opening = re.match(r"^(`{3,}|:{3,})\{(solution|solution-start|solution-end)\}", stripped)
            if fence is not None:
                inside.add(stripped)
                fence = None if stripped == fence else fence
            elif opening and opening[2] == "solution":
                fence = opening[1]
            elif opening and opening[2] == "solution-start":
                gated = True
            elif opening and opening[2] == "solution-end":
                gated = False
            else:
                (inside if gated else outside).add(stripped)
    return inside, outside


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    written = student_edition.write_notebooks(out)
    return out, written


def test_every_chapter_is_written(edition):
    out, written = edition
    toc = student_edition.yaml.safe_load((BOOK / "_toc.yml").read_text(encoding="utf-8"))
    chapters = student_edition.toc_chapters(toc)
    assert chapters and [p.relative_to(out).with_suffix("").as_posix() for p in written] == chapters
    assert (out / "student-notebooks.zip").stat().st_size > 0


def test_no_solution_survives_and_every_exercise_stays(edition):
    out, written = edition
    for path in written:
        original = nbformat.read(BOOK / path.relative_to(out), as_version=4)
        student = nbformat.read(path, as_version=4)
        names = {name for cell in student.cells if cell.cell_type == "markdown"
                 for name, _ in student_edition.blocks(cell.source)}
        assert not names & {"solution", "solution-start", "solution-end"}, path.name
        assert not re.search(r"\{solution(-start|-end)?\}", text(student)), path.name
        assert (student_edition.directive_labels(student)
                == student_edition.directive_labels(original)), path.name
        inside, outside = solution_lines(original)
        secret = {line for line in inside - outside if len(line) > 3}
        leaked = secret & {line.strip() for line in text(student).splitlines()}
        assert not leaked, f"{path.name}: solution lines in the student notebook: {sorted(leaked)[:5]}"
        assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")


def test_student_notebooks_run_top_to_bottom(edition):
    """Each student notebook executes without an error; its stubs report 尚未完成, never 未通过."""
    out, written = edition
    for path in written:
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        printed = "\n".join(output.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                            for output in cell.outputs)
        calls = sum(len(re.findall(r"^check_\w+\(", cell.source, flags=re.M))
                    for cell in nb.cells if cell.cell_type == "code")
        assert printed.count("尚未完成") == calls, path.name
        assert "未通过" not in printed, path.name
