"""One batch on its way through the router, and the records its failures leave.

Every stored copy of a line (error records, dead letters, traces) and every message or
traceback that may quote it goes through one `Keeper`, following `keep_lines`: masked by
the rules of `redact_secrets` ("redacted", the default), as is ("full"), or not kept
("none"). It runs where a record is made, never on the path of a line that succeeds.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from types import CodeType, TracebackType
from typing import Any

from processors.pipeline import Node
from store.records import (
    TRACEBACK_CHARS,
    DeadLetter,
    ErrorRecord,
    Item,
    clip,
    describe,
    exception_text,
)

KEEP_LINES = ("redacted", "full", "none")
# With keep_lines = "none", a line this long or longer is cut out of the messages that
# quote it; a shorter one could not be told from the message's own words.
QUOTED_LINE_MIN_CHARS = 8
ELIDED = "…"
_mask_secrets: Callable[[str], str] | None = None
# Formatted frames by failure site (see format_frames); emptied when it holds this many.
FRAMES_CACHE_MAX = 512
_frames_text: dict[tuple[tuple[CodeType, int | None, int], ...], str] = {}


class Keeper:
    """What records keep of lines and of the texts that may quote them."""

    __slots__ = ("mode",)

    def __init__(self, mode: str = "redacted") -> None:
        if mode not in KEEP_LINES:
            raise ValueError(f"keep_lines must be one of {KEEP_LINES}, got {mode!r}")
        self.mode = mode

    @staticmethod
    def mask(text: str) -> str:
        """The masking of `redact_secrets`, imported on the first record that needs it.

        Its regular expressions cost milliseconds to compile, which a daemon whose
        pipeline does not use them (and that never records a line) need not pay.
        """
        global _mask_secrets
        if _mask_secrets is None:
            from processors.secrets import mask_secrets

            _mask_secrets = mask_secrets
        return _mask_secrets(text)

    def line(self, text: str, *, whole: bool = False) -> str | None:
        """The copy of a line a record keeps (None with "none").

        Copies are cut to RECORD_LINE_CHARS unless `whole` (dead letters keep all of it).
        """
        if self.mode == "none":
            return None
        if self.mode == "redacted":
            text = self.mask(text)
        return text if whole else clip(text)

    def text(self, message: str, line: Any = None) -> str:
        """A message or traceback, with the line's secrets (or the line) taken out."""
        if self.mode == "full":
            return message
        if (
            self.mode == "none"
            and isinstance(line, str)
            and len(line) >= QUOTED_LINE_MIN_CHARS
            and line in message
        ):
            message = message.replace(line, "<line>")
        return self.mask(message)


def format_frames(tb: TracebackType) -> str:
    """The traceback header and the frames of `tb`, cached by the sites of the frames.

    Formatting reads every frame's source line and, on Python 3.11, compiles it to place
    the carets: some 200 µs a failure, paid on every line when a processor fails on
    every line. The text depends only on each frame's code, line and instruction, so a
    processor failing the same way again costs a dictionary lookup.
    """
    sites: list[tuple[CodeType, int | None, int]] = []
    frame: TracebackType | None = tb
    while frame is not None:
        sites.append((frame.tb_frame.f_code, frame.tb_lineno, frame.tb_lasti))
        frame = frame.tb_next
    key = tuple(sites)
    text = _frames_text.get(key)
    if text is None:
        text = "Traceback (most recent call last):\n" + "".join(
            traceback.format_list(traceback.extract_tb(tb))
        )
        if len(_frames_text) >= FRAMES_CACHE_MAX:
            _frames_text.clear()
        _frames_text[key] = text
    return text


def exception_line(exc: BaseException) -> str:
    """The last line of a traceback, as `traceback.format_exception_only` writes it.

    The standard function first builds the whole chain of `__context__` exceptions (a
    retry's failure carries the one before it), only to print the last line.
    """
    cls = type(exc)
    try:
        if not issubclass(cls, SyntaxError) and getattr(exc, "__notes__", None) is None:
            name = cls.__qualname__
            module = cls.__module__
            if module not in ("__main__", "builtins"):
                name = f"{module if isinstance(module, str) else '<unknown>'}.{name}"
            value = exception_text(exc)
            return f"{name}: {value}\n" if value else f"{name}\n"
    except Exception:
        pass
    return "".join(traceback.format_exception_only(cls, exc))


def format_traceback(exc: BaseException, own_files: frozenset[str]) -> str:
    """The frames of `exc` below inboxd's own (the user's), innermost last, bounded.

    When the text passes TRACEBACK_CHARS its head is dropped: the innermost frames and
    the exception line are what tell where it failed.
    """
    tb: TracebackType | None = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename in own_files:
        tb = tb.tb_next
    frames = format_frames(tb) if tb is not None else ""
    text = frames + exception_line(exc)
    if len(text) > TRACEBACK_CHARS:
        text = ELIDED + text[len(text) - TRACEBACK_CHARS + len(ELIDED) :]
    return text


@dataclass(slots=True)
class Batch:
    """The lines of one route() call and the records their failures make.

    `errors` and `deadletters` are the lists the records are appended to (the router
    hands in those of its `Routed`).
    """

    lines: list[str]
    file: str | None
    first_line_no: int
    ts: float
    errors: list[ErrorRecord]
    deadletters: list[DeadLetter]
    trace: bool
    keeper: Keeper
    own_files: frozenset[str]
    terminals: list[Item] = field(default_factory=list)

    def line_no(self, origin: int) -> int:
        return self.first_line_no + origin

    def fail(
        self, node: Node, origin: int, exc: BaseException, line: Any, attempt: int, *, tb: bool
    ) -> None:
        """Record one failed attempt of a processor on a line (or one bad branch of it).

        `tb` asks for the traceback: the processor raised, rather than produced bad output.
        """
        keep = self.keeper
        text = line if isinstance(line, str) else repr(line)
        trace = keep.text(format_traceback(exc, self.own_files), text) if tb else None
        self.errors.append(
            ErrorRecord(
                self.ts,
                node.name,
                keep.text(describe(exc), text),
                self.file,
                self.line_no(origin),
                keep.line(text),
                attempt,
                trace,
            )
        )

    def dead(self, node: Node, origin: int, exc: BaseException, line: Any, tag: str) -> None:
        """Send a branch to the dead letters."""
        keep = self.keeper
        text = line if isinstance(line, str) else repr(line)
        kept = keep.line(text, whole=True)
        self.deadletters.append(
            DeadLetter(
                self.ts,
                self.file,
                self.line_no(origin),
                tag,
                node.name,
                keep.text(describe(exc), text),
                "" if kept is None else kept,
            )
        )

    def terminate(self, branch: Item) -> None:
        """A traced branch ended here (dropped, failed or stopped)."""
        self.terminals.append(branch)
