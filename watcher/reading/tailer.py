"""Reading input files: identity, eligibility, chunked reads of complete lines.

A file is known by (device, inode) and a fingerprint of its first bytes, never by name,
so a rename inside the inbox is not read again, a truncated file is read from the start,
and a new file on a reused inode is detected. Reads are bounded (one chunk at a time) so
memory stays flat whatever a file holds.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cli.inputs import decode_lines
from store.checkpoints import TrackedFile
from watcher.reading.excluded import EXCLUDED_MAX, ExcludedFile
from watcher.reading.filters import PathFilter, is_eligible_name

CHUNK_BYTES = 1024 * 1024
FINGERPRINT_BYTES = 1024
# The bytes just before a checkpoint that must still be there when a file is opened again.
TAIL_BYTES = 256
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def fingerprint(head: bytes) -> str:
    return hashlib.blake2b(head, digest_size=12).hexdigest()


@dataclass(slots=True)
class Chunk:
    """Complete lines read from one file, and where the file stands after them."""

    lines: list[str]
    first_line_no: int
    end_offset: int
    end_lines: int
    skipped: list[tuple[int, int]]  # (line number, bytes) of lines over max_line_bytes
    skipping: bool  # inside an over-long line whose end has not been written yet
    raw: bytes = b""  # the bytes of `lines` when they all end with a newline
    undecoded: int = 0  # lines left in `raw` only (read_chunk(decode=False))

    @property
    def count(self) -> int:
        """How many lines the chunk holds, decoded or not."""
        return len(self.lines) or self.undecoded


def scan(
    root: Path,
    accepts: PathFilter | None = None,
    excluded: dict[tuple[int, int], ExcludedFile] | None = None,
) -> dict[tuple[int, int], tuple[str, os.stat_result]]:
    """Every eligible regular file under `root`: (dev, ino) -> (relative path, lstat).

    Symbolic links (to files or folders), FIFOs, sockets and devices are skipped
    without being opened; a folder that cannot be listed is passed over. Regular files
    the include/exclude rules reject go to `excluded` (up to EXCLUDED_MAX of them).
    """
    accepts = accepts or PathFilter()
    found: dict[tuple[int, int], tuple[str, os.stat_result]] = {}
    stack = [(str(root), "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if not is_eligible_name(entry.name):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            rel = prefix + entry.name
            if stat.S_ISDIR(st.st_mode):
                stack.append((entry.path, rel + "/"))
            elif stat.S_ISREG(st.st_mode):
                if accepts.accepts_file(rel, entry.name):
                    found[(st.st_dev, st.st_ino)] = (rel, st)
                elif excluded is not None and len(excluded) < EXCLUDED_MAX:
                    rule = accepts.excluded_by(rel)
                    if rule is not None:
                        excluded[(st.st_dev, st.st_ino)] = ExcludedFile(rel, rule, st.st_size)
    return found


def open_regular(path: str | Path) -> tuple[int, os.stat_result] | None:
    """Open a regular file without following links or blocking on a FIFO.

    None when nothing (regular) is there any more; OSError for a file that is there but
    cannot be opened (permission denied, too many open files...): a fault of that file.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symbolic link took the name
            return None
        raise
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    return fd, st


def tail_print(fd: int, offset: int) -> str:
    """Fingerprint of the bytes just before `offset` ("" at the start of the file)."""
    if offset <= 0:
        return ""
    start = max(offset - TAIL_BYTES, 0)
    return fingerprint(os.pread(fd, offset - start, start))


def tail_at(fd: int, offset: int) -> str:
    """tail_print() of a checkpoint just reached: "" (unknown) when the file was cut
    meanwhile, as logrotate's copytruncate does right after its copy. A tail read from
    the file's new content would hide the copy that holds the real one."""
    tail = tail_print(fd, offset)
    return tail if os.fstat(fd).st_size >= offset else ""


def count_lines(fd: int, end: int) -> int:
    """How many newlines the first `end` bytes of `fd` hold (read a chunk at a time)."""
    count = offset = 0
    while offset < end:
        data = os.pread(fd, min(CHUNK_BYTES, end - offset), offset)
        if not data:
            break
        count += data.count(b"\n")
        offset += len(data)
    return count


def head_matches(head: bytes, fp_len: int, print_: str) -> bool:
    return len(head) >= fp_len and fingerprint(head[:fp_len]) == print_


def check_identity(fd: int, tracked: TrackedFile, size: int) -> str:
    """Compare a file with its checkpoint: 'same', 'truncated' or 'replaced'.

    Both the first bytes and the bytes just before the checkpoint must match: a new file
    on a reused inode that starts with the same header is still another file. Also
    extends the fingerprint as the file grows, so that short files get a stronger
    one later.
    """
    if size < tracked.offset:
        return "truncated"
    if size < tracked.fp_len:
        return "replaced"
    head = os.pread(fd, FINGERPRINT_BYTES, 0)
    if fingerprint(head[: tracked.fp_len]) != tracked.fingerprint:
        return "replaced"
    if (
        tracked.tail
        and tracked.offset > tracked.fp_len
        and tail_print(fd, tracked.offset) != tracked.tail
    ):
        return "replaced"
    if len(head) > tracked.fp_len:
        tracked.fp_len = len(head)
        tracked.fingerprint = fingerprint(head)
    return "same"


