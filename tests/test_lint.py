"""ruff (configured in pyproject.toml) passes on the package, the tests and the benchmarks."""
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff() -> list[str] | None:
    # The venv's ruff (the dev extra installs it beside this Python), else one on PATH.
    here = Path(sys.executable).with_name("ruff")
    found = str(here) if here.is_file() else shutil.which("ruff")
    return [found] if found else None


def test_ruff_check_passes():
    ruff = _ruff()
    if ruff is None:
        pytest.skip("ruff is not installed: pip install -e '.[dev]' (or pip install ruff)")
    run = subprocess.run([*ruff, "check", "--no-cache", "circuitnb", "tests", "benchmarks"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr


def test_mypy_passes_on_the_typed_layers():
    # [tool.mypy] in pyproject.toml names the files (core/ and analysis/) and the settings.
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed: pip install -e '.[dev]' (or pip install mypy)")
    run = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", os.devnull], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr


def test_no_code_comment_narrates_an_issue():
    # History belongs in commit messages: a comment or docstring says why the code is so, not which issue asked.
    import re
    pattern = re.compile(r"\b[Ii]ssue ?#?\d+")
    found = [f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
             for folder in ("circuitnb", "tests", "benchmarks") for path in sorted((ROOT / folder).rglob("*.py"))
             for i, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    found += [f"{path.relative_to(ROOT)}" for path in sorted((ROOT / "book").glob("*.md"))
              if pattern.search(path.read_text())]
    assert not found, "\n".join(found)
