"""Sinks end to end, with daemon.py as a subprocess: file and sqlite sinks exactly once
across kill -9, stdout, the config's mistakes, `check` and `test`."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from functools import partial
from pathlib import Path

import pytest
from daemon_fixtures import REPO, Daemon, MakeDaemon, daemon_env, outbox_line_count, pause
from net_fixtures import wait_for

SINK_PIPE = """\
def split(line):
    seq = int(line.split()[1])
    if seq % 4 == 0:
        yield "alerts", line
    if seq % 3 == 0:
        yield "rows", "row " + line
    yield "end", line
"""

SINKS = """
[sinks.alerts]
type = "file"
path = "alerts/{tag}/{file}"

[sinks.rows]
type = "sqlite"
path = "sinks/lines.db"
table = "lines"
"""


def write_sink_config(folder: Path, extra: str = "", **daemon: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sinkpipe.py").write_text(SINK_PIPE)
    head = "\n".join(f"{k} = {v!r}" for k, v in daemon.items())
    path = folder / "inboxd.toml"
    path.write_text(f'[daemon]\n{head}\n\n[pipeline]\nstart = "sinkpipe:split"\n{SINKS}{extra}')
    return path


def grew(outbox: Path, before: int) -> bool:
    return outbox_line_count(outbox) > before


def sqlite_rows(d: Daemon) -> list[tuple[str, int, str]]:
    path = d.state_dir / "sinks" / "lines.db"
    if not path.exists():
        return []
    with sqlite3.connect(path) as conn:
        return [tuple(r) for r in conn.execute("SELECT file, line_no, line FROM lines")]


def file_lines(root: Path) -> Counter[str]:
    got: Counter[str] = Counter()
    if root.is_dir():
        for p in root.rglob("*"):
            if p.is_file():
                got.update(p.read_text().splitlines())
    return got


def test_file_and_sqlite_sinks_deliver_exactly_once_across_kill_9(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    rng = random.Random(int(os.environ.get("INBOXD_CRASH_SEED", time.time_ns() % 10**6)))
    d = make_daemon(config=write_sink_config(tmp_path / "conf", partial_timeout=600))
    total = 60_000
    data = "".join(f"a.log {seq:06d} {'x' * (seq % 17)}\n" for seq in range(total)).encode()
    cuts = sorted(rng.sample(range(1, len(data)), 4))
    pieces = [data[lo:hi] for lo, hi in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    d.inbox.mkdir(parents=True, exist_ok=True)
    for piece in pieces[:-1]:
        with (d.inbox / "a.log").open("ab") as fh:
            fh.write(piece)
        before = outbox_line_count(d.outbox)
        d.spawn()
        wait_for(partial(grew, d.outbox, before), 30, "lines flowing", 0.005)
        pause(rng.uniform(0.0, 0.08))
        d.kill()
    with (d.inbox / "a.log").open("ab") as fh:
        fh.write(pieces[-1])
    d.start()
    wait_for(lambda: outbox_line_count(d.outbox) >= total, 60, "every outbox line", 0.2)
    wait_for(lambda: len(sqlite_rows(d)) >= total // 3, 30, "sqlite rows", 0.2)
    d.stop()
    lines = data.decode().splitlines()
    alerts = file_lines(d.outbox / "alerts" / "alerts")
    assert alerts == Counter(x for x in lines if int(x.split()[1]) % 4 == 0)
    assert (d.outbox / "alerts" / "alerts" / "a.log").is_file()
    rows = sqlite_rows(d)
    want = [("a.log", n + 1, "row " + x) for n, x in enumerate(lines) if n % 3 == 0]
    assert sorted(rows, key=lambda r: r[1]) == want
    assert len(rows) == len(set(rows)), "a row was written twice"


def test_sinks_with_two_workers_match_one_worker(tmp_path: Path) -> None:
    """Same sink contents, order per file and /stats with 1 and 2 worker processes."""
    lines = [f"a.log {seq:06d} {'y' * (seq % 5)}" for seq in range(30_000)]
    results = []
    for workers in (1, 2):
        root = tmp_path / f"w{workers}"
        (root / "inbox").mkdir(parents=True)
        (root / "inbox" / "a.log").write_text("\n".join(lines) + "\n")
        config = write_sink_config(root / "conf", workers=workers)
        proc = run_once(root, config)
        assert proc.returncode == 0, proc.stderr
        with sqlite3.connect(root / "var" / "sinks" / "lines.db") as conn:
            rows = conn.execute("SELECT file, line_no, line FROM lines ORDER BY id").fetchall()
        alerts = (root / "outbox" / "alerts" / "alerts" / "a.log").read_text()
        results.append((rows, alerts, json.loads(proc.stdout.splitlines()[-1])["split"]["count"]))
    assert results[0] == results[1]
    assert len(results[0][0]) == 10_000


def run_once(root: Path, config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "daemon.py", "--once", "--config", str(config),
         "--inbox", str(root / "inbox"), "--outbox", str(root / "outbox"),
         "--state-dir", str(root / "var"), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=daemon_env(),
    )  # fmt: skip


def test_stdout_sink_prints_its_lines_before_the_final_stats(tmp_path: Path) -> None:
    extra = '\n[sinks.console]\ntype = "stdout"\n'
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "a.log").write_text("a.log 1 one\na.log 2 two\n")
    config = write_sink_config(tmp_path / "conf", extra)
    (tmp_path / "conf" / "sinkpipe.py").write_text(
        'def split(line):\n    yield "console", "out: " + line\n    yield "end", line\n'
    )
    proc = run_once(tmp_path, config)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert out[:2] == ["out: a.log 1 one", "out: a.log 2 two"]
    assert json.loads(out[2])["split"]["count"] == 2


def test_a_sink_named_like_a_tag_exits_2_with_one_line(tmp_path: Path) -> None:
    config = write_sink_config(tmp_path / "conf", '\n[sinks.start]\ntype = "stdout"\n')
    proc = run_once(tmp_path, config)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "start" in proc.stderr, proc.stderr
    clash = write_sink_config(tmp_path / "conf2")
    both = 'start = "sinkpipe:split"\nalerts = "sinkpipe:split"'
    clash.write_text(clash.read_text().replace('start = "sinkpipe:split"', both))
    proc = run_once(tmp_path, clash)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "[sinks.alerts]" in proc.stderr and "also a tag" in proc.stderr


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ('[sinks.x]\ntype = "kafka"\n', "type"),
        ('[sinks.x]\ntype = "file"\npath = "../out/{file}"\n', "path"),
        ('[sinks.x]\ntype = "file"\npath = "x/{nope}"\n', "nope"),
        ('[sinks.x]\ntype = "sqlite"\ntable = "drop table"\n', "table"),
        ('[sinks.x]\ntype = "http"\nurl = "ftp://h/"\n', "url"),
        ('[sinks.x]\ntype = "http"\nurl = "http://h/"\nbatch = 0\n', "batch"),
        ('[sinks.x]\ntype = "stdout"\npath = "a"\n', "path"),
        ('[sinks.x]\ntype = "sqlite"\npath = "inboxd.db"\n', "inboxd's own"),
    ],
)
def test_bad_sink_tables_exit_2_naming_the_key(tmp_path: Path, table: str, named: str) -> None:
    config = write_sink_config(tmp_path / "conf", "\n" + table)
    proc = run_once(tmp_path, config)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "[sinks.x]" in proc.stderr and named in proc.stderr


def test_a_sqlite_sink_table_of_another_shape_exits_2(tmp_path: Path) -> None:
    (tmp_path / "var" / "sinks").mkdir(parents=True)
    with sqlite3.connect(tmp_path / "var" / "sinks" / "lines.db") as conn:
        conn.execute("CREATE TABLE lines (a, b)")
    proc = run_once(tmp_path, write_sink_config(tmp_path / "conf"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "lines" in proc.stderr, proc.stderr


def test_check_names_the_sinks_and_who_feeds_them(tmp_path: Path) -> None:
    config = write_sink_config(tmp_path / "conf")
    proc = subprocess.run([sys.executable, "daemon.py", "check", "--config", str(config)],
                          cwd=REPO, capture_output=True, text=True, env=daemon_env())  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "alerts -> file sink outbox/alerts/{tag}/{file} (exactly-once) <- split" in text
    assert "rows   -> sqlite sink var/sinks/lines.db table lines (exactly-once) <- split" in text


def test_pipeline_tests_compare_what_each_sink_receives(tmp_path: Path) -> None:
    passing = '\n[[test]]\nname = "alerts"\ninput = ["a 4 x", "a 3 y"]\n' \
        'sinks = { alerts = ["a 4 x"], rows = ["row a 3 y"] }\n'  # fmt: skip
    failing = '\n[[test]]\nname = "wrong"\ninput = ["a 4 x"]\nsinks = { alerts = ["nope"] }\n'
    config = write_sink_config(tmp_path / "conf", passing + failing)
    proc = subprocess.run([sys.executable, "daemon.py", "test", "--config", str(config)],
                          cwd=REPO, capture_output=True, text=True, env=daemon_env())  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "ok    alerts" in proc.stdout
    assert "FAIL  wrong" in proc.stdout and "+a 4 x" in proc.stdout and "-nope" in proc.stdout
    unknown = write_sink_config(tmp_path / "c3", '\n[[test]]\ninput = ["a"]\nsinks = { zz = [] }\n')
    proc = subprocess.run([sys.executable, "daemon.py", "test", "--config", str(unknown)],
                          cwd=REPO, capture_output=True, text=True, env=daemon_env())  # fmt: skip
    assert proc.returncode == 2 and "zz" in proc.stderr


def test_traces_end_at_the_sink(tmp_path: Path, make_daemon: MakeDaemon) -> None:
    d = make_daemon(config=write_sink_config(tmp_path / "conf"), extra_args=["--trace"])
    d.inbox.mkdir(parents=True, exist_ok=True)
    (d.inbox / "a.log").write_text("a.log 12 x\n")
    d.start()
    wait_for(lambda: len(d.get("/trace")) >= 3, 20, "three traced paths")
    assert sorted(d.get("/trace")) == [["start", "alerts"], ["start", "end"], ["start", "rows"]]
    d.stop()


def test_a_file_sink_that_cannot_be_written_pauses_and_resumes(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    """A file where the sink's folder should be: degraded with the reason, nothing read
    past it; once the file is gone, every line arrives once, in the outbox and the sink."""
    d = make_daemon(config=write_sink_config(tmp_path / "conf"))
    d.start()
    (d.outbox / "alerts").mkdir(parents=True)
    (d.outbox / "alerts" / "alerts").write_text("in the way\n")
    lines = [f"a.log {seq:06d} z" for seq in range(400)]
    (d.inbox / "a.log").write_text("\n".join(lines[:200]) + "\n")

    def degraded() -> bool:
        check = d.get("/health")["checks"]["sinks"]
        return check["status"] == "degraded" and "alerts/alerts/a.log" in check["reason"]

    wait_for(degraded, 20, "sinks degraded")
    assert any(s["name"] == "alerts" and s["status"] == "degraded" for s in d.get("/sinks"))
    with (d.inbox / "a.log").open("a") as fh:
        fh.write("\n".join(lines[200:]) + "\n")
    pause(1.0)
    assert outbox_line_count(d.outbox) <= 1  # the obstacle's own line; no outbox line yet
    (d.outbox / "alerts" / "alerts").unlink()
    wait_for(lambda: outbox_line_count(d.outbox) >= 400 + 100, 20, "every line after the fix")
    wait_for(lambda: d.get("/health")["checks"]["sinks"]["status"] == "ok", 10, "sinks ok")
    d.stop()
    assert (d.outbox / "a.log").read_text().splitlines() == lines
    alerts = (d.outbox / "alerts" / "alerts" / "a.log").read_text().splitlines()
    assert alerts == [x for x in lines if int(x.split()[1]) % 4 == 0]
    assert sorted(r[1] for r in sqlite_rows(d)) == list(range(1, 401, 3))


def test_a_reload_that_names_a_running_sink_as_a_tag_is_refused(tmp_path: Path) -> None:
    from cli.settings import settings_from
    from daemon import reload_pipeline
    from processors.errors import ConfigError

    config = write_sink_config(tmp_path / "conf")
    argv = ["--config", str(config)]
    running = settings_from(argv)
    config.write_text(config.read_text().split("[sinks.alerts]")[0]
                      + 'alerts = "sinkpipe:split"\n')  # fmt: skip
    with pytest.raises(ConfigError, match=r"\[sinks.alerts\].*also a tag"):
        reload_pipeline(argv, running)


def test_a_sqlite_sink_locked_by_another_program_pauses_then_resumes(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    d = make_daemon(config=write_sink_config(tmp_path / "conf")).start()
    d.inbox.mkdir(parents=True, exist_ok=True)
    lines = [f"a.log {seq:06d} q" for seq in range(600)]
    (d.inbox / "a.log").write_text("\n".join(lines[:300]) + "\n")
    wait_for(lambda: len(sqlite_rows(d)) == 100, 20, "first rows")
    other = sqlite3.connect(d.state_dir / "sinks" / "lines.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with (d.inbox / "a.log").open("a") as fh:
            fh.write("\n".join(lines[300:]) + "\n")

        def degraded() -> bool:
            check = d.get("/health")["checks"]["sinks"]
            return check["status"] == "degraded" and "locked" in check["reason"]

        wait_for(degraded, 30, "sinks degraded: locked")
    finally:
        other.execute("ROLLBACK")
        other.close()
    wait_for(lambda: len(sqlite_rows(d)) >= 200, 30, "every row after the lock")
    wait_for(lambda: d.get("/health")["status"] == "ok", 20, "healthy again")
    d.stop()
    assert sorted(r[1] for r in sqlite_rows(d)) == list(range(1, 601, 3))
    assert (d.outbox / "a.log").read_text().splitlines() == lines
