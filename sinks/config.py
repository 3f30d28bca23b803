"""Checks shared by the sink types' parsers: names, numbers, paths, templates.

A mistake is a ConfigError of one line naming the file, the sink and the key.
"""

from __future__ import annotations

import math
import re
import string
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from store.errors import ConfigError

RESERVED = frozenset({"start", "end"})
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def shown_url(url: str) -> str:
    """`url` without what may be a secret: a password in it, the query's values."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    query = "&".join(f"{kv.partition('=')[0]}=***" for kv in parts.query.split("&") if kv)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def check_name(name: str, where: str) -> None:
    if not NAME.match(name) or name in RESERVED:
        raise ConfigError(
            f"{where}: a sink name must be letters, digits, '_', '.' or '-' and not "
            f"'start' or 'end', got {name!r}"
        )


def int_in(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{where}: expected an integer from {low} to {high}, got {value!r}")
    return value


def seconds_in(value: Any, where: str, low: float, high: float) -> float:
    """Seconds in (low, high]."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low < value <= high
    ):
        raise ConfigError(f"{where}: expected seconds in ({low:g}, {high:g}], got {value!r}")
    return float(value)


def text(value: Any, where: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or "\n" in value or "\0" in value:
        raise ConfigError(f"{where}: expected a one-line string, got {value!r}")
    return value


def template_fields(template: str, allowed: tuple[str, ...], where: str) -> list[str]:
    """The placeholders of `template`, each one of `allowed` (ConfigError otherwise)."""
    hint = " or ".join("{" + a + "}" for a in allowed)
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc} (write {hint})") from None
    names: list[str] = []
    for _, name, spec, conv in fields:
        if name is None:
            continue
        if name not in allowed or spec or conv:
            raise ConfigError(f"{where}: unknown placeholder {{{name}}} (use {hint})")
        names.append(name)
    return names


def relative(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: expected a relative path string, got {value!r}")
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or "\0" in value:
        raise ConfigError(f"{where}: must stay inside its folder (no '/' start, no '..')")
    return value
