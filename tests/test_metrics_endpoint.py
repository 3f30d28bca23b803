"""/metrics: Prometheus exposition of the same telemetry, parsed and scraped for real."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from net_fixtures import free_port, wait_for
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from web_fixtures import (  # noqa: F401
    install_sinks,
    make_context,
    no_thread_leak,
    populated_telemetry,
    serving,
)

from store.flush import Flusher
from store.live.telemetry import Telemetry

PROMETHEUS = Path("/usr/bin/prometheus")
TOKEN = "scrape-token"


def scrape(url: str, headers: dict[str, str] | None = None) -> dict[str, list[Sample]]:
    response = httpx.get(f"{url}/metrics", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    samples: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def by_processor(samples: list[Sample]) -> dict[str, float]:
    return {s.labels["processor"]: s.value for s in samples}


def single(samples: dict[str, list[Sample]], name: str) -> float:
    (sample,) = samples[name]
    assert sample.labels == {}
    return sample.value


def test_processor_series_equal_the_stats(tmp_path: Path) -> None:
    telemetry = populated_telemetry()
    with serving(make_context(tmp_path, telemetry=telemetry)) as url:
        samples = scrape(url)
    stats = telemetry.stats()
    for name, key in [
        ("inboxd_processor_lines_total", "count"),
        ("inboxd_processor_seconds_total", "time"),
        ("inboxd_processor_errors_total", "errors"),
        ("inboxd_processor_retries_total", "retries"),
    ]:
        assert by_processor(samples[name]) == {p: float(s[key]) for p, s in stats.items()}
        assert all(set(s.labels) == {"processor"} for s in samples[name])


def test_engine_counters_and_gauges_equal_the_telemetry(tmp_path: Path) -> None:
    telemetry = populated_telemetry()
    with serving(make_context(tmp_path, telemetry=telemetry)) as url:
        samples = scrape(url)
    counters = telemetry.counters()
    assert single(samples, "inboxd_bytes_read_total") == counters["bytes_read"] == 4096
    assert single(samples, "inboxd_lines_read_total") == counters["lines_read"] == 310
    assert single(samples, "inboxd_lines_out_total") == counters["lines_out"] == 290
    assert single(samples, "inboxd_deadletters_total") == 0
    assert single(samples, "inboxd_errors_dropped_total") == 0
    assert single(samples, "inboxd_traces_dropped_total") == 0
    assert single(samples, "inboxd_dirty_files") == 2
    assert single(samples, "inboxd_files_tracked") == 2
    assert single(samples, "inboxd_lag_bytes") == 400
    assert single(samples, "inboxd_tracing_enabled") == 1
    assert single(samples, "inboxd_start_time_seconds") == telemetry.started
    assert [s.labels for s in samples["inboxd_build_info"]] == [{"version": "9.9.9"}]


def test_instances_tell_themselves_apart(tmp_path: Path) -> None:
    with serving(make_context(tmp_path, inbox="/srv/app/inbox")) as url:
        samples = scrape(url)
    assert [s.labels for s in samples["inboxd_inbox_info"]] == [{"inbox": "/srv/app/inbox"}]
    assert [s.value for s in samples["inboxd_inbox_info"]] == [1.0]
    assert [s.labels for s in samples["inboxd_build_info"]] == [{"version": "9.9.9"}]


def test_health_checks_flush_failures_and_failing_files_are_exported(tmp_path: Path) -> None:
    telemetry = populated_telemetry()
    telemetry.health.set("disk", "degraded", "disk full")
    telemetry.health.set("engine", "failing", "stalled")
    telemetry.add_counts(flush_failures=3)
    telemetry.set_gauge("engine_stalled_seconds", 42.5)
    files = telemetry.files()
    telemetry.set_files([*files, files[0]._replace(path="bad.log", state="error")])
    with serving(make_context(tmp_path, telemetry=telemetry)) as url:
        samples = scrape(url)
    status = {s.labels["check"]: s.value for s in samples["inboxd_health_status"]}
    assert status["disk"] == 1 and status["engine"] == 2 and status["database"] == 0
    assert single(samples, "inboxd_flush_failures_total") == 3
    assert single(samples, "inboxd_engine_stalled_seconds") == 42.5
    assert single(samples, "inboxd_files_failing") == 1


def test_help_text_says_what_an_error_counts(tmp_path: Path) -> None:
    with serving(make_context(tmp_path)) as url:
        text = httpx.get(f"{url}/metrics").text
    (help_line,) = [
        ln for ln in text.splitlines() if ln.startswith("# HELP inboxd_processor_errors")
    ]
    assert "attempt" in help_line and "unknown tags" in help_line


def test_figures_follow_the_live_telemetry(tmp_path: Path) -> None:
    telemetry = Telemetry()
    telemetry.register(["only"])
    with serving(make_context(tmp_path, telemetry=telemetry)) as url:
        before = scrape(url)
        telemetry.add_stats({"only": [5, 0.5, 1, 1]})
        telemetry.add_counts(lines_read=5)
        after = scrape(url)
    assert by_processor(before["inboxd_processor_lines_total"]) == {"only": 0.0}
    assert by_processor(after["inboxd_processor_lines_total"]) == {"only": 5.0}
    assert single(after, "inboxd_lines_read_total") == 5


def by_sink(samples: list[Sample]) -> dict[str, float]:
    assert all(set(s.labels) == {"sink"} for s in samples)
    return {s.labels["sink"]: s.value for s in samples}


def test_sink_series_equal_the_board(tmp_path: Path) -> None:
    telemetry = populated_telemetry()
    board = install_sinks(telemetry)
    with serving(make_context(tmp_path, telemetry=telemetry)) as url:
        samples = scrape(url)
        board.delivered("alerts", 2)
        board.delivered("hook", 100, pending=20)
        after = scrape(url)
        text = httpx.get(f"{url}/metrics").text
    assert by_sink(samples["inboxd_sink_lines_total"]) == {"alerts": 40, "rows": 30, "hook": 300}
    assert by_sink(samples["inboxd_sink_errors_total"]) == {"alerts": 0, "rows": 0, "hook": 3}
    assert by_sink(samples["inboxd_sink_pending_lines"]) == {"alerts": 0, "rows": 0, "hook": 120}
    assert by_sink(after["inboxd_sink_lines_total"]) == {"alerts": 42, "rows": 30, "hook": 400}
    assert by_sink(after["inboxd_sink_pending_lines"])["hook"] == 20
    status = {s.labels["check"]: s.value for s in samples["inboxd_health_status"]}
    assert status["sinks"] == 1  # the failing hook degrades /health too
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["inboxd_sink_lines"].type == "counter"
    assert families["inboxd_sink_errors"].type == "counter"
    assert families["inboxd_sink_pending_lines"].type == "gauge"
    assert "delivered" in families["inboxd_sink_lines"].documentation
    assert "Failed deliveries" in families["inboxd_sink_errors"].documentation
    assert "not delivered yet" in families["inboxd_sink_pending_lines"].documentation


def test_no_sink_family_without_sinks(tmp_path: Path) -> None:
    with serving(make_context(tmp_path)) as url:
        text = httpx.get(f"{url}/metrics").text
    assert "inboxd_processor_lines_total" in text
    assert "inboxd_sink_" not in text


def test_process_metrics_are_exported(tmp_path: Path) -> None:
    with serving(make_context(tmp_path)) as url:
        samples = scrape(url)
    assert single(samples, "process_resident_memory_bytes") > 0
    assert "python_info" in samples


def test_no_series_is_labelled_per_file_or_line(tmp_path: Path) -> None:
    telemetry = populated_telemetry()
    install_sinks(telemetry)
    with serving(make_context(tmp_path, telemetry=telemetry)) as url:
        samples = scrape(url)
    labels = {key for series in samples.values() for s in series for key in s.labels}
    python_info = {"implementation", "major", "minor", "patchlevel", "version"}
    assert labels <= {"processor", "generation", "check", "sink", *python_info}
    assert labels.isdisjoint({"file", "path", "line", "line_no"})


def test_metrics_need_the_token(tmp_path: Path) -> None:
    with serving(make_context(tmp_path, token=TOKEN)) as url:
        assert httpx.get(f"{url}/metrics").status_code == 401
        samples = scrape(url, {"Authorization": f"Bearer {TOKEN}"})
    assert "inboxd_processor_lines_total" in samples


def prometheus_config(target_port: int) -> str:
    return f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: inboxd
    scrape_interval: 1s
    scrape_timeout: 1s
    authorization:
      type: Bearer
      credentials: {TOKEN}
    static_configs:
      - targets: ["127.0.0.1:{target_port}"]
"""


