"""inboxd installs as one package, `inboxd`: beside python-daemon (whose top-level module
is `daemon`), a `web.py` and a `store` package, the console script and its workers still
run inboxd's own modules, and other programs still get theirs."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from daemon_fixtures import REPO, daemon_env


def clean_env() -> dict[str, str]:
    """The environment without PYTHONPATH: what runs is what the venv holds."""
    return {k: v for k, v in daemon_env().items() if k != "PYTHONPATH"}


def pip(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=300, cwd=cwd)  # fmt: skip


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding inboxd's wheel, python-daemon, and decoys named like our
    folders; inboxd's dependencies are this venv's (a path entry, no install)."""
    root = tmp_path_factory.mktemp("install")
    built = pip("wheel", "-q", "--no-deps", "-w", str(root / "wheel"), str(REPO))
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((root / "wheel").glob("inboxd-*.whl"))
    env = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    site = Path(next(env.glob("lib/python3*/site-packages")))
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    got = pip("--python", str(env / "bin" / "python"), "install", "-q", "--no-deps",
              "--ignore-installed",
              str(wheel), "python-daemon")  # fmt: skip
    if got.returncode != 0 and "python-daemon" in got.stderr and "No matching" in got.stderr:
        pytest.skip(f"python-daemon cannot be installed here: {got.stderr[-300:]}")
    assert got.returncode == 0, got.stderr[-2000:]
    (site / "web.py").write_text("raise ImportError('the decoy web.py was imported')\n")
    (site / "store").mkdir()
    (site / "store" / "__init__.py").write_text("raise ImportError('the decoy store')\n")
    return env


def test_nothing_of_ours_lands_at_the_top_of_site_packages(venv: Path) -> None:
    site = Path(next(venv.glob("lib/python3*/site-packages")))
    assert (site / "inboxd" / "daemon.py").is_file() and (site / "inboxd" / "web").is_dir()
    assert not (site / "daemon.py").exists() and not (site / "processors").exists()
    assert not (site / "sinks").exists() and not (site / "watcher").exists()
    # python-daemon keeps its own `daemon` for every other program.
    probe = "import daemon; print(daemon.__file__)"
    out = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True,
                         text=True, cwd=venv, env=clean_env())  # fmt: skip
    assert out.returncode == 0 and str(site / "daemon") in out.stdout, out.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_the_console_script_runs_beside_python_daemon_and_decoys(
    venv: Path, tmp_path: Path, workers: int
) -> None:
    inboxd = str(venv / "bin" / "inboxd")
    version = subprocess.run([inboxd, "--version"], capture_output=True, text=True,
                             cwd=tmp_path, env=clean_env())  # fmt: skip
    assert version.returncode == 0 and version.stdout.startswith("inboxd "), version.stderr
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "a.log").write_text("one\n2026-01-01 ERROR two password=x\n")
    args = ["--once", "--workers", str(workers), "--inbox", "inbox", "--outbox", "outbox",
            "--state-dir", "var"]  # fmt: skip
    done = subprocess.run([inboxd, *args], capture_output=True, text=True, cwd=tmp_path,
                          env=clean_env(), timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = (tmp_path / "outbox" / "a.log").read_text()
    assert out.startswith("one\n") and "password=***" in out
    check = subprocess.run([inboxd, "check"], capture_output=True, text=True, cwd=tmp_path,
                           env=clean_env())  # fmt: skip
    assert check.returncode == 0 and "tag_router" in check.stdout, check.stderr
