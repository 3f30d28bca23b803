"""Every command-line option that changes what the daemon keeps, checked through
daemon.py: a test fails if the option were parsed but not wired."""

from __future__ import annotations

import json
from pathlib import Path

from daemon_fixtures import MakeDaemon, dir_args, run_cli, write_config
from net_fixtures import wait_for

FAILING = """\
def fail(line):
    raise ValueError("no: " + line)
"""


def test_trace_size_is_the_number_of_paths_kept(make_daemon: MakeDaemon) -> None:
    d = make_daemon(extra_args=["--trace", "--trace-size", "3"]).start()
    (d.inbox / "a.log").write_text("".join(f"INFO {i}\n" for i in range(10)))
    wait_for(lambda: d.stats()["tag_router"]["count"] == 10, 20, "ten lines routed")
    assert len(d.get("/trace")) == 3
    d.stop()


def test_errors_size_is_the_number_of_errors_kept(tmp_path: Path, make_daemon: MakeDaemon) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "failing.py").write_text(FAILING)
    conf = write_config(folder, pipeline='start = "failing:fail"')
    d = make_daemon(config=conf, extra_args=["--errors-size", "2"]).start()
    (d.inbox / "a.log").write_text("".join(f"line {i}\n" for i in range(6)))
    wait_for(lambda: d.stats()["fail"]["errors"] == 6, 20, "six errors")
    assert [e["line_no"] for e in d.get("/errors")] == [5, 6]
    d.stop()


def log_levels(state: Path) -> set[str]:
    lines = (state / "logs" / "inboxd.log").read_text().splitlines()
    return {json.loads(line)["level"] for line in lines}


def test_log_level_sets_what_the_log_keeps(tmp_path: Path) -> None:
    for level, root in (("info", tmp_path / "a"), ("warning", tmp_path / "b")):
        (root / "inbox").mkdir(parents=True)
        (root / "inbox" / "x.log").write_text("INFO one\n")
        done = run_cli("--once", *dir_args(root), "--log-level", level)
        assert done.returncode == 0, done.stderr
    assert "info" in log_levels(tmp_path / "a" / "var")
    assert "info" not in log_levels(tmp_path / "b" / "var")
