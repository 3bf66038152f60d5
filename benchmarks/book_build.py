"""The book: wall time of a full executed build, and how long each chapter takes to execute.

Builds the whole book the way `make book` does (`jupyter-book build . -n -W --keep-going`) on the
offline subset (`REPLEARN_DATA=subset`), but into a private folder (`--path-output`, default
/tmp/bench-build) emptied first, so every chapter executes afresh and nobody else's `_build` is
touched. Each chapter's execution time is read from myst-nb's "Executed notebook in ... seconds"
lines in the build log (the times jupyter-cache records). Chapters without a code cell are reported as placeholders.
Run alone: `python benchmarks/book_build.py [--out /tmp/bench-build]`.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = Path("/tmp/bench-build")
CHAPTER_LIMIT = 60.0  # seconds per chapter
LIMITS = {"chapters/vae": 90.0}
BOOK_LIMIT = 300.0  # seconds for the whole build


def chapters(root: Path = ROOT) -> dict[str, dict]:
    """The toc's notebooks, each with its number of code cells (none: still a placeholder)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]
    files += [c["file"] for c in toc.get("chapters", [])]
    out = {}
    for name in files:
        path = root / f"{name}.ipynb"
        if not path.exists():
            continue
        nb = nbformat.read(path, as_version=4)
        code = sum(c.cell_type == "code" for c in nb.cells)
        out[name] = {"code_cells": code, "placeholder": code == 0}
    return out


def execution_times(log: str) -> dict[str, float | str]:
    """Seconds each notebook took to execute, from myst-nb's lines in the build log.

    A notebook whose code is identical to one already executed (the placeholders: no code at
    all) is served from the cache, even in a fresh build; it gets "cached" instead of a time.
    """
    times: dict[str, float | str] = {}
    for line in re.sub(r"\x1b\[[0-9;]*m", "", log).splitlines():
        found = re.match(r"(.+?\.ipynb): (Executed notebook in ([\d.]+) seconds|Using cached notebook)", line)
        if found:
            name = str(Path(found[1]).resolve().relative_to(ROOT).with_suffix(""))
            times[name] = float(found[3]) if found[3] else "cached"
    return times


def run(out: Path = OUT) -> dict:
    status = chapters()
    shutil.rmtree(out, ignore_errors=True)
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT),
           "--path-output", str(out), "-n", "-W", "--keep-going"]
    env = {**os.environ, "REPLEARN_DATA": "subset"}
    load_before = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    log = proc.stdout + proc.stderr
    (out / "build.log").parent.mkdir(parents=True, exist_ok=True)
    (out / "build.log").write_text(log)

    times = execution_times(log)
    rows = {}
    for name, info in status.items():
        seconds = times.get(name)
        limit = LIMITS.get(name, CHAPTER_LIMIT)
        timed = isinstance(seconds, float)
        rows[name] = {**info, "execution_seconds": seconds, "limit_seconds": limit,
                      "met": seconds <= limit if timed else None}
    failed = re.findall(r"Executing notebook failed[^\n]*", log)
    warnings = len(re.findall(r"WARNING:", log))
    return {
        "command": " ".join(cmd[1:]),
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "limit_seconds": BOOK_LIMIT,
        "met": proc.returncode == 0 and wall <= BOOK_LIMIT and all(
            r["met"] is not False for r in rows.values()),
        "returncode": proc.returncode,
        "warnings": warnings,
        "failed_notebooks": failed,
        "loadavg_1min_before": round(load_before, 2),
        "loadavg_1min_after": round(os.getloadavg()[0], 2),
        "chapters": rows,
        "placeholders": [n for n, r in rows.items() if r["placeholder"]],
        "log": str(out / "build.log"),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="private build folder (emptied first)")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.out), indent=1))


if __name__ == "__main__":
    main()
