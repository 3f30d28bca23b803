"""`python daemon.py --once` end to end, as a subprocess (SPEC §2, §4, §5)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from daemon_fixtures import dir_args, run_cli

PROCESSORS = ["tag_router", "filter_errors", "keep", "drop", "redact_secrets"]

APP_LOG = (
    "2026-11-27T12:00:00Z ERROR db timeout password=hunter2\n"
    "2026-11-27T12:00:01Z WARN disk 91% full\r\n"
    "2026-11-27T12:00:02Z DEBUG cache miss\n"
    "\n"
    '{"level": 30, "msg": "json info", "token": "abc"}\n'
)
NESTED_LOG = (
    "2026-11-27T12:00:03Z INFO user bob logged in\n"
    '{"level": "debug", "msg": "tick"}\n'
    "last line without newline CRITICAL"
)
APP_OUT = (
    "2026-11-27T12:00:00Z ERROR db timeout password=***\n"
    "2026-11-27T12:00:01Z WARN disk 91% full\n"
    '{"level": 30, "msg": "json info", "token": "***"}\n'
)
NESTED_OUT = "2026-11-27T12:00:03Z INFO user bob logged in\nlast line without newline CRITICAL\n"
# 8 lines: error 2 (ERROR, CRITICAL), warn 1, info 2, debug 2, blank 1.
FIRST_RUN = {
    "tag_router": (8, 0, 0),
    "filter_errors": (2, 0, 0),
    "keep": (3, 0, 0),
    "drop": (2, 0, 0),
    "redact_secrets": (5, 0, 0),
}


def run_once(tmp_path: Path, *args: str) -> dict[str, Any]:
    proc = run_cli(*dir_args(tmp_path), "--once", *args)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    assert proc.stdout.count("\n") <= 1
    assert isinstance(stats, dict)
    assert list(stats) == PROCESSORS
    for value in stats.values():
        assert set(value) == {"count", "time", "errors", "retries"}
        assert isinstance(value["count"], int) and isinstance(value["time"], float)
    return stats


def figures(stats: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    return {n: (s["count"], s["errors"], s["retries"]) for n, s in stats.items()}


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    root = tmp_path / "inbox"
    (root / "svc" / "deep").mkdir(parents=True)
    (root / "app.log").write_bytes(APP_LOG.encode())
    (root / "svc" / "deep" / "nested.log").write_bytes(NESTED_LOG.encode())
    (root / ".hidden.log").write_text("2026 ERROR hidden\n")
    (root / "upload.part").write_text("2026 ERROR partial upload\n")
    return root


def test_once_processes_the_inbox_and_prints_stats(tmp_path: Path, inbox: Path) -> None:
    stats = run_once(tmp_path)
    assert figures(stats) == FIRST_RUN
    for name, (count, _, _) in FIRST_RUN.items():
        assert (stats[name]["time"] > 0) == (count > 0)
    outbox = tmp_path / "outbox"
    assert (outbox / "app.log").read_text() == APP_OUT
    assert (outbox / "svc" / "deep" / "nested.log").read_text() == NESTED_OUT
    files = sorted(
        p.relative_to(outbox).as_posix()
        for p in outbox.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )
    assert files == ["app.log", "svc/deep/nested.log"]
    assert (tmp_path / "var" / "inboxd.db").is_file()


def test_once_twice_does_not_duplicate(tmp_path: Path, inbox: Path) -> None:
    assert figures(run_once(tmp_path)) == FIRST_RUN
    again = run_once(tmp_path)
    assert all(s["count"] == 0 for s in again.values())
    assert (tmp_path / "outbox" / "app.log").read_text() == APP_OUT
    assert (tmp_path / "outbox" / "svc" / "deep" / "nested.log").read_text() == NESTED_OUT

    with (inbox / "app.log").open("a") as fh:
        fh.write("2026-11-27T12:01:00Z WARN appended secret=xyz\n")
    third = run_once(tmp_path)
    assert figures(third)["tag_router"] == (1, 0, 0)
    assert figures(third)["keep"] == (1, 0, 0)
    assert (tmp_path / "outbox" / "app.log").read_text() == (
        APP_OUT + "2026-11-27T12:01:00Z WARN appended secret=***\n"
    )


def test_once_on_an_empty_inbox_creates_it_and_prints_zero_stats(tmp_path: Path) -> None:
    stats = run_once(tmp_path)
    assert all(s == {"count": 0, "time": 0.0, "errors": 0, "retries": 0} for s in stats.values())
    assert (tmp_path / "inbox").is_dir()


def test_once_with_trace_prints_the_same_document(tmp_path: Path, inbox: Path) -> None:
    stats = run_once(tmp_path, "--trace")
    assert figures(stats) == FIRST_RUN


FAILING_RULES = """
def route(line):
    yield "boom", line


def boom(line):
    raise RuntimeError("no")
"""


def test_once_with_a_failing_processor_counts_the_errors(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "a.log").write_text("x\ny\n")
    (tmp_path / "inboxd_failing_rules.py").write_text(FAILING_RULES)
    config = tmp_path / "inboxd.toml"
    config.write_text(
        "[pipeline]\n"
        'start = "inboxd_failing_rules:route"\n'
        'boom = { processor = "inboxd_failing_rules:boom", retries = 1 }\n'
    )
    proc = run_cli("--config", str(config), *dir_args(tmp_path), "--once")
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    assert figures(stats) == {"route": (2, 0, 0), "boom": (2, 4, 2)}


def test_version_exits_0(tmp_path: Path) -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == "inboxd 0.1.0"


def test_help_exits_0_and_lists_the_options(tmp_path: Path) -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0
    for option in (
        "--inbox",
        "--outbox",
        "--state-dir",
        "--config",
        "--host",
        "--port",
        "--token",
        "--trace",
        "--trace-size",
        "--errors-size",
        "--flush-interval",
        "--once",
        "--log-level",
        "--version",
    ):
        assert option in proc.stdout, option


NON_TEXT_RULES = """
def route(line):
    yield "end", line.encode() if line == "bytes" else line
"""


def test_once_dead_letters_non_text_outbox_lines(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "a.log").write_text("one\nbytes\ntwo\n")
    (tmp_path / "inboxd_non_text_rules.py").write_text(NON_TEXT_RULES)
    config = tmp_path / "inboxd.toml"
    config.write_text('[pipeline]\nstart = "inboxd_non_text_rules:route"\n')
    proc = run_cli("--config", str(config), *dir_args(tmp_path), "--once")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "outbox" / "a.log").read_text() == "one\ntwo\n"
    db = sqlite3.connect(tmp_path / "var" / "inboxd.db")
    rows = db.execute("SELECT processor, tag, message, line FROM deadletter").fetchall()
    assert rows == [
        ("route", "start", "TypeError: route yielded tuple (str, bytes), expected (tag, line) "
         "pairs of str", "bytes")
    ]  # fmt: skip
