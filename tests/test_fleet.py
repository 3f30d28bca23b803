"""More than one machine: two real daemons scraped by a real Prometheus with the shipped
scrape config, then federated by a second Prometheus with the shipped federation config,
and queried across instances as the README shows."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_fixtures import Daemon, MakeDaemon
from net_fixtures import free_port, wait_for

yaml: Any = pytest.importorskip("yaml", reason="PyYAML is not installed (pip install pyyaml)")

PROMETHEUS = Path("/usr/bin/prometheus")
DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "prometheus"
TOKEN = "fleet-token"
LINES = {"a": 30, "b": 45}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not PROMETHEUS.exists(),
        reason=f"{PROMETHEUS} is not installed (apt-get install prometheus)",
    ),
]


def scrape_config(targets: list[str], token_file: Path) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml aimed at local targets, scraping every second."""
    config: dict[str, Any] = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(DEPLOY / "alerts.yml")]
    (job,) = config["scrape_configs"]
    job["scrape_interval"] = "1s"
    job["authorization"]["credentials_file"] = str(token_file)
    job["static_configs"] = [{"targets": targets, "labels": {"site": "test"}}]
    return config


def federation_config(target: str) -> dict[str, Any]:
    """deploy/prometheus/federation.yml aimed at the local site Prometheus."""
    config: dict[str, Any] = yaml.safe_load((DEPLOY / "federation.yml").read_text())
    config["global"] = {"scrape_interval": "1s"}
    (job,) = config["scrape_configs"]
    job["scrape_interval"] = "1s"
    job["static_configs"] = [{"targets": [target]}]
    return config


@contextlib.contextmanager
def prometheus(folder: Path, config: dict[str, Any]) -> Iterator[str]:
    """A real Prometheus on a free port with `config`; yields its base URL."""
    folder.mkdir()
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    address = f"127.0.0.1:{free_port()}"
    log = (folder / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [str(PROMETHEUS), f"--config.file={folder / 'prometheus.yml'}",
         f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address={address}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield f"http://{address}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def query(prom_url: str, expr: str) -> list[dict[str, Any]] | None:
    try:
        response = httpx.get(f"{prom_url}/api/v1/query", params={"query": expr}, timeout=5)
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        return None
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result or None


def scalar_when(prom_url: str, expr: str, expected: float) -> bool:
    result = query(prom_url, expr)
    return result is not None and float(result[0]["value"][1]) == expected


def has_routed(daemon: Daemon, lines: int) -> bool:
    return bool(daemon.stats()["tag_router"]["count"] == lines)


def test_two_daemons_summed_by_a_central_and_a_federating_prometheus(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    daemons: dict[str, Daemon] = {}
    for name, count in LINES.items():
        daemon = make_daemon(name=name, token=TOKEN).start()
        (daemon.inbox / "app.log").write_text("".join(f"INFO {name} {i}\n" for i in range(count)))
        daemons[name] = daemon
    for name, daemon in daemons.items():
        wait_for(partial(has_routed, daemon, LINES[name]), 20, f"daemon {name} done")
    token_file = tmp_path / "inboxd.token"
    token_file.write_text(TOKEN)
    targets = [f"127.0.0.1:{d.port}" for d in daemons.values()]
    total = float(sum(LINES.values()))
    by_router = 'sum(inboxd_processor_lines_total{processor="tag_router"})'
    with prometheus(tmp_path / "site", scrape_config(targets, token_file)) as site:
        wait_for(lambda: scalar_when(site, by_router, total), 40, "site sum", interval=0.5)
        per_instance = query(
            site, 'sum by (instance) (inboxd_processor_lines_total{processor="tag_router"})'
        )
        inboxes = query(site, "inboxd_inbox_info")
        assert scalar_when(site, 'count(up{job="inboxd"} == 1)', 2)
        with prometheus(
            tmp_path / "global", federation_config(site.removeprefix("http://"))
        ) as top:
            wait_for(lambda: scalar_when(top, by_router, total), 40, "federated sum", interval=0.5)
            federated = query(top, "count by (site) (inboxd_build_info)")
    assert per_instance is not None
    assert sorted(float(r["value"][1]) for r in per_instance) == sorted(map(float, LINES.values()))
    assert inboxes is not None
    assert {r["metric"]["inbox"] for r in inboxes} == {
        str(d.inbox.resolve()) for d in daemons.values()
    }
    assert federated is not None and federated[0]["metric"] == {"site": "test"}
    assert float(federated[0]["value"][1]) == 2
    for daemon in daemons.values():
        daemon.stop()
