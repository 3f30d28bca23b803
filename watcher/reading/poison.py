"""Poison lines: a line on which the daemon dies (os._exit, a crash in C code, kill -9 by
the watchdog after a hang) is found and quarantined, so the inbox never stays stuck.

Before a chunk is routed, its file and line range are written to `<state>/inflight` (one
pwrite of a fixed record, no fsync: the page cache outlives the process), and the router
writes the name of each processor as it starts a wave. At start-up that record tells
whether the daemon died while lines were in flight: if the checkpoint of that file is
short of the range, the range is a suspect. A suspect range is routed one line at a
time, each line marked before it runs, which narrows the next death to one line; after
`poison_after` deaths on the same line it is dead-lettered (`Poison: ...`) and reading
goes on. Every other line is delivered exactly once, as always.

PoisonPolicy is the one rule for both ways of routing: here the deaths are the daemon's
(counted across restarts through the inflight record and the suspect in the state
database), with worker processes they are a worker's (counted in memory by the pool).
"""

from __future__ import annotations

import json
import logging
import os
import struct
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from store.checkpoints import CheckpointStore, TrackedFile
from store.records import DeadLetter, SinkLines
from watcher.reading.routing import RouteFn, Routing

log = logging.getLogger("inboxd.engine")

INFLIGHT_NAME = "inflight"
SUSPECT_KEY = "suspect"
_HEAD = struct.Struct("<qqqq")
_NAME_BYTES = 96
# Who died on a line, as the dead letter names it.
DAEMON = "the daemon"
WORKER = "a worker"


@dataclass(frozen=True, slots=True)
class Suspect:
    """Lines the daemon died on: file identity, line range, deaths, last processor."""

    dev: int
    ino: int
    first: int
    last: int
    deaths: int
    processor: str

    def covers(self, other: Suspect) -> bool:
        return (self.dev, self.ino) == (other.dev, other.ino) and (
            self.first <= other.first and other.last <= self.last
        )


def poison_message(who: str, deaths: int) -> str:
    """The message of a poison line's dead letter: one wording for both ways of routing."""
    return f"Poison: {who} stopped {deaths} times on this line"


class PoisonPolicy:
    """Counts the deaths on each line, says when a line is poison, builds its dead letter.

    Processing thread only. `who` is what dies when the line is routed (DAEMON, WORKER).
    """

    def __init__(self, poison_after: int, who: str) -> None:
        self.poison_after = poison_after
        self.who = who
        # What a dead letter keeps of the line (keep_lines: masked, whole or nothing).
        self.keep: Callable[[str], str | None] = lambda text: text
        self._deaths: dict[tuple[str, int], int] = {}

    def died(self, file: str, line_no: int) -> int:
        """Count one more death on a line; returns how many so far."""
        deaths = self._deaths.get((file, line_no), 0) + 1
        self._deaths[file, line_no] = deaths
        return deaths

    def deaths(self, file: str, line_no: int) -> int:
        return self._deaths.get((file, line_no), 0)

    def is_poison(self, deaths: int) -> bool:
        return deaths >= self.poison_after

    def quarantine(
        self, file: str, line_no: int, line: str, processor: str, deaths: int
    ) -> DeadLetter:
        """The dead letter of a poison line (logged once); its count is forgotten."""
        self._deaths.pop((file, line_no), None)
        message = poison_message(self.who, deaths)
        log.error(message, extra={"event": "poison", "file": file, "line_no": line_no,
                                  "processor": processor})  # fmt: skip
        kept = self.keep(line)
        return DeadLetter(time.time(), file, line_no, "start", processor or "?", message,
                          kept or "")  # fmt: skip


