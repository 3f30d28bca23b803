"""The daemon's own log: JSON lines in `<state-dir>/logs/inboxd.log`, gzip-rotated by size.

Every record is one JSON object on one line (`ts`, `time`, `level`, `logger`, `msg` and
any `extra=` fields), so that `jq`, the dashboard and log shippers read it without a
parser of their own. Under systemd (env `JOURNAL_STREAM`) a plain copy also goes to
stderr for the journal; when stderr is a terminal, warnings and errors go there as text.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import logging.handlers
import os
import shutil
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

LOGGER_NAME = "inboxd"
LOG_FILE_NAME = "inboxd.log"
GZIP_SUFFIX = ".gz"
TMP_SUFFIX = ".tmp"
# Rotation runs under the handler lock and so holds back every logging thread while it
# compresses; a middling level keeps that pause short for a 10 MiB file.
GZIP_LEVEL = 6
_COPY_CHUNK_BYTES = 1024 * 1024

_CORE_KEYS = ("ts", "time", "level", "logger", "msg")
# Attributes every LogRecord has; whatever else a record carries came from `extra=`.
_RECORD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)
# journald reads a `<N>` prefix on stderr lines as the syslog priority.
_SYSLOG_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller attached with `extra=` (file, processor, line_no, event...)."""
    return {k: v for k, v in record.__dict__.items() if k not in _RECORD_ATTRS}


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record, never spanning lines (json escapes newlines)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": record.created,
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            doc[f"extra_{key}" if key in _CORE_KEYS else key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    """`LEVEL logger: message key=value...` for humans reading the journal.

    The journal stamps each line itself, so no time is printed.
    """

    def __init__(self, *, syslog_prefix: bool) -> None:
        super().__init__()
        self.syslog_prefix = syslog_prefix

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname} {record.name}: {record.getMessage()}"
        extras = extra_fields(record)
        if extras:
            text += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        if self.syslog_prefix:
            priority = _SYSLOG_PRIORITY.get(record.levelno, 6)
            text = "\n".join(f"<{priority}>{part}" for part in text.split("\n"))
        return text


class TerminalFormatter(PlainFormatter):
    """`12:00:01 WARNING processor error processor=x ...` for a person at a terminal."""

    def __init__(self) -> None:
        super().__init__(syslog_prefix=False)

    def format(self, record: logging.LogRecord) -> str:
        clock = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        return f"{clock} {super().format(record)}"


def gzip_rotator(source: str, dest: str) -> None:
    """Compress `source` into `dest` atomically, then remove `source`.

    The archive is written as `dest.tmp`, synced and renamed, so a crash mid-rotation
    leaves at worst a stray `.tmp` (cleaned at the next start) and the source intact,
    never a truncated file under a final name. A crash between the rename and the
    unlink repeats the archived lines in the live file: doubled, never lost.
    """
    tmp = dest + TMP_SUFFIX
    try:
        with open(source, "rb") as src, open(tmp, "wb") as raw:
            with gzip.GzipFile(
                filename=os.path.basename(source),
                mode="wb",
                fileobj=raw,
                compresslevel=GZIP_LEVEL,
            ) as gz:
                shutil.copyfileobj(src, gz, _COPY_CHUNK_BYTES)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.unlink(source)


class GzipRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """RotatingFileHandler whose backups are `inboxd.log.1.gz` (newest) ... `.N.gz`.

    Thread-safety: logging.Handler.handle() holds the handler lock around emit(), which
    is where the size check and the rollover run, so writers from several threads never
    interleave a line or race a rotation.
    """

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        super().__init__(
            path,
            mode="a",
            maxBytes=max(max_bytes, 0),
            backupCount=max(backups, 0),
            encoding="utf-8",
            errors="backslashreplace",
        )
        self.namer = self._gz_name
        self.rotator = gzip_rotator
        # After a failed rotation the file may grow by this much before the next try.
        self._retry_at_size = 0
        self._size = os.fstat(self.stream.fileno()).st_size if self.stream else 0

    @staticmethod
    def _gz_name(default_name: str) -> str:
        return default_name + GZIP_SUFFIX

    def emit(self, record: logging.LogRecord) -> None:
        """Write one record, rotating first when it would overflow the file.

        The size is counted here rather than asked of the file: the stock check formats
        every record twice and stats the file, which made logging the costliest step of
        taking in a small file.

        A rotation that fails (disk full, permissions) is reported on stderr and the
        record still goes to the current file: losing log lines because the archive
        could not be written would be the worse failure.
        """
        try:
            msg = self.format(record) + self.terminator
            size = len(msg) if msg.isascii() else len(msg.encode("utf-8", "backslashreplace"))
            if self._would_overflow(size):
                try:
                    self.doRollover()
                except Exception as exc:
                    self._rotation_failed(exc)
            if self.stream is None:
                self.stream = self._open()
                self._size = os.fstat(self.stream.fileno()).st_size
            self.stream.write(msg)
            self.flush()
            self._size += size
        except Exception:
            self.handleError(record)

    def _open(self) -> Any:
        stream = super()._open()
        self._size = os.fstat(stream.fileno()).st_size
        return stream

    def _rotation_failed(self, exc: Exception) -> None:
        if self.stream is None:
            self.stream = self._open()
        self._retry_at_size = self._size + self.maxBytes
        with contextlib.suppress(Exception):
            sys.stderr.write(
                f"inboxd: rotating {self.baseFilename} failed ({exc}); "
                "still writing to it and trying again later\n"
            )

    def _would_overflow(self, size: int) -> bool:
        # An empty file is never rotated, even for a record larger than max_bytes: that
        # would only produce empty archives and push real ones out.
        if self.maxBytes <= 0 or self._size == 0 or self._size < self._retry_at_size:
            return False
        return self._size + size > self.maxBytes

    def doRollover(self) -> None:
        self._retry_at_size = 0
        if self.backupCount > 0:
            super().doRollover()
            return
        # No backups wanted: start the file again instead of growing it forever.
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.baseFilename)
        self.stream = self._open()


def remove_stale_files(logs_dir: Path, backups: int) -> None:
    """Delete leftovers of earlier runs from the logs folder.

    A crash during rotation can leave a half-written `.gz.tmp`; a run configured with
    more backups leaves archives numbered above `backups`, which would never rotate out.
    """
    prefix = LOG_FILE_NAME + "."
    for path in logs_dir.glob(f"{LOG_FILE_NAME}.*"):
        name = path.name
        if name.endswith(GZIP_SUFFIX + TMP_SUFFIX):
            stale = True
        elif name.endswith(GZIP_SUFFIX):
            number = name[len(prefix) : -len(GZIP_SUFFIX)]
            stale = number.isdigit() and int(number) > backups
        else:
            stale = False
        if stale:
            with contextlib.suppress(OSError):
                path.unlink()


def should_log_to_stderr(to_stderr: bool | None, env: dict[str, str] | None = None) -> bool:
    """Explicit choice wins; otherwise only under systemd, which sets JOURNAL_STREAM."""
    if to_stderr is not None:
        return to_stderr
    return bool((os.environ if env is None else env).get("JOURNAL_STREAM"))


def setup_logging(
    logs_dir: Path,
    *,
    level: str,
    max_bytes: int,
    backups: int,
    to_stderr: bool | None = None,
    stream: TextIO | None = None,
) -> Callable[[], None]:
    """Install the JSON file handler (and the journal copy) on the `inboxd` logger.

    Returns a teardown that removes and closes exactly the handlers installed here and
    restores the logger's level and propagation, so tests and `--once` leave no open
    file behind. `stream` replaces sys.stderr for the plain copy (tests).
    """
    logs_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_files(logs_dir, max(backups, 0))
    logger = logging.getLogger(LOGGER_NAME)
    file_handler = GzipRotatingFileHandler(
        logs_dir / LOG_FILE_NAME, max_bytes=max_bytes, backups=backups
    )
    file_handler.setFormatter(JsonLinesFormatter())
    handlers: list[logging.Handler] = [file_handler]
    if should_log_to_stderr(to_stderr):
        err_handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
        err_handler.setFormatter(
            PlainFormatter(syslog_prefix=bool(os.environ.get("JOURNAL_STREAM")))
        )
        handlers.append(err_handler)
    elif (stream if stream is not None else sys.stderr).isatty():
        # Someone is watching the terminal: show them what goes wrong, not every file.
        tty_handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
        tty_handler.setLevel(logging.WARNING)
        tty_handler.setFormatter(TerminalFormatter())
        handlers.append(tty_handler)
    previous_level, previous_propagate = logger.level, logger.propagate
    logger.setLevel(level.upper())
    # The daemon owns its log: a library configuring the root logger must not double it.
    logger.propagate = False
    for handler in handlers:
        logger.addHandler(handler)

    def teardown() -> None:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(previous_level)
        logger.propagate = previous_propagate

    return teardown


__all__ = [
    "LOGGER_NAME",
    "LOG_FILE_NAME",
    "GzipRotatingFileHandler",
    "JsonLinesFormatter",
    "PlainFormatter",
    "TerminalFormatter",
    "setup_logging",
]
