"""The built-in processors as they were before their fast paths: the behaviour to keep.

The fast versions in `processors.builtin` must give exactly these outputs; the
equivalence tests compare the two on generated lines. Frozen: do not change it to make a
test pass.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

LEVELS = {
    "fatal": "error",
    "critical": "error",
    "crit": "error",
    "emerg": "error",
    "alert": "error",
    "error": "error",
    "err": "error",
    "warning": "warn",
    "warn": "warn",
    "notice": "info",
    "info": "info",
    "debug": "debug",
    "trace": "debug",
}
_LEVEL_WORD = re.compile(
    r"\b(FATAL|CRITICAL|CRIT|EMERG|ALERT|ERROR|ERR|WARNING|WARN|NOTICE|INFO|DEBUG|TRACE)\b",
    re.IGNORECASE,
)
_JSON_LEVEL_KEYS = ("level", "severity", "lvl", "log.level", "levelname")
_LEVEL_HEAD_CHARS = 160

_SECRET = re.compile(
    r"""(?ix)
    (?P<key>\b(?:[a-z0-9]+[_.-]){0,3}
        (?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|auth)\b
        ["']?\s*[:=]\s*)
    (?:(?P<quoted>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')|(?P<open>["']?)[^\s"',;&]+)
    """
)
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}")
# Since frozen: after an Authorization header, a bearer token of any length is masked.
_AUTH_BEARER = re.compile(r"(?i)(authorization\s*[:=]\s*\b)(bearer)\s+[A-Za-z0-9._~+/=-]+")


def level_of(line: str) -> str:
    if line[:1] == "{":
        try:
            doc = json.loads(line)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            for key in _JSON_LEVEL_KEYS:
                value = doc.get(key)
                if isinstance(value, str):
                    return LEVELS.get(value.strip().lower(), "info")
                if isinstance(value, int) and not isinstance(value, bool):
                    return _numeric_level(value)
            return "info"
    m = _LEVEL_WORD.search(line, 0, _LEVEL_HEAD_CHARS)
    return LEVELS[m.group(1).lower()] if m else "info"


def _numeric_level(value: int) -> str:
    if value >= 10:
        value //= 10
    if value >= 4:
        return "error" if value >= 5 else "warn"
    return "info" if value >= 3 else "debug"


def tag_router(line: str) -> Iterator[tuple[str, str]]:
    if line.strip():
        yield level_of(line), line


def filter_errors(line: str) -> Iterator[tuple[str, str]]:
    if level_of(line) == "error":
        yield "redact", line


def keep(line: str) -> Iterator[tuple[str, str]]:
    yield "redact", line


def drop(line: str) -> Iterator[tuple[str, str]]:
    return iter(())


def redact_secrets(line: str) -> Iterator[tuple[str, str]]:
    if "=" in line or ":" in line or "earer" in line or "EARER" in line:
        line = _SECRET.sub(_mask, line)
        line = _AUTH_BEARER.sub(r"\1\2 ***", line)
        line = _BEARER.sub(r"\1 ***", line)
    yield "end", line


def _mask(m: re.Match[str]) -> str:
    quoted = m.group("quoted")
    if quoted:
        return f"{m.group('key')}{quoted[0]}***{quoted[0]}"
    return f"{m.group('key')}{m.group('open')}***"
