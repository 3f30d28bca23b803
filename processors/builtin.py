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
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

# What a processor returns here: zero or one (tag, line) pairs.
Out = tuple[tuple[str, str], ...]
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
# A secret word of `_SECRET` and the key/value separator after it, matched in lower-cased
# text (lower-casing changes no quote, space or separator); the substrings that find the
# words fast, with how far before the substring each word starts.
_SECRET_WORD = re.compile(
    r"""(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|auth)["']?\s*[:=]"""
)
_SECRET_HINTS = ("pass", "pwd", "secret", "token", "auth")
# `key` ends `apikey`, `api_key`, `accesskey`, `access-key`...: how far before it the word
# starts, by the character right before it.
_KEY_OFFSETS = {"_": (4, 7), "-": (4, 7), "i": (3,), "s": (6,)}
_SEPARATORS = frozenset("_.-")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}")
# After an Authorization header a bearer token of any length is a secret.
_BEARER_ANY = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+")
_AUTH_HEADER_END = re.compile(r"authorization\s*[:=]\s*\Z")

# The characters outside ASCII that the regex engine, ignoring case, takes for an ASCII
# letter: replaced before lower-casing, which keeps every character at its index.
_ODD_FOLDS = (("\u0130", "i"), ("\u0131", "i"), ("\u017f", "s"), ("\u212a", "k"))


def fold(text: str) -> str:
    """`text` lower-cased as the regex engine compares letters when it ignores case.

    Every character stays at its index, so a position found in the folded text is the
    same position in `text`.
    """
    if not text.isascii():
        for odd, letter in _ODD_FOLDS:
            if odd in text:
                text = text.replace(odd, letter)
    return text.lower()


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


def mask_secrets(text: str) -> str:
    """`text` with the values of secret fields and bearer tokens masked as `***`.

    The rules `redact_secrets` applies to a line, for text kept elsewhere (errors,
    dead letters, traces).
    """
    return redact_secrets(text)[0][1]


def redact_secrets(line: str) -> Out:
    """Mask values of password/token/api_key/secret fields and bearer tokens, then `end`."""
    if "=" not in line and ":" not in line and "earer" not in line and "EARER" not in line:
        return (("end", line),)
    folded = line.lower() if line.isascii() else fold(line)
    if (
        "pass" in folded
        or "pwd" in folded
        or "secret" in folded
        or "token" in folded
        or "auth" in folded
        or "key" in folded
    ):
        return (("end", _mask_secrets(line, folded)),)
    if "bearer" in folded:
        return (("end", _mask_bearers(line, folded)),)
    return (("end", line),)


def _mask_secrets(text: str, folded: str) -> str:
    """Mask the secret fields of `text`, then its bearer tokens (`folded` is `fold(text)`)."""
    words = _secret_words(folded)
    if words:
        masked = _mask_fields(text, _secret_starts(folded, words))
        if masked is not text:
            text, folded = masked, fold(masked)
    if "bearer" in folded:
        text = _mask_bearers(text, folded)
    return text


def _secret_words(folded: str) -> list[int]:
    """Where a secret word starts that a key/value separator follows (`token:`, `pwd=`)."""
    match = _SECRET_WORD.match
    words = []
    for hint in _SECRET_HINTS:
        at = folded.find(hint)
        while at >= 0:
            if match(folded, at) is not None:
                words.append(at)
            at = folded.find(hint, at + 1)
    at = folded.find("key")
    while at >= 0:
        for offset in _KEY_OFFSETS.get(folded[at - 1 : at], ()):
            if at >= offset and match(folded, at - offset) is not None:
                words.append(at - offset)
        at = folded.find("key", at + 1)
    return words


def _secret_starts(folded: str, words: list[int]) -> list[int]:
    """Every index where `_SECRET` could match, in order (and maybe some where it cannot).

    A match is a secret word preceded by at most three `name` + separator parts
    (`db_`, `x-api-`), and starts at a word boundary, so at the secret word or at the
    first letter of one of those parts.
    """
    if len(words) == 1 and folded[words[0] - 1 : words[0]] not in _SEPARATORS:
        return words  # no name part before the word: the common case
    starts = set(words)
    for word in words:
        for _ in range(3):
            if word < 2 or folded[word - 1] not in _SEPARATORS:
                break
            part = word - 1
            while part > 0 and folded[part - 1] in _NAME_CHARS:
                part -= 1
            if part == word - 1:
                break
            starts.add(part)
            word = part
    return sorted(starts)


def _mask_fields(text: str, starts: list[int]) -> str:
    """`_SECRET.sub(_mask, text)`, trying the pattern only at `starts`."""
    pieces: list[str] = []
    pos = 0
    for start in starts:
        if start < pos:
            continue
        m = _SECRET.match(text, start)
        if m is not None:
            pieces.append(text[pos:start])
            pieces.append(_mask(m))
            pos = m.end()
    if not pieces:
        return text
    pieces.append(text[pos:])
    return "".join(pieces)


def _mask_bearers(text: str, folded: str) -> str:
    """`_BEARER.sub(r"\\1 ***", text)`, trying the pattern only where `bearer` is."""
    pieces: list[str] = []
    pos = 0
    at = folded.find("bearer")
    while at >= 0:
        m = _BEARER.match(text, at)
        if m is None and _AUTH_HEADER_END.search(folded, 0, at):
            m = _BEARER_ANY.match(text, at)
        if m is not None:
            pieces.append(text[pos:at])
            pieces.append(m.group(1) + " ***")
            pos = m.end()
        at = folded.find("bearer", max(pos, at + 1))
    if not pieces:
        return text
    pieces.append(text[pos:])
    return "".join(pieces)


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
