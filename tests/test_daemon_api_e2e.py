"""End to end: the HTTP API of `python daemon.py` run as a subprocess over real folders.

The shapes of /stats, /trace, /errors and /health with the default pipeline and tracing
on, and with a user pipeline that fails and retries and tracing off.
"""

from __future__ import annotations

from pathlib import Path

from daemon_e2e_fixtures import append, wait_outbox
from daemon_fixtures import MakeDaemon, write_config
from net_fixtures import wait_for

# -- the HTTP API of a running daemon -------------------------------------------------------


def test_api_shapes_with_trace_on_default_pipeline(make_daemon: MakeDaemon) -> None:
    d = make_daemon(extra_args=["--trace"]).start()
    lines = [
        "2024-01-01 INFO service started",
        "2024-01-01 DEBUG noisy detail",
        "",
        "2024-01-01 ERROR login failed password=hunter2",
        "2024-01-01 WARN disk 91% full",
    ]
    append(d.inbox / "app.log", lines)
    wait_outbox(
        d,
        "app.log",
        [lines[0], "2024-01-01 ERROR login failed password=***", lines[4]],
    )
    stats = wait_for(lambda: (s := d.get("/stats"))["tag_router"]["count"] == 5 and s)
    assert set(stats) == {"tag_router", "filter_errors", "keep", "drop", "redact_secrets"}
    for figures in stats.values():
        assert set(figures) == {"count", "time", "errors", "retries"}
        assert isinstance(figures["time"], float)
    assert stats["keep"]["count"] == 2
    assert stats["drop"]["count"] == 1
    assert stats["redact_secrets"]["count"] == 3
    trace = d.get("/trace")
    assert trace == [
        ["start", "info", "redact", "end"],
        ["start", "debug"],
        ["start"],
        ["start", "error", "redact", "end"],
        ["start", "warn", "redact", "end"],
    ]
    assert d.get("/trace", limit=2) == trace[-2:]
    assert d.get("/trace", limit=0) == []
    assert d.get("/errors") == []
    health = d.get("/health")
    assert health["status"] == "ok"
    d.stop()


def test_api_errors_and_trace_off(tmp_path: Path, make_daemon: MakeDaemon) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "flaky.py").write_text(
        "def picky(line):\n"
        "    if 'bad' in line:\n"
        "        raise ValueError('no bad lines')\n"
        "    yield 'end', line\n"
    )
    config = write_config(conf, pipeline='start = { processor = "flaky:picky", retries = 1 }')
    d = make_daemon(config=config).start()
    append(d.inbox / "a.log", ["good", "bad one", "good too"])
    wait_outbox(d, "a.log", ["good", "good too"])
    errors = wait_for(lambda: len(e := d.get("/errors")) == 2 and e)
    for error in errors:
        assert error["processor"] == "picky"
        assert error["message"] == "ValueError: no bad lines"
    assert d.get("/errors", limit=1) == errors[-1:]
    stats = d.get("/stats")
    assert stats == {"picky": {**stats["picky"], "count": 3, "errors": 2, "retries": 1}}
    assert d.get("/trace") == []
    d.stop()
