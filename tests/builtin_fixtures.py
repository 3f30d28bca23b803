"""Test lines for the built-in processors: the documented cases and a line generator.

The unit tests check the cases one by one; the equivalence tests feed the same cases and
the generated lines to the fast built-ins and to their reference versions; the router's
forwarding test routes generated lines.
"""

from __future__ import annotations

import json
import random

import builtin_reference as ref

PLAIN = {
    "error": "2026-11-27T12:00:00Z ERROR db timeout",
    "error-lower": "2026-11-27 12:00:00,123 error [db] timeout",
    "fatal": "2026-11-27T12:00:00Z FATAL out of memory",
    "critical": "Nov 27 12:00:00 host app[12]: CRITICAL disk gone",
    "warn": "2026-11-27T12:00:00Z WARN slow query",
    "warning": "WARNING:root:deprecated call",
    "info": "2026-11-27T12:00:00Z INFO started",
    "notice": "[notice] config reloaded",
    "debug": "2026-11-27T12:00:00Z DEBUG cache hit",
    "trace": "12:00:00 TRACE enter f()",
    "no level": "GET /index.html 200 512",
    "first level word wins": "2026-11-27 INFO request failed with error 500",
    "level word inside another word": "errors=0 warnings=0 informational",
}
PLAIN_TAG = {
    "error": "error",
    "error-lower": "error",
    "fatal": "error",
    "critical": "error",
    "warn": "warn",
    "warning": "warn",
    "info": "info",
    "notice": "info",
    "debug": "debug",
    "trace": "debug",
    "no level": "info",
    "first level word wins": "info",
    "level word inside another word": "info",
}


JSON = [
    ('{"level":"warn"}', "warn"),
    ('{"level":"ERROR","msg":"x"}', "error"),
    ('{"level": " Info "}', "info"),
    ('{"severity":"critical"}', "error"),
    ('{"levelname":"WARNING","message":"m"}', "warn"),
    ('{"log.level":"debug"}', "debug"),
    ('{"lvl":"err"}', "error"),
    ('{"level":"shouting"}', "info"),
    ('{"msg":"no level here"}', "info"),
    ('{"level":"info","msg":"ERROR in the message is not the level"}', "info"),
    ('{"level":null,"severity":"warn"}', "warn"),
    ('{"level":true}', "info"),
    ("{not json but ERROR}", "error"),
    ('["ERROR", "array"]', "error"),
]


REDACT = {
    "password=": ("login password=hunter2 user=bob", "login password=*** user=bob"),
    "token:": ("token: abc123", "token: ***"),
    "api_key": ("api_key=XYZ-1;next=2", "api_key=***;next=2"),
    "api-key header": ("X-Api-Key: 0123abcd", "X-Api-Key: ***"),
    "Bearer": (
        "Authorization: Bearer abcdef123456.xyz",
        "Authorization: Bearer ***",
    ),
    "BEARER upper": ("BEARER abcdefghijk", "BEARER ***"),
    "json password": (
        '{"password": "s3cret", "user": "bob"}',
        '{"password": "***", "user": "bob"}',
    ),
    "json password with spaces": ('{"password": "my secret pass"}', '{"password": "***"}'),
    "single quotes": ("pwd='a b c' next", "pwd='***' next"),
    "access_token": ("access_token=abc123&x=1", "access_token=***&x=1"),
    "db_password": ("db_password=hunter2", "db_password=***"),
    "client_secret": ("client_secret: s3", "client_secret: ***"),
    "secret=": ("secret=abc", "secret=***"),
    "two secrets": ("password=a token=b", "password=*** token=***"),
    "unterminated quote": ('password="abc', 'password="***'),
    "nothing secret": ("tokens=5 passwordless=1 user=bob", "tokens=5 passwordless=1 user=bob"),
    "short bearer kept": ("bearer abc", "bearer abc"),
    "no separators": ("just words here", "just words here"),
}


