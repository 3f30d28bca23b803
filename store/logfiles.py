"""Listing and reading the daemon's own log files for the API.

Only names that `list_logs` reports are ever opened: `inboxd.log` and the rotated
`inboxd.log.<N>.gz`, as regular files directly inside the logs folder. Anything else,
whatever its spelling, is refused before the file system is touched, and the file is
opened without following symbolic links.
"""

from __future__ import annotations

import gzip
import os
import re
import stat
import zlib
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from store.errors import InboxdError

CURRENT_LOG_NAME = "inboxd.log"
_ROTATED_RE = re.compile(r"inboxd\.log\.([1-9][0-9]{0,5})\.gz")
# Every name `list_logs` can report, as the API documents it.
LOG_NAME_PATTERN = r"^inboxd\.log(\.[1-9][0-9]{0,5}\.gz)?$"
# Characters no served name contains; refusing them up front keeps traversal attempts
# (`..`, `%2e%2e`, `a/b`, `a\b`, NUL) away from any path join.
_FORBIDDEN = ("/", "\\", "\x00", "..", "%")
# A request reads at most this many decompressed bytes, keeping the end of the file, so a
# huge or hostile archive cannot exhaust memory.
LOG_READ_MAX_BYTES = 64 * 1024 * 1024
_CHUNK_BYTES = 256 * 1024


class LogFileError(InboxdError):
    """Root of the errors of this module."""


class InvalidLogName(LogFileError):
    """The requested name can never be a log file (traversal, separators, NUL...)."""


class LogNotFound(LogFileError):
    """The name is well formed but no such log file exists now."""


class LogUnreadable(LogFileError):
    """The file exists but its content cannot be decoded (e.g. a corrupt archive)."""


def _rank(name: str) -> int | None:
    """0 for the current log, N for `inboxd.log.N.gz`, None for any other name."""
    if name == CURRENT_LOG_NAME:
        return 0
    match = _ROTATED_RE.fullmatch(name)
    return int(match.group(1)) if match else None


def list_logs(logs_dir: Path) -> list[dict[str, Any]]:
    """The log files present: current first, then rotated ones by number.

    Symbolic links and anything but regular files are left out. A missing folder gives [].
    """
    found: list[tuple[int, dict[str, Any]]] = []
    try:
        entries = list(os.scandir(logs_dir))
    except OSError:
        return []
    for entry in entries:
        rank = _rank(entry.name)
        if rank is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        found.append((rank, {"name": entry.name, "size": st.st_size, "modified": st.st_mtime}))
    found.sort(key=lambda item: item[0])
    return [doc for _, doc in found]


def check_log_name(name: str) -> None:
    """Raise InvalidLogName unless `name` has the shape of a log file name."""
    if not name or any(bad in name for bad in _FORBIDDEN) or _rank(name) is None:
        raise InvalidLogName(f"not a log file name: {name[:100]!r}")


def read_log(logs_dir: Path, name: str, tail: int | None = None) -> str:
    """The text of one log file, decompressed; with `tail`, only its last `tail` lines.

    Raises InvalidLogName, LogNotFound or LogUnreadable. Bytes that are not UTF-8 become
    U+FFFD. At most LOG_READ_MAX_BYTES of the end of the file are returned.
    """
    check_log_name(name)
    if name not in {doc["name"] for doc in list_logs(logs_dir)}:
        raise LogNotFound(f"no log file {name!r}")
    fd = _open_regular(logs_dir / name)
    with os.fdopen(fd, "rb") as raw:
        is_archive = name.endswith(".gz")
        data = _read_gzip(raw, name, tail) if is_archive else _read_plain(raw, tail)
    return data.decode("utf-8", errors="replace")


def _open_regular(path: Path) -> int:
    """Open `path` read-only without following a symbolic link; regular files only."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError as exc:
        raise LogNotFound(f"no log file {path.name!r}") from exc
    except OSError as exc:
        raise LogNotFound(f"log file {path.name!r} cannot be opened: {exc.strerror}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise LogNotFound(f"log file {path.name!r} is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _last_lines(chunks: Iterator[bytes], tail: int | None) -> bytes:
    """Join `chunks`, keeping only the last `tail` lines (all when None) within the cap."""
    kept: deque[tuple[bytes, int]] = deque()
    kept_bytes = 0
    kept_newlines = 0
    for chunk in chunks:
        newlines = chunk.count(b"\n")
        kept.append((chunk, newlines))
        kept_bytes += len(chunk)
        kept_newlines += newlines
        while len(kept) > 1:
            first, first_newlines = kept[0]
            has_enough_lines = tail is not None and kept_newlines - first_newlines > tail
            is_too_big = kept_bytes - len(first) >= LOG_READ_MAX_BYTES
            if not (has_enough_lines or is_too_big):
                break
            kept.popleft()
            kept_bytes -= len(first)
            kept_newlines -= first_newlines
    data = b"".join(chunk for chunk, _ in kept)
    if len(data) > LOG_READ_MAX_BYTES:
        data = data[-LOG_READ_MAX_BYTES:]
    return _tail_lines(data, tail) if tail is not None else data


def _tail_lines(data: bytes, tail: int) -> bytes:
    """The last `tail` lines of `data`; a final line without `\\n` counts as a line.

    Found from the end with rfind: the work is the size of the answer, not of `data`.
    """
    if tail <= 0:
        return b""
    pos = len(data) - 1 if data.endswith(b"\n") else len(data)
    for _ in range(tail):
        pos = data.rfind(b"\n", 0, pos)
        if pos < 0:
            return data
    return data[pos + 1 :]


def _read_plain(raw: IO[bytes], tail: int | None) -> bytes:
    """Read a plain file; with `tail`, read backwards from the end until enough lines."""
    size = os.fstat(raw.fileno()).st_size
    if tail is None:
        raw.seek(max(size - LOG_READ_MAX_BYTES, 0))
        return raw.read(LOG_READ_MAX_BYTES)
    if tail <= 0:
        return b""
    # Chunks are gathered backwards and joined once: prepending to one growing bytes
    # object, and counting its newlines again at every step, was quadratic.
    pos = size
    chunks: list[bytes] = []
    newlines = kept = 0
    while pos > 0 and newlines <= tail and kept < LOG_READ_MAX_BYTES:
        step = min(_CHUNK_BYTES, pos)
        pos -= step
        raw.seek(pos)
        chunk = raw.read(step)
        chunks.append(chunk)
        newlines += chunk.count(b"\n")
        kept += len(chunk)
    chunks.reverse()
    return _tail_lines(b"".join(chunks), tail)


def _read_gzip(raw: IO[bytes], name: str, tail: int | None) -> bytes:
    """Decompress an archive as a stream; a truncated end yields what was readable."""

    def chunks() -> Iterator[bytes]:
        with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
            try:
                while chunk := gz.read1(_CHUNK_BYTES):
                    yield chunk
            except EOFError:
                return

    try:
        return _last_lines(chunks(), tail)
    except (OSError, zlib.error) as exc:
        raise LogUnreadable(f"log file {name!r} cannot be decompressed: {exc}") from exc
