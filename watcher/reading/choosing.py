"""Which files a pass reads: the ones a scan shows changed, the ones watch events name.

Pure functions of the tracked files and what was found, beside the reader that acts on
them (watcher/reading/reader.py); processing thread only.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from store.checkpoints import TrackedFile
from watcher.reading.filters import PathFilter


class Found(NamedTuple):
    """A file worth reading: its identity, its name under the inbox, what a scan saw."""

    key: tuple[int, int]
    rel: str
    size: int = -1  # from a scan's stat; -1 when unknown
    mtime_ns: int = -1


def changed_files(
    files: Mapping[tuple[int, int], TrackedFile],
    in_error: Mapping[tuple[int, int], object],
    found: Iterable[Found],
) -> list[Found]:
    """The scanned files that may hold something new (a full scan reads no others)."""
    todo: list[Found] = []
    for item in found:
        t = files.get(item.key)
        if (
            t is None
            or t.path != item.rel
            or t.state != "active"
            or t.offset < item.size
            or t.size != item.size
            or t.mtime_ns != item.mtime_ns
            or item.key in in_error
        ):
            todo.append(item)
    return todo


def resolve_paths(prefix: str, accepts: PathFilter, paths: Iterable[str]) -> list[Found]:
    """Turn paths from watch events (under `prefix`, the inbox with a trailing slash)
    into regular files the include/exclude rules accept."""
    found: dict[tuple[int, int], Found] = {}
    for path in paths:
        if not path.startswith(prefix):
            path = os.path.abspath(path)
            if not path.startswith(prefix):
                continue
        rel = path[len(prefix) :]
        if not rel or not accepts.accepts(rel):
            continue
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            found[key] = Found(key, rel)
    return list(found.values())
