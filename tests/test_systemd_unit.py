"""The shipped unit file and example config: valid, sandboxed, coherent."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from processors.options import settings_from
from processors.pipeline import DEFAULT_PIPELINE, load_pipeline

SYSTEMD_DIR = Path(__file__).resolve().parent.parent / "systemd"
UNIT = SYSTEMD_DIR / "inboxd.service"
CONFIG = SYSTEMD_DIR / "config.toml"
MAX_EXPOSURE = 2.0
ANALYZE_TIMEOUT_S = 60
# The one complaint accepted from `verify`: the daemon is not installed on this machine.
MISSING_BINARY = re.compile(
    r"^inboxd\.service: Command (\S+) is not executable: No such file or directory$"
)
EXPOSURE = re.compile(r"Overall exposure level for inboxd\.service:\s*(\d+(?:\.\d+)?)")

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (Debian: apt-get install systemd)",
)


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=ANALYZE_TIMEOUT_S,
        check=False,
    )


def unit_settings() -> dict[str, list[str]]:
    """`Key=value` assignments of the unit (all sections), every value of a repeated key."""
    settings: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


@needs_analyze
def test_verify_reports_only_the_missing_executable() -> None:
    help_text = analyze("verify", "--help").stdout + analyze("--help").stdout
    man = ["--man=no"] if "--man" in help_text else []
    result = analyze("verify", *man, str(UNIT))
    complaints = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and not MISSING_BINARY.match(line.strip())
    ]
    assert not complaints, "\n".join(complaints)
    missing = [m.group(1) for m in map(MISSING_BINARY.match, result.stderr.splitlines()) if m]
    assert missing in ([], ["/usr/bin/inboxd"])


@needs_analyze
def test_security_exposure_is_at_most_two() -> None:
    if "--offline" not in analyze("--help").stdout:
        pytest.skip("this systemd-analyze has no --offline (needs systemd >= 250)")
    result = analyze("security", "--offline=true", "--no-pager", str(UNIT))
    match = EXPOSURE.search(result.stdout + result.stderr)
    assert match, f"no exposure figure in:\n{result.stdout}\n{result.stderr}"
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


def test_unit_declares_the_service_contract() -> None:
    s = unit_settings()
    assert s["Type"] == ["notify"]
    assert s["NotifyAccess"] == ["main"]
    assert s["ExecStart"] == ["/usr/bin/inboxd --config /etc/inboxd/config.toml"]
    assert s["WatchdogSec"] == ["30"]
    assert s["Restart"] == ["on-failure"]
    assert int(s["LimitNOFILE"][0]) >= 65536
    assert s["StateDirectory"] == ["inboxd"]
    assert s["LogsDirectory"] == ["inboxd"]
    families = s["RestrictAddressFamilies"][0].split()
    assert sorted(families) == ["AF_INET", "AF_INET6", "AF_UNIX"]
    assert "/var/lib/inboxd" in s["ReadWritePaths"][0].split()


def test_example_config_loads_and_matches_the_unit() -> None:
    settings = settings_from(["--config", str(CONFIG)], env={})
    assert settings.pipeline == DEFAULT_PIPELINE
    assert load_pipeline(settings.pipeline).names
    writable = [Path(p) for p in unit_settings()["ReadWritePaths"][0].split()]
    for path in (settings.inbox, settings.outbox, settings.state_dir, settings.logs_dir):
        assert any(path.is_relative_to(w) for w in writable), path
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
