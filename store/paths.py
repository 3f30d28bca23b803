"""File names as the file system has them, as SQLite stores them, as people read them.

A Linux file name is bytes; Python gives it as text with undecodable bytes turned into
lone surrogates ("surrogateescape"). Such text cannot be encoded for SQLite or JSON, so:
- `to_db` keeps a name that is valid UTF-8 as TEXT and any other as a BLOB of its
  exact bytes (lossless; `from_db` gives back the same str);
- `shown` writes the odd bytes as `\\xNN` for the API, logs and error records.
"""

from __future__ import annotations

import os


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