def read_chunk(
    fd: int,
    tracked: TrackedFile,
    *,
    max_line_bytes: int,
    final: bool,
    chunk_bytes: int = CHUNK_BYTES,
    size: int | None = None,
    decode: bool = True,
) -> Chunk:
    """Read complete lines after tracked.offset: at most about one chunk of them.

    `size`, the file's size when it was opened, bounds the read so that a small file
    does not cost a chunk-sized buffer (a megabyte mapped and unmapped per read).

    The returned chunk is contiguous (its lines are numbered from first_line_no on). It
    holds no lines when the file has nothing complete to give, or when the only thing
    read was an over-long line, which is skipped and reported in `skipped`. With
    `final` (idle timeout, --once) a last line without a newline counts as complete.

    With `decode` False, complete lines that cannot hold an over-long one are left as
    bytes in `raw` (counted in `undecoded`): worker processes decode them.
    """
    offset, consumed = tracked.offset, tracked.lines
    if tracked.state == "skipping":
        end, found = _skip_to_newline(fd, offset)
        return Chunk([], consumed + 1, end, consumed + found, [], not found)
    want = chunk_bytes if size is None or final else min(chunk_bytes, max(size - offset, 0))
    data = os.pread(fd, want, offset) if want else b""
    nl = data.rfind(b"\n")
    if nl < 0:
        if len(data) == chunk_bytes and max_line_bytes >= chunk_bytes:
            data = os.pread(fd, max_line_bytes + 1, offset)
            nl = data.find(b"\n")
            data = data[: nl + 1] if nl >= 0 else data
        if nl < 0:
            if len(data) > max_line_bytes:
                return _skip_long(fd, offset, consumed, len(data))
            if not (final and data):
                return Chunk([], consumed + 1, offset, consumed, [], False)
            lines = decode_lines(data + b"\n")
            return Chunk(lines, consumed + 1, offset + len(data), consumed + 1, [], False)
    complete = data[: nl + 1]
    if not decode and len(complete) <= max_line_bytes:
        count = complete.count(b"\n")
        end = offset + len(complete)
        return Chunk([], consumed + 1, end, consumed + count, [], False, complete, count)
    return _complete_lines(complete, offset, consumed, max_line_bytes)


def _complete_lines(complete: bytes, offset: int, consumed: int, max_line_bytes: int) -> Chunk:
    """The chunk of `complete` (ending in a newline), cut before its first over-long line."""
    lines = decode_lines(complete)
    if len(complete) > max_line_bytes:
        first_long = _first_long(complete, lines, max_line_bytes)
        if first_long == 0:
            size = complete.find(b"\n")
            return Chunk(
                [], consumed + 2, offset + size + 1, consumed + 1, [(consumed + 1, size)], False
            )
        if first_long > 0:
            cut = 0
            for _ in range(first_long):
                cut = complete.index(b"\n", cut) + 1
            complete, lines = complete[:cut], lines[:first_long]
    end = offset + len(complete)
    return Chunk(lines, consumed + 1, end, consumed + len(lines), [], False, complete)


def _first_long(complete: bytes, lines: list[str], max_line_bytes: int) -> int:
    """Index of the first line of `complete` over max_line_bytes bytes as read, or -1.

    Measured on the raw bytes: decoded text counts each undecodable byte as the three
    bytes of U+FFFD, which would skip a line only because of what follows it in the
    chunk. A line holds at most four bytes per decoded character (plus the stripped CR),
    which rules most chunks out without looking at the bytes.
    """
    if max(map(len, lines), default=0) * 4 + 1 <= max_line_bytes:
        return -1
    start = 0
    for i in range(len(lines)):
        end = complete.index(b"\n", start)
        if end - start > max_line_bytes:
            return i
        start = end + 1
    return -1


def _skip_long(fd: int, offset: int, consumed: int, seen: int) -> Chunk:
    end, found = _skip_to_newline(fd, offset + seen)
    skipped = [(consumed + 1, end - offset)]
    return Chunk([], consumed + 1, end, consumed + found, skipped, not found)


def _skip_to_newline(fd: int, offset: int) -> tuple[int, bool]:
    """Move past the rest of an over-long line; (new offset, whether its end was seen)."""
    while True:
        data = os.pread(fd, CHUNK_BYTES, offset)
        if not data:
            return offset, False
        nl = data.find(b"\n")
        if nl >= 0:
            return offset + nl + 1, True
        offset += len(data)
