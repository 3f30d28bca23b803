"""The shipped unit file and example config: valid, sandboxed, coherent."""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cli.settings import settings_from
from processors.pipeline import DEFAULT_PIPELINE, load_pipeline
from store.errors import ConfigError

SYSTEMD_DIR = Path(__file__).resolve().parent.parent / "systemd"
UNIT = SYSTEMD_DIR / "inboxd.service"
FLEET = SYSTEMD_DIR / "fleet.conf"
README = SYSTEMD_DIR.parent / "README.md"
BINARY = "/opt/inboxd/bin/inboxd"
CONFIG = SYSTEMD_DIR / "config.toml"
MAX_EXPOSURE = 2.0
ANALYZE_TIMEOUT_S = 60
# The one complaint accepted from `verify`: the daemon is not installed on this machine.
MISSING_BINARY = re.compile(
    r"^inboxd\.service: Command (\S+) is not executable: No such file or directory$"
)
# What a drop-in's [Service] may set, besides what the unit itself sets: the keys of
# systemd.service(5), systemd.exec(5) and systemd.resource-control(5) that fleet.conf
# uses. `systemd-analyze verify` below checks them against systemd itself.
DROPIN_SERVICE_KEYS = {"Environment", "EnvironmentFile", "ExecStart", "IPAddressAllow"}
# Address words systemd accepts in IPAddressAllow= besides addresses and prefixes.
IP_SYMBOLS = {"any", "localhost", "link-local", "multicast"}
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


def sections(path: Path) -> dict[str, dict[str, list[str]]]:
    """Section -> key -> every value assigned to it, in order, as systemd reads a unit."""
    found: dict[str, dict[str, list[str]]] = {}
    section: dict[str, list[str]] | None = None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            assert line.endswith("]"), f"{path.name}:{number}: {line}"
            section = found.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"{path.name}:{number}: assignment before any section"
        key, equals, value = line.partition("=")
        assert equals, f"{path.name}:{number}: not a Key=value line: {line}"
        section.setdefault(key.strip(), []).append(value.strip())
    return found


def unit_settings() -> dict[str, list[str]]:
    """`Key=value` assignments of the unit (all sections), every value of a repeated key."""
    settings: dict[str, list[str]] = {}
    for assignments in sections(UNIT).values():
        for key, values in assignments.items():
            settings.setdefault(key, []).extend(values)
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
    assert missing in ([], [BINARY])


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
    assert s["ExecStart"] == [f"{BINARY} --config /etc/inboxd/config.toml"]
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


def test_unit_runs_the_binary_the_readme_installs() -> None:
    text = README.read_text()
    install = text[text.index("## Running as a systemd service") :]
    venv = re.search(r"python3 -m venv (\S+)", install)
    assert venv, "the README's systemd section no longer creates a virtualenv"
    assert f"{venv.group(1).rstrip('/')}/bin/inboxd" == BINARY
    assert unit_settings()["ExecStart"][0].split()[0] == BINARY


def test_fleet_dropin_sets_only_service_keys_and_widens_the_address_filter() -> None:
    dropin = sections(FLEET)
    assert list(dropin) == ["Service"]
    service = dropin["Service"]
    unit_service_keys = set(sections(UNIT)["Service"])
    unknown = set(service) - unit_service_keys - DROPIN_SERVICE_KEYS
    assert not unknown, f"not [Service] keys of this unit: {sorted(unknown)}"
    allowed = [word for value in service.get("IPAddressAllow", []) for word in value.split()]
    assert allowed, "fleet.conf allows no address beyond the unit's localhost"
    for word in allowed:
        if word not in IP_SYMBOLS:
            ipaddress.ip_network(word)  # raises on anything systemd would reject
    assert "any" not in allowed, "fleet.conf must name networks, not lift the filter"
    assert "IPAddressDeny" not in service


def test_fleet_dropin_runs_the_units_binary_on_every_address_with_a_token() -> None:
    service = sections(FLEET)["Service"]
    # An empty ExecStart= clears the unit's command; exactly one replaces it.
    assert service["ExecStart"][0] == ""
    assert len(service["ExecStart"]) == 2
    argv = service["ExecStart"][1].split()
    unit_argv = unit_settings()["ExecStart"][0].split()
    assert argv[0] == unit_argv[0] == BINARY
    assert argv[: len(unit_argv)] == unit_argv
    # Run against the shipped example of /etc/inboxd/config.toml (host = "127.0.0.1").
    args = [str(CONFIG) if arg == "/etc/inboxd/config.toml" else arg for arg in argv[1:]]
    assert settings_from(args, env={"INBOXD_TOKEN": "t" * 32}).host == "0.0.0.0"
    with pytest.raises(ConfigError, match="without a token"):
        settings_from(args, env={})
    # The token is not in the drop-in (world-readable) but in a file systemd reads.
    assert "INBOXD_TOKEN" not in " ".join(service.get("Environment", []))
    assert service["EnvironmentFile"] == ["/etc/inboxd/inboxd.env"]


@needs_analyze
def test_verify_accepts_the_unit_with_the_fleet_dropin(tmp_path: Path) -> None:
    shutil.copy(UNIT, tmp_path / UNIT.name)
    dropins = tmp_path / f"{UNIT.name}.d"
    dropins.mkdir()
    shutil.copy(FLEET, dropins / FLEET.name)
    help_text = analyze("verify", "--help").stdout + analyze("--help").stdout
    man = ["--man=no"] if "--man" in help_text else []
    result = analyze("verify", *man, str(tmp_path / UNIT.name))
    output = (result.stdout + result.stderr).splitlines()
    complaints = [line for line in output if line.strip() and not MISSING_BINARY.match(line)]
    assert not complaints, "\n".join(complaints)
