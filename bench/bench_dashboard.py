"""Engine throughput with the dashboard open and refreshing, against no dashboard.

Usage: python bench/bench_dashboard.py [--lines N] [--repeat R] [--range live|1h|24h|7d]
                                       [--trace]
The page is replayed, not rendered: a thread makes the requests web/static/app.js makes,
on its schedule, with every panel visible (a large screen), while a fresh live daemon
ingests an N-line file. The page's parallel requests of one refresh are made one after
the other on one keep-alive connection. Prints both throughputs, their ratio, and the
bytes of one live update per endpoint. Figures, not assertions.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from harness import (
    BenchError,
    Daemon,
    bench_parser,
    exit_on_failure,
    input_size,
    link_copy,
    parse_bench_args,
    prepare,
    report_problems,
    source_log,
)
from report import best_row, cpu_row, row, runs_row

DRAIN_TIMEOUT_S = 150.0
# The schedule of web/static/app.js, in seconds.
POLL_S = 1.0
SLOW_EVERY_S = 5.0
TRACE_EVERY_S = 5.0
ERRORS_EVERY_S = 2.0
ERRORS_LIMIT = 50
FILES_LIMIT = 100
TRACES_LIMIT = 50
DEADLETTER_LIMIT = 50
LOG_TAIL = 50
RANGES: dict[str, tuple[int, int] | None] = {
    "live": None,
    "1h": (3600, 30),
    "24h": (86400, 600),
    "7d": (604800, 3600),
}
PAGE_LOAD = ("/", "/static/style.css", "/static/chart.js", "/static/app.js")


@dataclass
class Traffic:
    """Body bytes per endpoint and per refresh round."""

    per_endpoint: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    rounds: list[int] = field(default_factory=list)
    page_load: int = 0
    full_round: int = 0


class PageReplay(threading.Thread):
    """The dashboard's poll loop (app.js `poll()` and `plan()`), every panel visible."""

    def __init__(self, base: str, range_name: str) -> None:
        super().__init__(name="page-replay", daemon=True)
        self.base = base
        self.range = RANGES[range_name]
        self.stop_event = threading.Event()
        self.opened = threading.Event()
        self.traffic = Traffic()
        self.failure: BaseException | None = None
        self.due: dict[str, float] = {}
        self.errors_total = -1
        self.newest_error: float | None = None
        self.tracing = False
        self._round = 0

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.base, timeout=10.0) as client:
                for path in PAGE_LOAD:
                    self.traffic.page_load += len(client.get(path).raise_for_status().content)
                while not self.stop_event.is_set():
                    started = time.monotonic()
                    self.poll_round(client)
                    self.opened.set()
                    self.stop_event.wait(max(0.0, POLL_S - (time.monotonic() - started)))
        except BaseException as exc:
            self.failure = exc
            self.opened.set()

    def poll_round(self, client: httpx.Client) -> int:
        """One refresh of the page; returns the body bytes it fetched."""
        self._round = 0
        self.poll(client)
        self.traffic.rounds.append(self._round)
        return self._round

    def get(self, client: httpx.Client, endpoint: str, params: dict[str, Any] | None = None) -> Any:
        response = client.get(endpoint, params=params).raise_for_status()
        size = len(response.content)
        self.traffic.per_endpoint[endpoint].append(size)
        self._round += size
        if endpoint.startswith("/logs/"):
            return response.text
        return response.json()

    def is_due(self, name: str, every_s: float, now: float) -> bool:
        last = self.due.get(name)
        if last is None or now - last >= every_s:
            self.due[name] = now
            return True
        return False

    def poll(self, client: httpx.Client) -> None:
        now = time.monotonic()
        live = self.get(client, "/live", {"files": FILES_LIMIT})
        stats = live["stats"]
        self.tracing = bool(live["health"].get("tracing"))
        total = sum(int(s.get("errors", 0)) for s in stats.values())
        every = ERRORS_EVERY_S if total != self.errors_total else SLOW_EVERY_S * 2
        if self.is_due("errors", every, now):
            self.errors_total = total
            params: dict[str, Any] = {"limit": ERRORS_LIMIT}
            if self.newest_error is not None:
                params["since"] = self.newest_error
            items = self.get(client, "/errors", params)
            if items:
                self.newest_error = items[-1].get("time", self.newest_error)
        if self.is_due("deadletter", SLOW_EVERY_S, now):
            self.get(client, "/deadletter", {"limit": DEADLETTER_LIMIT})
        if self.is_due("log", SLOW_EVERY_S, now):
            self.get(client, "/logs/inboxd.log", {"tail": LOG_TAIL})
        if self.tracing and self.is_due("traces", TRACE_EVERY_S, now):
            self.get(client, "/traces", {"limit": TRACES_LIMIT})
        if self.range is not None and self.is_due("history", SLOW_EVERY_S * 6, now):
            span, step = self.range
            until = time.time()
            self.get(
                client,
                "/history/stats",
                {"since": math.floor(until - span), "until": math.ceil(until), "step": step},
            )