LEVEL_WORDS = [*ref.LEVELS, "errors", "warnings", "informational", "inf", "debugger"]
SECRET_KEYS = [
    "password", "passwd", "pwd", "secret", "token", "api_key", "apikey", "api-key",
    "access_key", "accesskey", "access-key", "auth", "db_password", "client_secret",
    "X-Api-Key", "access_token", "a.b.c.token", "a.b.c.d.token", "x_y-z.pwd", "tokens",
    "a_b_c_token", "a_b_c_d_token", "a_b.c_d_e_pwd", "x__secret", "_auth",
    "passwordless", "authority", "author", "monkey", "key", "secretary", "my_auth_token",
]  # fmt: skip
ODD = ["\u0130", "\u0131", "\u017f", "\u212a", "é", "Σ", "ß", "日本", "🙂", "\u00a0", "\u2028"]
FRAGMENTS = [
    "2026-11-27T12:00:00Z", "2026-11-27 12:00:00,123", "Nov 27 12:00:00 host app[12]:",
    "[notice]", "WARNING:root:", "GET /index.html 200 512", "user=bob", "took=17ms",
    "status: 200", "Authorization: Bearer abcdef123456.xyz", "bearer abc", "BEARER",
    "Bearer\tQWERTYUIOPASDF", "postgres://admin:hunter2@db:5432/app",
    "https://u:p%40ss@example.com/x?token=abc&x=1", "'a b c'", '"my secret pass"', '"abc',
    "\\\"", "=", ":", ";", ",", "&", "-", "_", ".", "{", "}", "\t", "  ", "x" * 170,
]  # fmt: skip


def random_secret(rnd: random.Random) -> str:
    """A secret field in one of the spellings, separators and quotings logs use."""
    key = rnd.choice(SECRET_KEYS)
    key = rnd.choice([key, key.upper(), key.title(), key.replace("s", "\u017f")])
    quote = rnd.choice(["", "", '"', "'"])
    sep = rnd.choice(["=", ": ", ":", " = ", "=\t"])
    value = rnd.choice(["hunter2", "s3cr3t-v@l", "a b c", "", "x" * 40, 'q"uo\\"te', "é€"])
    vq = rnd.choice(["", '"', "'"])
    return f"{quote}{key}{quote}{sep}{vq}{value}{vq}"


def random_json(rnd: random.Random) -> str:
    """A JSON log line with two level keys, sometimes cut short or wrapped."""
    doc: dict[str, object] = {"ts": "2026-11-27T12:00:00Z", "msg": rnd.choice(FRAGMENTS)}
    for key in rnd.sample(["level", "severity", "lvl", "log.level", "levelname"], 2):
        doc[key] = rnd.choice(
            [rnd.choice(LEVEL_WORDS).upper(), " warn ", 30, 50, 4, 10.0, True, None, [1]]
        )
    text = json.dumps(doc, ensure_ascii=rnd.random() < 0.5)
    return rnd.choice([text, text + " ", text + " x", text[:-1], "[" + text + "]"])


def random_line(rnd: random.Random) -> str:
    """A generated log line: level words, secrets, odd unicode and fragments, or JSON."""
    parts: list[str] = []
    for _ in range(rnd.randint(0, 9)):
        kind = rnd.random()
        if kind < 0.25:
            word = rnd.choice(LEVEL_WORDS)
            odd = word.replace("i", rnd.choice("\u0130\u0131i"))
            parts.append(rnd.choice([word, word.upper(), word.title(), f"[{word}]", odd]))
        elif kind < 0.45:
            parts.append(random_secret(rnd))
        elif kind < 0.55:
            parts.append(rnd.choice(ODD) + rnd.choice(LEVEL_WORDS + SECRET_KEYS))
        else:
            parts.append(rnd.choice(FRAGMENTS))
    joiner = rnd.choice([" ", " ", "", "&", ", ", "\t", "="])
    return random_json(rnd) if rnd.random() < 0.15 else joiner.join(parts)
