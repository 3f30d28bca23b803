"""Immutable records shared by the engine, the store and the API."""

from __future__ import annotations

from typing import Any, NamedTuple

# A trace path is built as a chain of (tag, parent) links so that a hop costs one small
# tuple instead of a list copy; it becomes a list only when someone reads it.
PathNode = tuple[str, Any]

START_NODE: PathNode = ("start", None)

# Lines kept inside error, trace and dead-letter records are cut to this many characters
# in memory so that rings of a thousand entries stay small whatever the files hold.
RECORD_LINE_CHARS = 4096


def path_of(node: PathNode | None) -> list[str]:
    """The list of tags from `start` to `node`."""
    tags: list[str] = []
    while node is not None:
        tags.append(node[0])
        node = node[1]
    tags.reverse()
    return tags


def clip(line: Any) -> str:
    text = line if isinstance(line, str) else repr(line)
    return text if len(text) <= RECORD_LINE_CHARS else text[:RECORD_LINE_CHARS] + "…"


def describe(exc: BaseException) -> str:
    """`"<ExceptionType>: <text>"`, the message format of /errors."""
    return f"{type(exc).__name__}: {exc}"


class ErrorRecord(NamedTuple):
    ts: float
    processor: str
    message: str
    file: str | None = None
    line_no: int | None = None
    line: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "processor": self.processor,
            "message": self.message,
            "time": self.ts,
            "file": self.file,
            "line_no": self.line_no,
            "line": self.line,
        }


class TraceRecord(NamedTuple):
    ts: float
    node: PathNode
    file: str | None
    line_no: int | None
    line: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.ts,
            "path": path_of(self.node),
            "file": self.file,
            "line_no": self.line_no,
            "line": self.line,
        }


class TraceBatch(NamedTuple):
    """The terminated branches of one routed batch, kept cheap until someone reads them.

    `terminals` holds (index of the input line, path node) pairs; records are built
    only for the few that a ring or the flusher keeps.
    """

    ts: float
    file: str | None
    first_line_no: int
    lines: list[str]
    terminals: list[tuple[int, PathNode]]

    def records(self, start: int = 0, stop: int | None = None) -> list[TraceRecord]:
        lines, first = self.lines, self.first_line_no
        return [
            TraceRecord(self.ts, node, self.file, first + o, clip(lines[o]))
            for o, node in self.terminals[start:stop]
        ]


class DeadLetter(NamedTuple):
    ts: float
    file: str | None
    line_no: int | None
    tag: str
    processor: str
    message: str
    line: str

    def as_row(self) -> dict[str, Any]:
        return self._asdict()


class FileStatus(NamedTuple):
    """One tracked input file as /files shows it."""

    path: str
    size: int
    offset: int
    state: str
    outbox: str
    lines: int
    updated: float

    @property
    def lag(self) -> int:
        return max(self.size - self.offset, 0)

    def as_dict(self) -> dict[str, Any]:
        d = self._asdict()
        d["lag"] = self.lag
        return d
