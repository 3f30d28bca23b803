"""Which inbox files are read: hidden and temporary names never, then include/exclude globs.

Globs match the path relative to the inbox: `*` and `?` stay within a folder, `**`
crosses folders, and a pattern without `/` matches the base name anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cli.settings import DEFAULT_EXCLUDE

SKIP_SUFFIXES = (".tmp", ".part", ".swp", "~")


def is_eligible_name(name: str) -> bool:
    """Hidden names and editor/partial-download suffixes are never read."""
    return not name.startswith(".") and not name.endswith(SKIP_SUFFIXES)


def glob_regex(pattern: str) -> str:
    """The regular expression (without anchors) of one glob."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"(?!/)[{body}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def compile_globs(patterns: Sequence[str]) -> re.Pattern[str] | None:
    """One regex for a list of globs (None for an empty list)."""
    parts = []
    for p in patterns:
        body = glob_regex(p.lstrip("/"))
        parts.append(body if "/" in p else f"(?:.*/)?{body}")
    if not parts:
        return None
    return re.compile("(?:" + "|".join(parts) + r")\Z", re.DOTALL)


class PathFilter:
    """Decides, from its relative path alone, whether a file is read."""

    def __init__(
        self, include: Sequence[str] = (), exclude: Sequence[str] = DEFAULT_EXCLUDE
    ) -> None:
        self._include = compile_globs(include)
        self._exclude = compile_globs(exclude)
        self._include_globs = tuple(include)
        self._exclude_each = [(g, compile_globs([g])) for g in exclude]

    def accepts(self, rel: str) -> bool:
        if not all(is_eligible_name(part) for part in rel.split("/")):
            return False
        if self._include is not None and self._include.match(rel) is None:
            return False
        return self._exclude is None or self._exclude.match(rel) is None

    def accepts_file(self, rel: str, name: str) -> bool:
        """`accepts` for a scanned file whose folders were already found eligible."""
        if not is_eligible_name(name):
            return False
        if self._include is not None and self._include.match(rel) is None:
            return False
        return self._exclude is None or self._exclude.match(rel) is None

    def excluded_by(self, rel: str) -> str | None:
        """The include/exclude rule that keeps `rel` from being read, None if none does.

        Says nothing of hidden and temporary names. Only called for files the globs
        rejected, so the per-glob matching costs nothing on files that are read.
        """
        if self._include is not None and self._include.match(rel) is None:
            globs = ", ".join(f'"{g}"' for g in self._include_globs)
            return f"include (matches none of {globs})"
        if self._exclude is None or self._exclude.match(rel) is None:
            return None
        for glob, one in self._exclude_each:
            if one is not None and one.match(rel) is not None:
                return f'exclude "{glob}"'
        return "exclude"
