"""Masking secrets in text: the built-in `redact_secrets` processor, and `mask_secrets`,
which applies its rules to the copies of lines that records keep.

Like the other built-ins they run once per line, so the regular expressions, which scan
slowly when they must try every position, only run where a plain substring search found
a candidate. Re-exported by processors.builtin, where configs name them.
"""

from __future__ import annotations

import re

# What a built-in processor returns: zero or one (tag, line) pairs.
Out = tuple[tuple[str, str], ...]

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
