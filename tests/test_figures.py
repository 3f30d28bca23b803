"""Figures: each live part collects its own; /metrics only iterates a list of parts."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from web_fixtures import install_sinks

from store.live.figures import COUNTER, Figure, single
from store.live.telemetry import Telemetry
from web.metrics import BuildInfo, FiguresCollector


def names(figures: Iterator[Figure]) -> list[str]:
    return [f.name for f in figures]


def test_each_part_collects_its_own_figures() -> None:
    telemetry = Telemetry()
    telemetry.register(["keep"])
    telemetry.add_stats({"keep": [4, 0.25, 1, 0]})
    own = list(telemetry.collect())
    assert own[0] == Figure(
        "inboxd_processor_lines_total", COUNTER, "Lines handed to the processor.",
        ("processor",), ((("keep",), 4.0),),
    )  # fmt: skip
    assert not any(n.startswith(("inboxd_sink_", "inboxd_health")) for n in names(iter(own)))
    assert names(telemetry.sinks.collect()) == []  # no sinks, no family
    install_sinks(telemetry)
    assert names(telemetry.sinks.collect()) == [
        "inboxd_sink_lines_total", "inboxd_sink_errors_total", "inboxd_sink_pending_lines",
    ]  # fmt: skip
    lines = next(iter(telemetry.sinks.collect()))
    assert [values for values, _ in lines.samples] == [("alerts",), ("rows",), ("hook",)]
    [health] = telemetry.health.collect()
    assert dict(health.samples)[("sinks",)] == 1.0  # the failing http sink: degraded


class Widgets:
    """A part /metrics was never told about."""

    def collect(self) -> Iterator[Figure]:
        yield single("widgets_total", COUNTER, "Widgets made.", 3.0)


def test_the_collector_renders_whatever_parts_it_is_given() -> None:
    registry = CollectorRegistry(auto_describe=False)
    parts = (Widgets(), BuildInfo(version="9.9"))
    registry.register(FiguresCollector(lambda: parts))
    text = generate_latest(registry).decode()
    assert text == (
        "# HELP widgets_total Widgets made.\n"
        "# TYPE widgets_total counter\n"
        "widgets_total 3.0\n"
        "# HELP inboxd_build_info Version of inboxd.\n"
        "# TYPE inboxd_build_info gauge\n"
        'inboxd_build_info{version="9.9"} 1.0\n'
    )
