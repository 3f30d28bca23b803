"""Immutable records shared by the engine, the store and the API."""

from __future__ import annotations

from typing import Any, NamedTuple

# A branch of a line in the router: (origin, line, tag, parent). Following the parent
# links from a branch back to `start` gives its path of tags.
Item = tuple[Any, ...]

# Lines kept inside error, trace and dead-letter records are cut to this many characters
# in memory so that rings of a thousand entries stay small whatever the files hold.
RECORD_LINE_CHARS = 4096


def path_of(branch: Item | None) -> tuple[str, ...]:
    """The tags from `start` to `branch`, following its parent links.

    Branches emitted by the `start` processor carry no parent: every chain begins there.
    """
    tags: list[str] = []
    while branch is not None:
        tags.append(branch[2])
        branch = branch[3]
    if not tags or tags[-1] != "start":
        tags.append("start")
    tags.reverse()
    return tuple(tags)


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
    path: tuple[str, ...]
    file: str | None
    line_no: int | None
    line: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.ts,
            "path": list(self.path),
            "file": self.file,
            "line_no": self.line_no,
            "line": self.line,
        }


class TraceBatch(NamedTuple):
    """The terminated branches of one routed batch, kept cheap until someone reads them.

    `terminals` holds the last branch of every path, in input order; records are built
    only for the few that a ring or the flusher keeps.
    """

    ts: float
    file: str | None
    first_line_no: int
    lines: list[str]
    terminals: list[Item]

    def records(self, start: int = 0, stop: int | None = None) -> list[TraceRecord]:
        lines, first = self.lines, self.first_line_no
        return [
            TraceRecord(self.ts, path_of(b), self.file, first + b[0], clip(lines[b[0]]))
            for b in self.terminals[start:stop]
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
    reason: str | None = None  # why the file cannot be read now (state "error")

    @property
    def lag(self) -> int:
        return max(self.size - self.offset, 0)

    def as_dict(self) -> dict[str, Any]:
        d = self._asdict()
        d["lag"] = self.lag
        return d
