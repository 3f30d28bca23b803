"""Operations end to end: `python daemon.py` run as a user runs it, in a subprocess.

sd_notify, SIGHUP reload, log rotation and its API, a dying worker thread and the token
guard (history and retention are in test_history_e2e). Every wait polls a condition with
a deadline.
"""

from __future__ import annotations

import gzip
import http.client
import json
import re
import signal
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_fixtures import Daemon, MakeDaemon, outbox_files, write_config
from notify_fixtures import NotifyListener, max_gap
from ops_fixtures import append, wait_for


def outbox_lines(outbox: Path) -> list[str]:
    """Every line of every outbox file, files in name order."""
    found: list[str] = []
    for path in outbox_files(outbox):
        found += path.read_text(encoding="utf-8").splitlines()
    return found


def log_records(state: Path) -> list[dict[str, Any]]:
    """The JSON records of the current `inboxd.log` (a torn last line is skipped)."""
    path = state / "logs" / "inboxd.log"
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


# -- 1. sd_notify ------------------------------------------------------------------------


def test_sd_notify_ready_status_watchdog_stopping(daemons: MakeDaemon, tmp_path: Path) -> None:
    sock_path = tmp_path / "notify.sock"
    assert len(str(sock_path)) < 100, "AF_UNIX path too long for this tmp_path"
    d = daemons(env={"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "2000000"})
    listener = NotifyListener(sock_path, lambda: d.url)
    try:
        d.start()
        wait_for(lambda: listener.times_of("READY=1"), "READY=1")
        assert listener.health_at_ready == [200], "READY=1 sent before /health answered"
        # Ingest for a little over one STATUS period, then stay idle for a while.
        ingest_start = time.monotonic()
        sent = 0
        while time.monotonic() - ingest_start < 6.5:
            append(d.inbox / "app.log", [f"line {sent + i}" for i in range(200)])
            sent += 200
            threading.Event().wait(0.1)
        ingest_end = time.monotonic()
        wait_for(lambda: len(outbox_lines(d.outbox)) == sent, "every line delivered")
        idle_start = time.monotonic()
        threading.Event().wait(3.0)
        idle_end = time.monotonic()
        d.stop()
        wait_for(lambda: listener.times_of("STOPPING=1"), "STOPPING=1")
    finally:
        d.kill()
        listener.close()
    assert len(listener.times_of("READY=1")) == 1
    statuses = listener.starting_with("STATUS=")
    rates = [int(m.group(1)) for s in statuses if (m := re.search(r"(\d+) lines/s", s))]
    assert any(rate > 0 for rate in rates), f"no throughput in STATUS messages: {statuses}"
    pings = listener.times_of("WATCHDOG=1")
    # A third of WATCHDOG_USEC is 0.67 s; allow scheduling slack on a busy machine.
    assert max_gap(pings, ingest_start, ingest_end) < 1.0, "watchdog gap while ingesting"
    assert max_gap(pings, idle_start, idle_end) < 1.0, "watchdog gap while idle"
    assert len(listener.times_of("STOPPING=1")) == 1


# -- 2. SIGHUP reload --------------------------------------------------------------------


def prefix_rules(folder: Path, module: str, func: str, prefix: str) -> None:
    (folder / f"{module}.py").write_text(f"def {func}(line):\n    yield 'end', {prefix!r} + line\n")


def reload_failures(d: Daemon) -> list[dict[str, Any]]:
    return [r for r in log_records(d.state_dir) if r.get("event") == "reload_failed"]


def has_reload_failures(d: Daemon, number: int) -> bool:
    return len(reload_failures(d)) >= number


def test_sighup_reloads_pipeline_and_keeps_it_when_new_config_is_broken(
    daemons: MakeDaemon, tmp_path: Path
) -> None:
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    prefix_rules(conf_dir, "rules_a", "route_a", "A:")
    prefix_rules(conf_dir, "rules_b", "route_b", "B:")
    config = write_config(conf_dir, pipeline='start = "rules_a:route_a"')
    d = daemons(config=config).start()
    log = d.inbox / "app.log"
    first = [f"a{i}" for i in range(50)]
    append(log, first)
    wait_for(lambda: len(outbox_lines(d.outbox)) == 50, "first lines delivered")
    assert set(d.stats()) == {"route_a"}

    write_config(conf_dir, pipeline='start = "rules_b:route_b"')
    d.send_signal(signal.SIGHUP)
    wait_for(lambda: "route_b" in d.stats(), "route_b listed in /stats after SIGHUP")
    second = [f"b{i}" for i in range(50)]
    append(log, second)
    want = [f"A:{x}" for x in first] + [f"B:{x}" for x in second]
    wait_for(lambda: len(outbox_lines(d.outbox)) >= len(want), "second lines delivered")
    assert outbox_lines(d.outbox) == want
    assert d.stats()["route_b"]["count"] == 50

    broken = [
        "[pipeline\nstart = ",  # not TOML
        'start = "no_such_module_xyz:route"',  # unknown module
    ]
    for number, text in enumerate(broken, start=1):
        if text.startswith("["):
            config.write_text(text)
        else:
            write_config(conf_dir, pipeline=text)
        d.send_signal(signal.SIGHUP)
        wait_for(partial(has_reload_failures, d, number), f"reload failure #{number}")
        assert d.is_healthy()
    assert all(r["level"] == "error" for r in reload_failures(d))
    third = [f"c{i}" for i in range(30)]
    append(log, third)
    want += [f"B:{x}" for x in third]
    wait_for(lambda: len(outbox_lines(d.outbox)) >= len(want), "third lines delivered")
    assert outbox_lines(d.outbox) == want
    assert "route_b" in d.stats()
    d.stop()


def test_sighup_says_which_daemon_keys_wait_for_a_restart(
    daemons: MakeDaemon, tmp_path: Path
) -> None:
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    prefix_rules(conf_dir, "rules_a", "route_a", "A:")
    prefix_rules(conf_dir, "rules_b", "route_b", "B:")
    config = write_config(conf_dir, pipeline='start = "rules_a:route_a"', errors_size=5)
    d = daemons(config=config).start()
    write_config(conf_dir, pipeline='start = "rules_b:route_b"', errors_size=7)
    d.send_signal(signal.SIGHUP)
    wait_for(lambda: "route_b" in d.stats(), "the new pipeline after SIGHUP")
    ignored = wait_for(
        lambda: [r for r in log_records(d.state_dir) if r.get("event") == "reload_ignored"],
        "the ignored keys logged",
    )
    assert ignored[0]["keys"] == ["errors_size"] and ignored[0]["level"] == "warning"
    d.stop()


def test_sighup_refused_for_a_syntax_error_logs_file_line_and_message(
    daemons: MakeDaemon, tmp_path: Path
) -> None:
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    prefix_rules(conf_dir, "rules_a", "route_a", "A:")
    config = write_config(conf_dir, pipeline='start = "rules_a:route_a"')
    d = daemons(config=config).start()
    module = conf_dir / "rules_a.py"
    module.write_text("def route_a(line):\n    yield 'end', line\nx = = 1\n")
    d.send_signal(signal.SIGHUP)
    failure = wait_for(lambda: reload_failures(d), "the reload refused")[0]
    assert failure["level"] == "error"
    assert failure["msg"].endswith(f"[pipeline] start: {module}:3: invalid syntax"), failure
    assert "SyntaxError(" not in failure["msg"]
    # The running pipeline is kept.
    append(d.inbox / "app.log", ["one"])
    wait_for(lambda: outbox_lines(d.outbox) == ["A:one"], "a line through the old pipeline")
    d.stop()


# -- 3. log rotation and the /logs API ---------------------------------------------------

FAILING_RULES = """\
def explode(line):
    raise RuntimeError("cannot handle " + line)
"""


def has_count(d: Daemon, processor: str, count: int) -> bool:
    return bool(d.stats().get(processor, {}).get("count") == count)


def raw_status(port: int, target: str) -> int:
    """The status of a GET whose target is sent byte for byte (no client normalising)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", target)
        return conn.getresponse().status
    finally:
        conn.close()


def test_log_rotates_to_gzip_backups_served_by_logs_api(
    daemons: MakeDaemon, tmp_path: Path
) -> None:
    (tmp_path / "failing.py").write_text(FAILING_RULES)
    config = write_config(
        tmp_path, pipeline='start = "failing:explode"', log_max_bytes=20000, log_backups=3
    )
    d = daemons(config=config).start()
    logs = d.state_dir / "logs"
    total = 0
    for _ in range(60):
        append(d.inbox / "app.log", [f"doomed line {total + i} " + "x" * 80 for i in range(50)])
        total += 50
        wait_for(partial(has_count, d, "explode", total), f"{total} lines routed")
        if (logs / "inboxd.log.3.gz").exists() and total >= 600:
            break
    assert (logs / "inboxd.log.3.gz").exists(), sorted(p.name for p in logs.iterdir())
    names = sorted(p.name for p in logs.iterdir())
    assert names == ["inboxd.log", "inboxd.log.1.gz", "inboxd.log.2.gz", "inboxd.log.3.gz"]
    assert all(p.stat().st_size <= 20000 for p in logs.iterdir())
    with gzip.open(logs / "inboxd.log.3.gz", "rt") as fh:
        assert all(json.loads(line)["level"] for line in fh)

    listed = d.get("/logs")
    assert [doc["name"] for doc in listed] == ["inboxd.log", *names[1:]]
    for doc in listed:
        assert set(doc) >= {"name", "size", "modified"}
        assert isinstance(doc["size"], int) and isinstance(doc["modified"], float)
    response = httpx.get(d.url + "/logs/inboxd.log.1.gz", params={"tail": 5}, timeout=10)
    assert response.status_code == 200
    tail = response.text.splitlines()
    assert len(tail) == 5
    assert all(json.loads(line)["logger"].startswith("inboxd") for line in tail)
    with gzip.open(logs / "inboxd.log.1.gz", "rt") as fh:
        assert tail == fh.read().splitlines()[-5:]

    for target in (
        "/logs/..%2Finboxd.db",
        "/logs/%2e%2e%2fx",
        "/logs/%2e%2e%2finboxd.db",
        "/logs/..%2F..%2Finboxd.toml",
        "/logs/../inboxd.db",
        "/logs/inboxd.db",
    ):
        # Refused whatever the layer: a bad name (400), none such (404), or a name the
        # path pattern rejects before the handler runs (422).
        assert raw_status(d.port, target) in (400, 404, 422), target
    d.stop()


# -- 4. a dying worker thread ------------------------------------------------------------


# SystemExit from a processor is an error of that line like any exception; what is not
# an Exception and not SystemExit still ends the engine thread.
@pytest.mark.parametrize("exc", ["KeyboardInterrupt"])
def test_dead_engine_thread_exits_non_zero(daemons: MakeDaemon, tmp_path: Path, exc: str) -> None:
    (tmp_path / "fatal.py").write_text(
        f"def fatal(line):\n    if line == 'die':\n        raise {exc}()\n    yield 'end', line\n"
    )
    config = write_config(tmp_path, pipeline='start = "fatal:fatal"')
    d = daemons(config=config).start()
    append(d.inbox / "app.log", ["one", "two"])
    wait_for(lambda: outbox_lines(d.outbox) == ["one", "two"], "first lines delivered")
    append(d.inbox / "app.log", ["die"])
    code = d.wait_exit(timeout=8.0)
    assert code not in (0, None), f"exit code {code}"
    records = log_records(d.state_dir)
    deaths = [r for r in records if r.get("event") == "thread_died"]
    assert [r.get("worker") for r in deaths] == ["engine"]
    assert [r.get("exit_code") for r in records if r.get("event") == "stop"] == [code]
    assert "Traceback" not in d.stderr()
    died = [r for r in records if r.get("msg") == "engine thread died"]
    assert len(died) == 1 and exc in died[0].get("exc", "")


# -- 5. the token guard ------------------------------------------------------------------


def test_public_host_without_token_is_refused(daemons: MakeDaemon) -> None:
    d = daemons(host="0.0.0.0").spawn()
    assert d.wait_exit() == 2
    err = d.stderr().strip()
    assert len(err.splitlines()) == 1 and "token" in err, err
    assert "Traceback" not in err


def test_public_host_with_token_guards_api(daemons: MakeDaemon) -> None:
    d = daemons(host="0.0.0.0", token="s3cret-token").start()
    assert httpx.get(d.url + "/stats", timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert httpx.get(d.url + "/stats", headers=wrong, timeout=10).status_code == 401
    assert httpx.get(d.url + "/stats", headers=d.headers(), timeout=10).status_code == 200
    assert httpx.get(d.url + "/health", timeout=10).status_code == 200
    d.stop()