class InFlightLog:
    """The record of what is being routed now; processing thread only."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / INFLIGHT_NAME
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def read(self) -> Suspect | None:
        data = os.pread(self._fd, _HEAD.size + _NAME_BYTES, 0)
        if len(data) < _HEAD.size:
            return None
        dev, ino, first, last = _HEAD.unpack_from(data)
        if first <= 0:
            return None
        name = data[_HEAD.size :].split(b"\0", 1)[0].decode("utf-8", "replace")
        return Suspect(dev, ino, first, last, 0, name)

    def mark(self, key: tuple[int, int], first: int, last: int) -> None:
        os.pwrite(self._fd, _HEAD.pack(key[0], key[1], first, last) + b"\0", 0)

    def mark_processor(self, name: str) -> None:
        os.pwrite(self._fd, name.encode("utf-8", "replace")[: _NAME_BYTES - 1] + b"\0", _HEAD.size)

    def clear(self) -> None:
        os.pwrite(self._fd, b"\0" * (_HEAD.size + _NAME_BYTES), 0)

    def close(self) -> None:
        os.close(self._fd)


class PoisonGuard:
    """Marks what is in flight and routes suspect lines one by one."""

    def __init__(self, inflight: InFlightLog, suspect: Suspect | None, poison_after: int) -> None:
        self.inflight = inflight
        self.suspect = suspect
        # The daemon's deaths are the suspect's, read back at start-up.
        self.policy = PoisonPolicy(poison_after, DAEMON)

    @classmethod
    def open(
        cls,
        state_dir: Path,
        store: CheckpointStore,
        files: dict[tuple[int, int], TrackedFile],
        poison_after: int,
    ) -> PoisonGuard:
        """Read what was in flight when the daemon last stopped, and judge it."""
        inflight = InFlightLog(state_dir)
        died = inflight.read()
        suspect = _load(store)
        if died is not None:
            tracked = files.get((died.dev, died.ino))
            if tracked is not None and tracked.lines >= died.last:
                suspect = None  # what was in flight was committed after all
            else:
                deaths = suspect.deaths + 1 if suspect is not None and suspect.covers(died) else 1
                suspect = Suspect(died.dev, died.ino, died.first, died.last, deaths,
                                  died.processor)  # fmt: skip
                log.warning(
                    "the daemon stopped %d time(s) while lines %d-%d of a file were in flight",
                    deaths, died.first, died.last,
                    extra={"event": "poison_suspect", "line_no": died.first, "deaths": deaths,
                           "processor": died.processor},
                )  # fmt: skip
            _save(store, suspect)
        inflight.clear()
        return cls(inflight, suspect, poison_after)

    def route(
        self, route: RouteFn, key: tuple[int, int], lines: list[str], file: str, first: int
    ) -> Routing:
        last = first + len(lines) - 1
        s = self.suspect
        if s is None or (s.dev, s.ino) != key or s.last < first or last < s.first:
            self.inflight.mark(key, first, last)
            return route(lines, file, first)
        return self._one_by_one(route, key, lines, file, first)

    def _one_by_one(
        self, route: RouteFn, key: tuple[int, int], lines: list[str], file: str, first: int
    ) -> Routing:
        s = self.suspect
        assert s is not None
        out: list[str] = []
        dead: list[DeadLetter] = []
        sunk: SinkLines = {}
        for i, line in enumerate(lines):
            line_no = first + i
            if s.first == s.last == line_no and self.policy.is_poison(s.deaths):
                dead.append(self.policy.quarantine(file, line_no, line, s.processor, s.deaths))
                continue
            self.inflight.mark(key, line_no, line_no)
            o, d, k = route([line], file, line_no)
            out += o
            dead += d
            for sink, (numbers, texts) in k.items():
                have = sunk.setdefault(sink, ([], []))
                have[0].extend(numbers)
                have[1].extend(texts)
        return out, dead, sunk

    def close(self) -> None:
        self.inflight.clear()
        self.inflight.close()


def _load(store: CheckpointStore) -> Suspect | None:
    raw = store.get_meta(SUSPECT_KEY)
    if not raw:
        return None
    try:
        return Suspect(**json.loads(raw))
    except (ValueError, TypeError):
        return None


def _save(store: CheckpointStore, suspect: Suspect | None) -> None:
    store.set_meta(SUSPECT_KEY, json.dumps(asdict(suspect)) if suspect is not None else "")
