"""`GET /sinks` and the sinks in `/live`: the SinkBoard's figures over a real server."""

from __future__ import annotations

from pathlib import Path

import httpx
from daemon_fixtures import MakeDaemon
from net_fixtures import wait_for
from prometheus_client.parser import text_string_to_metric_families
from web_fixtures import (  # noqa: F401
    HOOK_REASON,
    install_sinks,
    make_context,
    no_thread_leak,
    populated_telemetry,
    serving,
)

TOKEN = "sinks-token"
SPLIT = """\
def split(line):
    seq = int(line.split()[1])
    if seq % 4 == 0:
        yield "alerts", line
    if seq % 3 == 0:
        yield "rows", line
    yield "end", line
"""
CONFIG = """\
[pipeline]
start = "split:split"

[sinks.alerts]
type = "file"
path = "alerts/{file}"

[sinks.rows]
type = "sqlite"
path = "rows.db"
table = "lines"
"""
KEYS = {"name", "type", "target", "lines", "errors", "pending", "status", "reason", "since",
        "last_delivery"}  # fmt: skip


def test_sinks_lists_each_configured_sink_in_order(tmp_path: Path) -> None:
    telemetry = populated_telemetry()
    install_sinks(telemetry)
    with serving(make_context(tmp_path, telemetry=telemetry)) as url:
        response = httpx.get(f"{url}/sinks")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    rows = response.json()
    assert [r["name"] for r in rows] == ["alerts", "rows", "hook"]
    assert all(set(r) == KEYS for r in rows)
    alerts, rows_sink, hook = rows
    assert alerts["type"] == "file"
    assert alerts["target"] == "file sink out/alerts/{file} (exactly-once)"
    assert (alerts["lines"], alerts["errors"], alerts["pending"]) == (40, 0, 0)
    assert alerts["status"] == "ok" and alerts["reason"] is None
    assert alerts["last_delivery"] > 0
    assert rows_sink["target"] == "sqlite sink var/lines.db table lines (exactly-once)"
    assert rows_sink["lines"] == 30
    assert hook["type"] == "http"
    assert (hook["lines"], hook["errors"], hook["pending"]) == (300, 3, 120)
    assert hook["status"] == "degraded"
    assert hook["reason"] == HOOK_REASON
    assert hook["since"] > 0


def test_sinks_is_empty_without_sinks_and_follows_the_board(tmp_path: Path) -> None:
    telemetry = populated_telemetry()
    with serving(make_context(tmp_path, telemetry=telemetry)) as url:
        assert httpx.get(f"{url}/sinks").json() == []
        # The daemon installs its board after building the telemetry: read at each call.
        board = install_sinks(telemetry)
        board.delivered("hook", 7, pending=0)
        hook = httpx.get(f"{url}/sinks").json()[2]
    assert (hook["lines"], hook["pending"], hook["status"], hook["reason"]) == (
        307, 0, "ok", None
    )  # fmt: skip


def test_live_carries_the_sinks_and_the_outbox(tmp_path: Path) -> None:
    telemetry = populated_telemetry()
    install_sinks(telemetry)
    with serving(make_context(tmp_path, telemetry=telemetry)) as url:
        live = httpx.get(f"{url}/live").json()
        sinks = httpx.get(f"{url}/sinks").json()
    assert live["sinks"] == sinks
    assert live["outbox"] == {"lines": 290}  # lines_out of the populated telemetry
    assert live["health"]["checks"]["sinks"]["status"] == "degraded"
    assert "hook" in live["health"]["checks"]["sinks"]["reason"]


def test_sinks_needs_the_token(tmp_path: Path) -> None:
    telemetry = populated_telemetry()
    install_sinks(telemetry)
    with serving(make_context(tmp_path, telemetry=telemetry, token=TOKEN)) as url:
        anonymous = httpx.get(f"{url}/sinks")
        wrong = httpx.get(f"{url}/sinks", headers={"Authorization": "Bearer nope"})
        good = httpx.get(f"{url}/sinks", headers={"Authorization": f"Bearer {TOKEN}"})
    assert anonymous.status_code == 401
    assert anonymous.json() == {"detail": "missing or invalid bearer token"}
    assert wrong.status_code == 401
    assert good.status_code == 200
    assert [r["name"] for r in good.json()] == ["alerts", "rows", "hook"]


def test_openapi_documents_sinks(tmp_path: Path) -> None:
    with serving(make_context(tmp_path)) as url:
        doc = httpx.get(f"{url}/openapi.json").json()
    ok = doc["paths"]["/sinks"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"]["type"] == "array"
    ref = ok["schema"]["items"]["$ref"].rsplit("/", 1)[1]
    fields = doc["components"]["schemas"][ref]["properties"]
    assert set(fields) >= KEYS
    live = doc["components"]["schemas"]["LiveDoc"]["properties"]
    assert set(live) >= {"sinks", "outbox"}


def sink_series(text: str) -> dict[str, dict[str, float]]:
    """{metric sample name: {sink: value}} of the inboxd_sink_* families."""
    found: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("inboxd_sink_"):
                found.setdefault(sample.name, {})[sample.labels["sink"]] = sample.value
    return found


def test_a_running_daemon_reports_its_sinks(tmp_path: Path, make_daemon: MakeDaemon) -> None:
    """daemon.py with a file and a sqlite sink: /sinks, /live and /metrics agree."""
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "split.py").write_text(SPLIT)
    (conf / "inboxd.toml").write_text(CONFIG)
    d = make_daemon(config=conf / "inboxd.toml")
    d.inbox.mkdir(parents=True)
    (d.inbox / "a.log").write_text("".join(f"a.log {seq} x\n" for seq in range(120)))
    d.start()

    def delivered() -> list[dict[str, object]] | None:
        rows: list[dict[str, object]] = d.get("/sinks")
        return rows if [r["lines"] for r in rows] == [30, 40] else None

    rows = wait_for(delivered, 30, "the sinks' lines delivered")
    text = httpx.get(f"{d.url}/metrics").text
    live = d.get("/live")
    d.stop()
    assert [(r["name"], r["type"], r["status"], r["errors"]) for r in rows] == [
        ("alerts", "file", "ok", 0),
        ("rows", "sqlite", "ok", 0),
    ]
    assert str(d.outbox) in str(rows[0]["target"])
    assert sink_series(text) == {
        "inboxd_sink_lines_total": {"alerts": 30, "rows": 40},
        "inboxd_sink_errors_total": {"alerts": 0, "rows": 0},
        "inboxd_sink_pending_lines": {"alerts": 0, "rows": 0},
    }
    assert [r["name"] for r in live["sinks"]] == ["alerts", "rows"]
    assert live["outbox"] == {"lines": 120}