def query_lines_total(prom_url: str) -> dict[str, float] | None:
    """The scraped `inboxd_processor_lines_total` by processor, once Prometheus has it."""
    try:
        response = httpx.get(
            f"{prom_url}/api/v1/query", params={"query": "inboxd_processor_lines_total"}
        )
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        return None
    result = response.json()["data"]["result"]
    if not result:
        return None
    return {r["metric"]["processor"]: float(r["value"][1]) for r in result}


@pytest.mark.slow
def test_a_real_prometheus_scrapes_the_app(tmp_path: Path) -> None:
    if not PROMETHEUS.exists():
        pytest.skip(f"{PROMETHEUS} is not installed (apt-get install prometheus)")
    telemetry = populated_telemetry()
    with serving(make_context(tmp_path, telemetry=telemetry, token=TOKEN)) as url:
        config = tmp_path / "prometheus.yml"
        config.write_text(prometheus_config(int(url.rsplit(":", 1)[1])))
        prom_url = f"http://127.0.0.1:{free_port()}"
        log = (tmp_path / "prometheus.log").open("wb")
        proc = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address={prom_url.removeprefix('http://')}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            scraped = wait_for(lambda: query_lines_total(prom_url), timeout=30.0, interval=0.5)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            log.close()
    expected = {name: float(s["count"]) for name, s in telemetry.stats().items()}
    assert scraped == expected


def test_a_failing_flush_counts_in_the_metrics(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the state folder should be")
    telemetry = Telemetry()
    telemetry.register(["only"])
    telemetry.add_stats({"only": [1, 0.1, 0, 0]})
    flusher = Flusher(telemetry, blocker / "inboxd.db", interval_s=3600.0, retention_days=1.0)
    assert flusher._cycle() is False  # the real cycle, against a path that cannot be a db
    assert flusher._cycle() is False
    with serving(make_context(tmp_path, telemetry=telemetry)) as url:
        samples = scrape(url)
    assert single(samples, "inboxd_flush_failures_total") == 2
    status = {s.labels["check"]: s.value for s in samples["inboxd_health_status"]}
    assert status["database"] == 1
