"""Prometheus exposition of the parts' figures.

A custom Collector asks each part that has figures (the telemetry, the sink board, the
/health board, the build info) for them at each scrape: the same snapshots /stats and
/health serve, so the figures never disagree and no second set of counters is kept. It
knows the parts only as a list (store/live/figures.py). Each app gets its own
CollectorRegistry; nothing is registered on prometheus_client's global one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from store.live.figures import COUNTER, GAUGE, Figure, HasFigures
from store.live.telemetry import Telemetry

FAMILIES: dict[str, type[CounterMetricFamily | GaugeMetricFamily]] = {
    COUNTER: CounterMetricFamily,
    GAUGE: GaugeMetricFamily,
}


def family_of(figure: Figure) -> Metric:
    """The metric family of one figure."""
    family = FAMILIES[figure.kind](figure.name, figure.help, labels=list(figure.labels))
    for values, value in figure.samples:
        family.add_metric(list(values), value)
    return family


class FiguresCollector(Collector):
    """Turns the figures of each part into metric families at each scrape.

    `parts` is called at each scrape, so that a part replaced after the app was built
    (the daemon's sink board) is the one asked.
    """

    def __init__(self, parts: Callable[[], Sequence[HasFigures]]) -> None:
        self.parts = parts

    def collect(self) -> Iterator[Metric]:
        for part in self.parts():
            for figure in part.collect():
                yield family_of(figure)


class BuildInfo:
    """Constant series that tell instances apart in a central Prometheus."""

    def __init__(self, *, version: str, inbox: str | None = None) -> None:
        self.version = version
        self.inbox = inbox

    def collect(self) -> Iterator[Figure]:
        yield Figure("inboxd_build_info", GAUGE, "Version of inboxd.", ("version",),
                     (((self.version,), 1.0),))  # fmt: skip
        if self.inbox is not None:
            yield Figure("inboxd_inbox_info", GAUGE, "The inbox folder this instance watches.",
                         ("inbox",), (((self.inbox,), 1.0),))  # fmt: skip


def build_registry(
    telemetry: Telemetry, *, version: str, inbox: str | None = None
) -> CollectorRegistry:
    """A registry of its own holding the parts' figures and the process collectors."""
    info = BuildInfo(version=version, inbox=inbox)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        FiguresCollector(lambda: (telemetry, telemetry.sinks, telemetry.health, info))
    )
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition of `registry`."""
    return generate_latest(registry)
