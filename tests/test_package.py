"""The package layout: `code/` is a folder, never a package shadowing the standard module."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_code_from_the_repository_root_is_the_standard_module():
    out = subprocess.run([sys.executable, "-c", "import code; print(code.__file__); code.InteractiveConsole"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    assert not out.stdout.strip().startswith(str(ROOT)), out.stdout
    assert not (ROOT / "code" / "__init__.py").exists()


def test_public_api():
    import replearn
    for name in replearn.__all__:
        assert getattr(replearn, name) is not None
