"""`[[inputs]]` tables: settings per glob of input files (start position, multiline),
and how an input's bytes become lines.

Parsed and validated with the rest of the config, before any thread starts; the watcher
matches the globs (watcher/reading/multiline.py). A mistake is a ConfigError of one line naming
the file, the table and the key.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from processors.errors import ConfigError

READ_FROM = ("beginning", "end")
_RULE_KEYS = ("match", "read_from", "multiline")
_MULTILINE_KEYS = ("start", "max_lines", "timeout")


@dataclass(frozen=True, slots=True)
class Multiline:
    """How lines are joined into records: a line matching `start` begins one."""

    start: re.Pattern[str]
    max_lines: int = 500
    timeout: float = 1.0


@dataclass(frozen=True, slots=True)
class InputRule:
    """The settings of the input files whose relative path matches the glob `match`."""

    match: str
    read_from: str = "beginning"
    multiline: Multiline | None = None


def parse_inputs(value: Any, where: str) -> tuple[InputRule, ...]:
    """The `[[inputs]]` array of tables as rules, in order (the first match applies)."""
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise ConfigError(f"{where}: inputs: expected [[inputs]] tables")
    return tuple(_parse_rule(table, f"{where}: [[inputs]] #{i}") for i, table in
                 enumerate(value, 1))  # fmt: skip


def _parse_rule(table: dict[str, Any], where: str) -> InputRule:
    _no_unknown(table, _RULE_KEYS, where)
    match = table.get("match")
    if not isinstance(match, str) or not match:
        raise ConfigError(f"{where} match: expected a glob string, got {match!r}")
    read_from = table.get("read_from", "beginning")
    if read_from not in READ_FROM:
        raise ConfigError(f'{where} read_from: expected "beginning" or "end", got {read_from!r}')
    multiline = table.get("multiline")
    if multiline is not None:
        multiline = _parse_multiline(multiline, f"{where} multiline")
    return InputRule(match, read_from, multiline)


def _parse_multiline(table: Any, where: str) -> Multiline:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table like {{ start = '^\\S' }}")
    _no_unknown(table, _MULTILINE_KEYS, where + ".")
    start = table.get("start")
    if not isinstance(start, str) or not start:
        raise ConfigError(f"{where}.start: expected a regular expression string, got {start!r}")
    try:
        pattern = re.compile(start)
    except re.error as exc:
        raise ConfigError(f"{where}.start: not a valid regular expression: {exc}") from None
    max_lines = table.get("max_lines", 500)
    if isinstance(max_lines, bool) or not isinstance(max_lines, int) or max_lines < 1:
        raise ConfigError(f"{where}.max_lines: expected an integer of 1 or more, got {max_lines!r}")
    timeout = table.get("timeout", 1.0)
    number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
    if not number or not 0 < timeout < math.inf:
        raise ConfigError(f"{where}.timeout: expected seconds greater than 0, got {timeout!r}")
    return Multiline(pattern, max_lines, float(timeout))


def _no_unknown(table: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(table) - set(known))
    if unknown:
        sep = "" if where.endswith(".") else " "
        raise ConfigError(f"{where}{sep}{unknown[0]}: unknown key (expected {', '.join(known)})")


def decode_lines(data: bytes) -> list[str]:
    """Complete lines (data ends with a newline) as text; invalid UTF-8 becomes U+FFFD,
    and a carriage return before the newline is dropped."""
    text = data.decode("utf-8", "replace")
    lines = text.split("\n")
    lines.pop()
    if "\r" in text:
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    return lines
