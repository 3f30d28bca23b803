"""`make run` installs the project only; `make test` adds the test tools; `make run`
after `make test` installs nothing again (SPEC section 1). Checked with `make -n`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MAKE = shutil.which("make")

pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def dry_run(folder: Path, *targets: str) -> str:
    assert MAKE is not None
    result = subprocess.run(
        [MAKE, "-n", *targets], cwd=folder, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def project(tmp_path: Path) -> Path:
    """The Makefile and pyproject.toml in a folder with a (pretend) existing venv."""
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(REPO / name, tmp_path / name)
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    return tmp_path


def test_run_installs_the_project_without_the_test_tools(tmp_path: Path) -> None:
    commands = dry_run(project(tmp_path), "run")
    assert "pip install" in commands and "-e ." in commands
    assert "[test]" not in commands
    assert "daemon.py" in commands


def test_test_installs_the_test_extras(tmp_path: Path) -> None:
    commands = dry_run(project(tmp_path), "test")
    assert "-e '.[test]'" in commands
    assert "pytest" in commands and "-n 2 --dist loadfile" in commands


def test_run_after_test_installs_nothing(tmp_path: Path) -> None:
    folder = project(tmp_path)
    assert MAKE is not None
    # The test install for real, with the pretend python (its pip does nothing).
    installed = subprocess.run(
        [MAKE, ".venv/.installed-test"], cwd=folder, capture_output=True, text=True, timeout=30
    )
    assert installed.returncode == 0, installed.stderr
    commands = dry_run(folder, "run")
    assert "pip" not in commands
    assert "daemon.py" in commands
