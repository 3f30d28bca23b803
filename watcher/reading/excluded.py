"""Files the include/exclude rules keep from being read: listed in /files, logged once.

A full scan gives the excluded files it met (at most EXCLUDED_MAX of them, so an inbox
full of compressed rotations cannot grow memory); each one is logged the first time it
is seen, and listed in /files with state `excluded` and the rule, until it is gone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Container
from typing import NamedTuple

from store.paths import shown
from store.records import FileStatus

log = logging.getLogger("inboxd.watcher")

EXCLUDED_MAX = 10_000


class ExcludedFile(NamedTuple):
    """A regular file of the inbox that a rule keeps from being read."""

    rel: str
    rule: str
    size: int


class ExcludedBook:
    """The excluded files of the last full scan; processing thread only."""

    def __init__(self) -> None:
        self.files: dict[tuple[int, int], ExcludedFile] = {}
        self._seen: dict[tuple[int, int], float] = {}
        self._full_logged = False

    def update(self, found: dict[tuple[int, int], ExcludedFile]) -> bool:
        """Take a full scan's excluded files; True when /files should show a change."""
        changed = found.keys() != self.files.keys()
        for key, item in found.items():
            if key not in self._seen:
                self._seen[key] = time.time()
                log.info(f"file not read: excluded by {item.rule}",
                         extra={"event": "file_excluded", "file": shown(item.rel),
                                "rule": item.rule})  # fmt: skip
            elif self.files[key] != item:
                changed = True
        if len(found) >= EXCLUDED_MAX and not self._full_logged:
            self._full_logged = True
            log.warning(f"more than {EXCLUDED_MAX} excluded files: /files lists {EXCLUDED_MAX}",
                        extra={"event": "excluded_many"})  # fmt: skip
        self._seen = {key: self._seen[key] for key in found}
        self.files = found
        return changed

    def statuses(self, tracked: Container[tuple[int, int]]) -> list[FileStatus]:
        """/files rows of the excluded files that are not tracked under another name."""
        out = []
        for key, f in self.files.items():
            if key in tracked:
                continue
            out.append(FileStatus(shown(f.rel), f.size, 0, "excluded", "", 0, self._seen[key],
                                  reason=f"excluded by {f.rule}", rule=f.rule))  # fmt: skip
        return out


__all__ = ["EXCLUDED_MAX", "ExcludedBook", "ExcludedFile"]
