"""A FileReader over tmp_path folders with a passthrough route, for reader-level tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cli.settings import Settings
from sinks.outbox import recover
from store.checkpoints import CheckpointStore
from store.live.sinkboard import SinkBoard
from store.live.telemetry import Telemetry
from watcher.reading.handoff import Handoff, InlineHandoff
from watcher.reading.reader import FileReader
from watcher.reading.routing import Routing
from watcher.workers.child import Result
from watcher.workers.pool import WorkerPool, worker_spec
from watcher.workers.pooled import PooledHandoff


class Reader:
    """A FileReader with a passthrough route, over tmp_path folders; with `pool`, the
    workers route (each result seen by `on_result`)."""

    def __init__(
        self,
        root: Path,
        *,
        pool: WorkerPool | None = None,
        on_result: Callable[[Result], None] = lambda result: None,
        **options: Any,
    ) -> None:
        self.pool, self.on_result = pool, on_result
        self.settings = Settings(
            inbox=root / "inbox", outbox=root / "outbox", state_dir=root / "var", **options
        )
        self.settings.inbox.mkdir(parents=True, exist_ok=True)
        self.routed: list[tuple[str, int, list[str]]] = []
        self.reader = self.open()

    def open(self) -> FileReader:
        store = CheckpointStore(self.settings.db_path)
        self.telemetry = Telemetry(trace_enabled=False, trace_size=10, errors_size=10)
        self.telemetry.sinks = SinkBoard(self.settings.sinks)
        files, outbox = store.load()
        recover(self.settings.outbox, outbox.sizes, outbox.ids)  # as the engine does
        reader = FileReader(
            settings=self.settings,
            store=store,
            outbox=outbox,
            files=files,
            telemetry=self.telemetry,
            handoff=self.handoff(),
        )
        reader.open_sinks()
        return reader

    def handoff(self) -> Handoff[Any]:
        """The workers' hand-off with a pool, else routing in this thread."""
        if self.pool is None:
            return InlineHandoff(self.route, None)
        return PooledHandoff(self.pool, self.telemetry, self.on_result)

    def route(self, lines: list[str], file: str, first: int) -> Routing:
        self.routed.append((file, first, list(lines)))
        return list(lines), [], {}

    def pass_(self, *, final: bool = False) -> None:
        found = self.reader.scan()
        self.reader.process(found.values(), final=final)
        self.reader.commit()

    def outbox(self, rel: str) -> list[str]:
        path = self.settings.outbox / rel
        return path.read_text().split("\n")[:-1] if path.exists() else []

    def reopen(self) -> None:
        self.reader.close()
        self.reader = self.open()


@contextmanager
def passthrough_pool(workers: int) -> Iterator[WorkerPool]:
    """A started WorkerPool of `workers` processes whose pipeline keeps every line."""
    keep = {"start": "processors.builtin:keep", "redact": "processors.builtin:redact_secrets"}
    pool = WorkerPool(worker_spec(Settings(pipeline=keep)), workers, poison_after=3,
                      stall_timeout=30.0)  # fmt: skip
    pool.start()
    try:
        yield pool
    finally:
        pool.stop()
        pool.join(10)


def append_lines(path: Path, batch: list[str]) -> None:
    """Append `batch` to `path`, a newline after each line, as a writer would."""
    with open(path, "a") as fh:
        fh.write("".join(x + "\n" for x in batch))


def all_outbox_lines(r: Reader) -> list[str]:
    """Every line of every outbox file (inboxd's hidden files aside), sorted."""
    found: list[str] = []
    for path in r.settings.outbox.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            found += path.read_text().splitlines()
    return sorted(found)
