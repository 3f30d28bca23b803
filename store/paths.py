"""File names as the file system has them, as SQLite stores them, as people read them.

A Linux file name is bytes; Python gives it as text with undecodable bytes turned into
lone surrogates ("surrogateescape"). Such text cannot be encoded for SQLite or JSON, so:
- `to_db` keeps a name that is valid UTF-8 as TEXT and any other as a BLOB of its
  exact bytes (lossless; `from_db` gives back the same str);
- `shown` writes the odd bytes as `\\xNN` for the API, logs and error records.
"""

from __future__ import annotations

import os
from typing import Any

import sqlite_utils


def to_db(name: str) -> str | bytes:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(name)
    return name


def from_db(value: str | bytes) -> str:
    return os.fsdecode(value) if isinstance(value, bytes) else value


def shown(name: str) -> str:
    """The name as text any encoder accepts: undecodable bytes become `\\xNN`."""
    if name.isascii():
        return name
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return name


def storable(value: object) -> object:
    """`value`, with any lone surrogate in a str written as an escape (SQLite and JSON
    take only valid UTF-8; a processor may emit anything)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def insert_storable(db: sqlite_utils.Database, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """executemany inside the caller's transaction; rows holding text SQLite cannot
    encode are written again with that text escaped (none is lost, none doubled)."""
    db.conn.execute("SAVEPOINT storable")
    try:
        db.conn.executemany(sql, rows)
    except UnicodeEncodeError:  # a lone surrogate from a processor
        db.conn.execute("ROLLBACK TO storable")
        db.conn.executemany(sql, [tuple(storable(v) for v in row) for row in rows])
    db.conn.execute("RELEASE storable")
