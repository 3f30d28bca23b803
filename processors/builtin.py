"""Built-in processors: the embedded default pipeline is made of these.

Default graph::

    start  = tag_router       -> error | warn | info | debug   (by level, plain or JSON)
    error  = filter_errors    -> redact                        (keeps error-level lines)
    warn   = keep             -> redact
    info   = keep             -> redact
    debug  = drop                                              (debug noise stops here)
    redact = redact_secrets   -> end                           (masks passwords and tokens)
"""

from __future__ import annotations

import json
import re
import time
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
# Only the head of a line is searched for a level word: that is where every common log
# format puts it, and it keeps long lines cheap.
_LEVEL_HEAD_CHARS = 160

# A key is a secret word, alone or as the last part of a compound name (`access_token`,
# `db_password`, `X-Api-Key`). A quoted value is masked up to its closing quote, so a
# password with spaces does not leak its tail.
_SECRET = re.compile(
    r"""(?ix)
    (?P<key>\b(?:[a-z0-9]+[_.-]){0,3}
        (?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|auth)\b
        ["']?\s*[:=]\s*)
    (?:(?P<quoted>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')|(?P<open>["']?)[^\s"',;&]+)
    """
)
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}")


def level_of(line: str) -> str:
    """`error`, `warn`, `info` or `debug`; `info` when the line names no level."""
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
                    # A numeric `level` is what pino and bunyan write.
                    return _numeric_level(value)
            return "info"
    m = _LEVEL_WORD.search(line, 0, _LEVEL_HEAD_CHARS)
    return LEVELS[m.group(1).lower()] if m else "info"


def _numeric_level(value: int) -> str:
    """pino/bunyan numbers (10 trace ... 60 fatal) or the same scale divided by ten."""
    if value >= 10:
        value //= 10  # bunyan/pino: 30 info, 40 warn, 50 error
    if value >= 4:
        return "error" if value >= 5 else "warn"
    return "info" if value >= 3 else "debug"


def tag_router(line: str) -> Iterator[tuple[str, str]]:
    """Route a line by its level: plain text (`... ERROR ...`) or JSON (`"level": "error"`).

    Blank lines are dropped.
    """
    if line.strip():
        yield level_of(line), line


def filter_errors(line: str) -> Iterator[tuple[str, str]]:
    """Pass error-level lines (error, fatal, critical...) on to `redact`; drop the rest."""
    if level_of(line) == "error":
        yield "redact", line


def keep(line: str) -> Iterator[tuple[str, str]]:
    """Pass the line on to `redact` unchanged."""
    yield "redact", line


def drop(line: str) -> Iterator[tuple[str, str]]:
    """Drop the line (counted in /stats, traced as ending here)."""
    return iter(())


def mask_secrets(text: str) -> str:
    """`text` with the values of secret fields and bearer tokens masked as `***`.

    The rules `redact_secrets` applies to a line, for text kept elsewhere (errors,
    dead letters, traces).
    """
    if "=" in text or ":" in text or "earer" in text or "EARER" in text:
        text = _SECRET.sub(_mask, text)
        text = _BEARER.sub(r"\1 ***", text)
    return text


def redact_secrets(line: str) -> Iterator[tuple[str, str]]:
    """Mask values of password/token/api_key/secret fields and bearer tokens, then `end`."""
    yield "end", mask_secrets(line)


def _mask(m: re.Match[str]) -> str:
    quoted = m.group("quoted")
    if quoted:
        return f"{m.group('key')}{quoted[0]}***{quoted[0]}"
    return f"{m.group('key')}{m.group('open')}***"


class Throttle:
    """Factory: pass at most `per_second` lines a second to `to`, drop the excess.

    Example: `warn = { processor = "processors.builtin:Throttle",
    options = { per_second = 100 }, name = "throttle" }`.
    """

    def __init__(self, per_second: float = 100.0, to: str = "end") -> None:
        if per_second <= 0:
            raise ValueError("per_second must be > 0")
        self.per_second = float(per_second)
        self.to = to
        self._window = 0
        self._sent = 0

    def __call__(self, line: str) -> list[tuple[str, str]]:
        now = int(time.monotonic())
        if now != self._window:
            self._window, self._sent = now, 0
        if self._sent >= self.per_second:
            return []
        self._sent += 1
        return [(self.to, line)]
