"""In-memory telemetry (SPEC §4): consistent snapshots under load, bounded rings."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

from cli.settings import Settings
from processors.pipeline import Node, Pipeline, load_pipeline, processor_name
from processors.router import Routed, Router
from store.live.telemetry import Telemetry
from store.live.tracering import TraceRing
from store.records import TraceBatch
from watcher.engine import Engine

DEADLINE_S = 120.0
LEVELS = ("ERROR", "WARN", "INFO", "DEBUG")


def publish(telemetry: Telemetry, routed: Routed) -> None:
    """Add a routed batch the way watcher/engine.py `_route` does."""
    telemetry.add_stats(routed.stats)
    telemetry.add_errors(routed.errors)
    if routed.traces:
        telemetry.add_traces(routed.traces)
    telemetry.note_deadletters(routed.deadletters)


def reject(line: str) -> Iterator[tuple[str, str]]:
    raise ValueError(f"rejected {line[:20]}")


def pipeline_with_failures() -> Pipeline:
    """The default pipeline with `error` lines failing twice (retries = 1)."""
    nodes = dict(load_pipeline(None).nodes)
    nodes["error"] = Node("error", processor_name(reject), reject, 1, "tests:reject")
    return Pipeline(nodes)


def write_inbox(inbox: Path, files: int, lines: int) -> None:
    for f in range(files):
        folder = inbox / f"d{f % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / f"f{f}.log").open("w") as fh:
            for i in range(lines):
                fh.write(f"2026-11-27T12:00:00Z {LEVELS[i % 4]} file {f} line {i}\n")


class SnapshotReader:
    """Reads snapshots in a loop on its own thread until stopped; keeps what it saw."""

    def __init__(self, telemetry: Telemetry, *, trace_size: int, errors_size: int) -> None:
        self.telemetry = telemetry
        self.trace_size = trace_size
        self.errors_size = errors_size
        self.failures: list[BaseException] = []
        self.snapshots = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="snapshot-reader")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(DEADLINE_S)
        assert not self._thread.is_alive()

    def _run(self) -> None:
        previous: dict[str, dict[str, float]] = {}
        try:
            while not self._stop.is_set():
                stats = self.telemetry.stats()
                for name, s in stats.items():
                    before = previous.get(
                        name, {"count": 0, "time": 0.0, "errors": 0, "retries": 0}
                    )
                    for key in ("count", "time", "errors", "retries"):
                        assert s[key] >= before[key], (name, key, before, s)
                previous = stats
                paths = self.telemetry.trace_paths()
                assert len(paths) <= self.trace_size
                assert all(p and p[0] == "start" for p in paths)
                errors = self.telemetry.error_records()
                assert len(errors) <= self.errors_size
                assert all(e.as_dict()["message"].startswith("ValueError: ") for e in errors)
                self.telemetry.counters()
                self.snapshots += 1
        except BaseException as exc:
            self.failures.append(exc)


def run_engine_with_reader(
    tmp_path: Path, pipeline: Pipeline, *, files: int, per_file: int
) -> tuple[Telemetry, SnapshotReader]:
    write_inbox(tmp_path / "inbox", files, per_file)
    settings = Settings(
        inbox=tmp_path / "inbox",
        outbox=tmp_path / "outbox",
        state_dir=tmp_path / "var",
        trace=True,
        trace_size=50,
        errors_size=20,
    )
    telemetry = Telemetry(trace_enabled=True, trace_size=50, errors_size=20)
    engine = Engine(settings=settings, router=Router(pipeline, trace=True), telemetry=telemetry)
    reader = SnapshotReader(telemetry, trace_size=50, errors_size=20)
    reader.start()
    try:
        engine.run_once()
    finally:
        reader.stop()
    assert reader.failures == []
    assert reader.snapshots > 0
    return telemetry, reader


def test_snapshots_stay_consistent_while_the_engine_runs_flat_out(tmp_path: Path) -> None:
    files, per_file = 12, 2000
    telemetry, _ = run_engine_with_reader(
        tmp_path, load_pipeline(None), files=files, per_file=per_file
    )
    total = files * per_file
    quarter = total // 4
    stats = telemetry.stats()
    assert {n: (s["count"], s["errors"], s["retries"]) for n, s in stats.items()} == {
        "tag_router": (total, 0, 0),
        "filter_errors": (quarter, 0, 0),
        "keep": (2 * quarter, 0, 0),
        "drop": (quarter, 0, 0),
        "redact_secrets": (3 * quarter, 0, 0),
    }
    assert len(telemetry.trace_paths()) == 50
    assert telemetry.counters()["lines_read"] == total
    outbox = sum(len(p.read_text().splitlines()) for p in (tmp_path / "outbox").rglob("*.log"))
    assert outbox == 3 * quarter


def test_engine_keeps_running_through_processor_errors(tmp_path: Path) -> None:
    files, per_file = 4, 500
    telemetry, _ = run_engine_with_reader(
        tmp_path, pipeline_with_failures(), files=files, per_file=per_file
    )
    quarter = files * per_file // 4
    stats = telemetry.stats()
    assert (stats["reject"]["count"], stats["reject"]["errors"]) == (quarter, 2 * quarter)
    assert stats["reject"]["retries"] == quarter
    assert len(telemetry.error_records()) == 20
    assert telemetry.counters()["deadletters"] == quarter


def test_router_and_telemetry_on_two_threads(tmp_path: Path) -> None:
    telemetry = Telemetry(trace_enabled=True, trace_size=30, errors_size=10)
    telemetry.register(pipeline_with_failures().names)
    router = Router(pipeline_with_failures(), trace=True)
    batch = [f"x {LEVELS[i % 4]} {i}" for i in range(400)]
    reader = SnapshotReader(telemetry, trace_size=30, errors_size=10)
    reader.start()
    deadline = time.monotonic() + DEADLINE_S
    try:
        for _ in range(100):
            publish(telemetry, router.route(batch, "f.log", 1))
            assert time.monotonic() < deadline
    finally:
        reader.stop()
    assert reader.failures == []
    assert telemetry.stats()["tag_router"]["count"] == 40_000


def test_trace_ring_keeps_the_newest_trace_size_paths() -> None:
    telemetry = Telemetry(trace_enabled=True, trace_size=5)
    router = Router(load_pipeline(None), trace=True)
    publish(telemetry, router.route([f"INFO {i}" for i in range(20)], "a.log", 1))
    publish(telemetry, router.route(["DEBUG last"], "a.log", 21))
    paths = telemetry.trace_paths()
    assert len(paths) == 5
    assert paths[-1] == ["start", "debug"]
    assert paths[:-1] == [["start", "info", "redact", "end"]] * 4
    assert telemetry.trace_paths(limit=2) == paths[-2:]
    assert telemetry.trace_paths(limit=0) == []
    assert [r.as_dict()["line_no"] for r in telemetry.trace_records()] == [17, 18, 19, 20, 21]


def test_trace_ring_spans_batches_and_drops_whole_old_slices() -> None:
    ring = TraceRing(10)
    router = Router(load_pipeline(None), trace=True)
    batches = [router.route([f"INFO {b}-{i}" for i in range(4)], "a.log", 1).traces
               for b in range(6)]  # fmt: skip
    for batch in batches:
        assert batch is not None
        ring.add_batch(batch)
    lines = [r.line for r in ring.records()]
    assert lines == [f"INFO {b}-{i}" for b in (3, 4, 5) for i in range(4)][-10:]
    assert ring.paths(limit=3) == [("start", "info", "redact", "end")] * 3
    assert [r.line for r in ring.records(limit=5)] == lines[-5:]
    assert ring.records(limit=0) == [] and ring.records(limit=-1) == []
    # Only the slices that still hold a path of the window are kept: 3 batches of 4.
    assert len(ring._slices) == 3


def test_trace_ring_builds_records_only_when_read() -> None:
    calls: list[str] = []

    def keep(text: str) -> str:
        calls.append(text)
        return text.upper()

    telemetry = Telemetry(trace_enabled=True, trace_size=2)
    for i in range(100):
        telemetry.add_traces(TraceBatch(0.0, "a.log", 1, [f"l{i}"], [(0, f"l{i}", "end", None)],
                                        keep))  # fmt: skip
    pending = len(calls)
    assert [r.line for r in telemetry.trace_records()] == ["L98", "L99"]
    assert len(calls) == pending + 2


def test_error_ring_keeps_the_newest_errors_size_errors() -> None:
    telemetry = Telemetry(errors_size=3)
    router = Router(pipeline_with_failures())
    publish(telemetry, router.route([f"ERROR {i}" for i in range(4)], "e.log", 1))
    records = [e.as_dict() for e in telemetry.error_records()]
    assert len(records) == 3
    assert records[-1]["line_no"] == 4
    assert records[-1]["processor"] == "reject"
    assert records[-1]["message"] == "ValueError: rejected ERROR 3"
    assert records[-1]["file"] == "e.log"
    assert records[-1]["line"] == "ERROR 3"
    assert telemetry.stats()["reject"]["errors"] == 8


def test_no_traces_with_tracing_off(tmp_path: Path) -> None:
    telemetry = Telemetry(trace_enabled=False)
    router = Router(load_pipeline(None), trace=False)
    routed = router.route(["INFO a", "DEBUG b"], "a.log", 1)
    assert not routed.traces
    publish(telemetry, routed)
    assert telemetry.trace_paths() == []

    write_inbox(tmp_path / "inbox", 2, 10)
    settings = Settings(
        inbox=tmp_path / "inbox", outbox=tmp_path / "outbox", state_dir=tmp_path / "var"
    )
    engine_telemetry = Telemetry()
    Engine(
        settings=settings, router=Router(load_pipeline(None)), telemetry=engine_telemetry
    ).run_once()
    assert engine_telemetry.stats()["tag_router"]["count"] == 20
    assert engine_telemetry.trace_paths() == []
    assert engine_telemetry.take_flush().traces == []


def test_stats_lists_every_processor_before_any_line() -> None:
    telemetry = Telemetry()
    telemetry.register(load_pipeline(None).names)
    zero = {"count": 0, "time": 0.0, "errors": 0, "retries": 0}
    assert telemetry.stats() == {
        name: zero for name in ("tag_router", "filter_errors", "keep", "drop", "redact_secrets")
    }
