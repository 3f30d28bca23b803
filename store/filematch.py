"""The `file` filter of /traces, /deadletter and /tap: a glob over the input file's path.

The path is the one shown in `file` (relative to the inbox). The glob is matched as
`fnmatch.fnmatchcase` does, on the whole path and case-sensitively: `*` matches any run
of characters including `/`, `?` one character, `[abc]` and `[!abc]` one of a set (or
not). A pattern without any of `*?[` matches exactly that path. The in-memory rings call
`file_matches` directly; SQLite calls the same function, registered on each reader's
connection, so that recent and stored records answer a pattern the same way.
"""

from __future__ import annotations

import fnmatch
import sqlite3

FILE_GLOB_HELP = (
    "a glob over the input file's path as shown in `file` (relative to the inbox), "
    "matched whole and case-sensitively: `*` matches any characters including `/`, `?` "
    "one character, `[abc]`/`[!abc]` one of a set; without `*?[` it matches that path "
    "exactly (e.g. `app/a.log`, `app/*`, `*.log`, `*disk*`)"
)
SQL_FUNCTION = "inboxd_file_matches"
_GLOB_CHARS = frozenset("*?[")


def is_literal(pattern: str) -> bool:
    """True when `pattern` has no glob character: it can only match itself."""
    return not _GLOB_CHARS.intersection(pattern)


def file_matches(pattern: str, file: str | None) -> bool:
    """Whether the input file `file` (None: no file) matches the glob `pattern`."""
    if file is None:
        return False
    if is_literal(pattern):
        return file == pattern
    return fnmatch.fnmatchcase(file, pattern)


def register(conn: sqlite3.Connection) -> None:
    """Make `inboxd_file_matches(pattern, file)` callable in SQL on `conn`."""
    conn.create_function(SQL_FUNCTION, 2, _sql_matches, deterministic=True)


def sql_condition(pattern: str, column: str = "file") -> tuple[str, list[str]]:
    """A WHERE condition (and its parameters) keeping the rows whose `column` matches.

    A literal pattern is an equality, which an index on the column serves.
    """
    if is_literal(pattern):
        return f"{column} = ?", [pattern]
    return f"{SQL_FUNCTION}(?, {column})", [pattern]


def _sql_matches(pattern: object, file: object) -> int:
    if not isinstance(pattern, str) or not isinstance(file, str):
        return 0
    return int(file_matches(pattern, file))