def ingest(
    work: Path, config: Path, src: Path, expected: tuple[int, int], page: str | None,
    trace: bool,
) -> tuple[float, Traffic | None, float]:  # fmt: skip
    """Seconds for a fresh live daemon to ingest `src`, with the page open when `page`.

    The page is opened (loaded and refreshed once) before the file arrives. With a page,
    one more refresh with every panel due is made on the finished daemon, for the sizes
    of a full update.
    """
    lines, out_bytes = expected
    extra = ["--trace"] if trace else []
    with Daemon(work, config, extra) as daemon:
        staged = link_copy(src, work.parent / "staging" / src.name)
        replay = PageReplay(daemon.base, page) if page is not None else None
        if replay is not None:
            replay.start()
            replay.opened.wait(30)
        cpu0 = daemon.cpu_seconds()
        try:
            took = daemon.drain(staged, lines, out_bytes, DRAIN_TIMEOUT_S)
            cpu = daemon.cpu_seconds() - cpu0
        finally:
            if replay is not None:
                replay.stop_event.set()
                replay.join(15)
        if replay is None:
            report_problems(daemon)
            return took, None, cpu
        if replay.failure is not None:
            raise BenchError(f"page replay failed: {replay.failure!r}")
        full = PageReplay(daemon.base, page or "live")
        with httpx.Client(base_url=daemon.base, timeout=10.0) as client:
            full.poll_round(client)
        replay.traffic.per_endpoint = full.traffic.per_endpoint
        replay.traffic.full_round = full.traffic.rounds[0]
        report_problems(daemon)
    return took, replay.traffic, cpu


def report_traffic(traffic: Traffic) -> None:
    print("\n  bytes of the page's requests (response bodies):")
    row("page load (/, css, js)", f"{traffic.page_load:,} B")
    rounds = traffic.rounds[1:]
    if rounds:
        ordered = sorted(rounds)
        row(
            "live update during ingestion",
            f"median {ordered[len(ordered) // 2]:,} B, max {ordered[-1]:,} B "
            f"over {len(rounds)} refreshes",
        )
    row("full update (every panel due)", f"{traffic.full_round:,} B, of which:")
    for endpoint, sizes in sorted(traffic.per_endpoint.items()):
        row(f"  {endpoint}", f"{sum(sizes):,} B")


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--repeat", type=int, default=3, help="runs with and without the page")
    ap.add_argument("--range", choices=sorted(RANGES), default="live", help="chart range")
    ap.add_argument("--trace", action="store_true", help="daemon with --trace (traces panel)")
    args = parse_bench_args(ap, "dashboard")
    work, config = prepare(args.work)
    src, out_bytes, _ = source_log(work, args.lines)
    expected = (args.lines, out_bytes)
    print(f"{input_size(src, args.lines)}; "
          f"range {args.range}, trace {'on' if args.trace else 'off'}")  # fmt: skip
    without: list[float] = []
    with_page: list[float] = []
    cpu_without: list[float] = []
    cpu_with: list[float] = []
    traffic: Traffic | None = None
    with exit_on_failure("bench_dashboard"):
        for _ in range(args.repeat):
            took, _none, cpu = ingest(work / "run", config, src, expected, None, args.trace)
            without.append(took)
            cpu_without.append(cpu)
            took, seen, cpu = ingest(work / "run", config, src, expected, args.range, args.trace)
            with_page.append(took)
            cpu_with.append(cpu)
            traffic = seen or traffic
    a, b = min(without), min(with_page)
    print()
    best_row("no dashboard", args.lines, without)
    best_row("dashboard open, refreshing", args.lines, with_page)
    row("ratio", f"{a / b * 100:.1f} %  (target >= 98 %)")
    cpu_row("daemon CPU, without vs with page", cpu_without, cpu_with)
    runs_row("all runs (s), no dashboard", without)
    runs_row("all runs (s), dashboard", with_page)
    if traffic is not None:
        report_traffic(traffic)


if __name__ == "__main__":
    main()
