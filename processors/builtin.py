"""Built-in processors: the embedded default pipeline is made of these.

Default graph::

    start  = tag_router       -> error | warn | info | debug   (by level, plain or JSON)
    error  = filter_errors    -> redact                        (keeps error-level lines)
    warn   = keep             -> redact
    info   = keep             -> redact
    debug  = drop                                              (debug noise stops here)
    redact = redact_secrets   -> end                           (masks passwords and tokens)

They run once or more per line, so they are written for speed: each returns a tuple
(cheaper than a generator), and the regular expressions, which scan slowly when they
must try every position, only run where a plain substring search found a candidate.
The masking of secrets is processors.secrets; its names are importable from here too,
as configs name every built-in `processors.builtin:NAME`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

from processors.secrets import Out, fold, mask_secrets, redact_secrets

_NOTHING: Out = ()

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
# A level word, matched in lower-cased text; the word boundary before it is checked
# apart, so that the pattern starts with a literal and the engine skips ahead fast.
_LEVEL_WORD = re.compile(
    r"(fatal|critical|crit|emerg|alert|error|err|warning|warn|notice|info|debug|trace)\b"
)
# Characters before a level word that make a word boundary, the common ones: a set lookup
# is cheaper than the exact test (not alphanumeric, not `_`), which covers the rest.
_SPACE_OR_PUNCT = frozenset(" \t[](){}<>|,;:=/\\'\"-.!?*#@&%+~`^$")
_JSON_LEVEL_KEYS = ("level", "severity", "lvl", "log.level", "levelname")
# The scanner `json.loads` runs, called directly: it raises StopIteration or ValueError
# where `json.loads` raises ValueError.
_scan_json: Callable[[str, int], tuple[Any, int]] = vars(json.JSONDecoder())["scan_once"]
_JSON_SPACE = " \t\n\r"
_orjson_loads: Callable[[str], Any] | None
try:  # a faster parse of the JSON lines; the scanner above decides where they differ
    import orjson

    _orjson_loads = orjson.loads
except ImportError:  # pragma: no cover - orjson is a dependency
    _orjson_loads = None
# Only the head of a line is searched for a level word: that is where every common log
# format puts it, and it keeps long lines cheap.
_LEVEL_HEAD_CHARS = 160


def level_of(line: str) -> str:
    """`error`, `warn`, `info` or `debug`; `info` when the line names no level."""
    if line[:1] == "{":
        level = _json_level(line)
        if level is not None:
            return level
    return _plain_level(line)


def _plain_level(line: str) -> str:
    """The level named by the first level word in the head of `line`, `info` if none."""
    head = line if len(line) <= _LEVEL_HEAD_CHARS else line[:_LEVEL_HEAD_CHARS]
    head = head.lower() if head.isascii() else fold(head)
    search = _LEVEL_WORD.search
    m = search(head)
    while m is not None:
        start = m.start()
        if start == 0:
            return LEVELS[m[1]]
        before = line[start - 1]
        if not before.isalnum() and before != "_":  # a word boundary, as `\b` sees it
            return LEVELS[m[1]]
        m = search(head, start + 1)
    return "info"


def _json_level(line: str) -> str | None:
    """The level of a JSON object line; None when the line is not one.

    orjson parses a line in half the time; what it refuses (NaN, Infinity, lone
    surrogates, nesting past 1,024) or reads otherwise (an integer past 64 bits becomes
    a float) goes to the standard library's scanner, whose reading is the reference.
    """
    if _orjson_loads is not None:
        try:
            doc = _orjson_loads(line)
        except ValueError:
            pass
        else:
            if isinstance(doc, dict):
                level = _level_of_doc(doc)
                if level is not None:
                    return level
    try:
        doc, end = _scan_json(line, 0)
    except (StopIteration, ValueError):
        return None
    if end != len(line) and line[end:].strip(_JSON_SPACE):
        return None  # more after the object: not JSON
    if not isinstance(doc, dict):
        return None
    return _level_of_doc(doc, exact=True) or "info"


def _level_of_doc(doc: dict[str, Any], *, exact: bool = False) -> str | None:
    """The level a parsed object names; None when a float stands where a level is
    looked for and the parse was not `exact` (orjson turns a huge integer into one)."""
    for key in _JSON_LEVEL_KEYS:
        value = doc.get(key)
        if isinstance(value, str):
            return LEVELS.get(value.strip().lower(), "info")
        if isinstance(value, int) and not isinstance(value, bool):
            # A numeric `level` is what pino and bunyan write.
            return _numeric_level(value)
        if not exact and isinstance(value, float):
            return None
    return "info"


def _numeric_level(value: int) -> str:
    """pino/bunyan numbers (10 trace ... 60 fatal) or the same scale divided by ten."""
    if value >= 10:
        value //= 10  # bunyan/pino: 30 info, 40 warn, 50 error
    if value >= 4:
        return "error" if value >= 5 else "warn"
    return "info" if value >= 3 else "debug"


def tag_router(line: str) -> Out:
    """Route a line by its level: plain text (`... ERROR ...`) or JSON (`"level": "error"`).

    Blank lines are dropped.
    """
    if line[:1] == "{":
        level = _json_level(line)
        if level is not None:
            return ((level, line),)
    # `_plain_level` written out: the call would cost a fifth of the time.
    head = line if len(line) <= _LEVEL_HEAD_CHARS else line[:_LEVEL_HEAD_CHARS]
    head = head.lower() if head.isascii() else fold(head)
    m = _LEVEL_WORD.search(head)
    if m is None:
        if line.isspace() or not line:  # (a blank line holds no level word)
            return _NOTHING
        return (("info", line),)
    start = m.start()
    if start == 0 or line[start - 1] in _SPACE_OR_PUNCT:
        return ((LEVELS[m[1]], line),)
    return ((_plain_level(line), line),)  # the exact word-boundary test, and look on


def filter_errors(line: str) -> Out:
    """Pass error-level lines (error, fatal, critical...) on to `redact`; drop the rest."""
    if line[:1] == "{":
        level = _json_level(line)
        if level == "error":
            return (("redact", line),)
        if level is not None:
            return _NOTHING
    # `level_of` written out, as in tag_router.
    head = line if len(line) <= _LEVEL_HEAD_CHARS else line[:_LEVEL_HEAD_CHARS]
    head = head.lower() if head.isascii() else fold(head)
    m = _LEVEL_WORD.search(head)
    if m is None:
        return _NOTHING
    start = m.start()
    boundary = start == 0 or line[start - 1] in _SPACE_OR_PUNCT
    level = LEVELS[m[1]] if boundary else _plain_level(line)
    if level == "error":
        return (("redact", line),)
    return _NOTHING


# Where `keep` sends every line. The router forwards a wave of `keep` to this tag without
# calling it (processors.fastpath.forward): the two must say the same.
KEEP_TAG = "redact"


def keep(line: str) -> Out:
    """Pass the line on to `redact` unchanged."""
    return ((KEEP_TAG, line),)


def drop(line: str) -> Out:
    """Drop the line (counted in /stats, traced as ending here)."""
    return _NOTHING


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


__all__ = [
    "KEEP_TAG",
    "LEVELS",
    "Out",
    "Throttle",
    "drop",
    "filter_errors",
    "fold",
    "keep",
    "level_of",
    "mask_secrets",
    "redact_secrets",
    "tag_router",
]
