"""Immutable records shared by the engine, the store and the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

# A branch of a line in the router: (origin, line, tag, parent). Following the parent
# links from a branch back to `start` gives its path of tags.
Item = tuple[Any, ...]

# Lines kept inside error, trace and dead-letter records are cut to this many characters
# in memory so that rings of a thousand entries stay small whatever the files hold.
RECORD_LINE_CHARS = 4096
# Tracebacks kept with error records keep their innermost frames within this size.
TRACEBACK_CHARS = 2000


# Lines sent to sinks by one routed chunk: per sink, (line numbers, lines) in input order.
SinkLines = dict[str, tuple[list[int], list[str]]]


def path_of(branch: Item | None) -> tuple[str, ...]:
    """The tags from `start` to `branch`, following its parent links.

    Branches emitted by the `start` processor carry no parent: every chain begins there.
    """
    tags: list[str] = []
    while branch is not None:
        tag = branch[2]
        tags.append(tag if type(tag) is str else str(tag))
        branch = branch[3]
    if not tags or tags[-1] != "start":
        tags.append("start")
    tags.reverse()
    return tuple(tags)


def clip(line: Any) -> str:
    text = line if isinstance(line, str) else repr(line)
    return text if len(text) <= RECORD_LINE_CHARS else text[:RECORD_LINE_CHARS] + "…"


# What a record keeps of a line (`keep_lines`): the text as is, masked, or nothing.
LineKeeper = Callable[[str], str | None]


def exception_text(exc: BaseException) -> str:
    """`str(exc)`, or a stand-in when user code's `__str__` fails: records still name it."""
    try:
        return str(exc)
    except Exception:
        return "<exception str() failed>"


def describe(exc: BaseException) -> str:
    """`"<ExceptionType>: <text>"`, the message format of /errors."""
    return f"{type(exc).__name__}: {exception_text(exc)}"


class ErrorRecord(NamedTuple):
    ts: float
    processor: str
    message: str
    file: str | None = None
    line_no: int | None = None
    line: str | None = None
    # 1 for the first call of a processor on the line, 2 for its first retry...
    attempt: int = 1
    # The innermost frames of the exception as text (at most TRACEBACK_CHARS).
    traceback: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "processor": self.processor,
            "message": self.message,
            "time": self.ts,
            "file": self.file,
            "line_no": self.line_no,
            "line": self.line,
            "attempt": self.attempt,
            "traceback": self.traceback,
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
    keep: LineKeeper = clip

    def records(self, start: int = 0, stop: int | None = None) -> list[TraceRecord]:
        lines, first, keep = self.lines, self.first_line_no, self.keep
        return [
            TraceRecord(self.ts, path_of(b), self.file, first + b[0], keep(lines[b[0]]))
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
    reason: str | None = None  # why the file cannot be read now (state "error", "excluded")
    rule: str | None = None  # the include/exclude rule that keeps it unread (state "excluded")

    @property
    def lag(self) -> int:
        """Bytes not read yet: none for a file that is not to be read."""
        return 0 if self.state == "excluded" else max(self.size - self.offset, 0)

    def as_dict(self) -> dict[str, Any]:
        d = self._asdict()
        d["lag"] = self.lag
        return d
