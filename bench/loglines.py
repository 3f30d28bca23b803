"""Realistic log lines of about 100 bytes, for the built-ins and the default pipeline.

Three kinds, mixed in a file as a service's log would mix them: plain text lines with
a timestamp, a level and key=value fields (the bulk); JSON lines as structured loggers
write them; and lines that carry a secret (a password, a token, a bearer header).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

LEVELS = ("INFO",) * 13 + ("WARN",) * 3 + ("ERROR",) * 2 + ("DEBUG",) * 2
PINO = {"INFO": 30, "WARN": 40, "ERROR": 50, "DEBUG": 20}
PATHS = ("/v1/users/42", "/v1/orders?page=3", "/health", "/v2/items/981/stock", "/login")
USERS = ("bob", "alice", "carol", "dave", "mallory")
# Shares of each kind in a mixed file.
MIX = (("plain", 0.87), ("json", 0.10), ("secret", 0.03))


def plain_line(i: int, rnd: random.Random) -> str:
    level = rnd.choice(LEVELS)
    return (
        f"2026-11-27T12:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z {level} api-{i % 7} "
        f"[req={rnd.getrandbits(32):08x}] GET {rnd.choice(PATHS)} status={rnd.choice((200, 404))} "
        f"took={rnd.randint(1, 999)}ms user={rnd.choice(USERS)}"
    )


def json_line(i: int, rnd: random.Random) -> str:
    level = rnd.choice(LEVELS)
    doc: dict[str, object] = {"level": PINO[level], "time": 1764244800000 + i}
    if rnd.random() < 0.5:
        doc = {"ts": f"2026-11-27T12:00:{i % 60:02d}Z", "level": level.lower()}
    doc.update(svc=f"api-{i % 7}", msg=f"GET {rnd.choice(PATHS)}", status=200)
    return json.dumps(doc, separators=(",", ":"))


def secret_line(i: int, rnd: random.Random) -> str:
    level = rnd.choice(LEVELS)
    secret = rnd.choice(
        (
            f"password={rnd.getrandbits(40):x}",
            f"token: {rnd.getrandbits(64):x}",
            f"Authorization: Bearer {rnd.getrandbits(80):x}",
            f'db_password="p {rnd.getrandbits(20):x}"',
            f"api_key={rnd.getrandbits(48):x}",
        )
    )
    return (
        f"2026-11-27T12:00:{i % 60:02d}.{i % 1000:03d}Z {level} auth-{i % 3} login "
        f"from=10.0.{i % 256}.{i % 97} client=web {secret} ok"
    )


KINDS: dict[str, Callable[[int, random.Random], str]] = {
    "plain": plain_line,
    "json": json_line,
    "secret": secret_line,
}


def lines_of(kind: str, n: int, seed: int = 7) -> list[str]:
    """`n` lines of one kind, or of the mix (`kind` = "mix")."""
    rnd = random.Random(seed)
    if kind != "mix":
        return [KINDS[kind](i, rnd) for i in range(n)]
    names = [name for name, _ in MIX]
    weights = [share for _, share in MIX]
    return [KINDS[rnd.choices(names, weights)[0]](i, rnd) for i in range(n)]


def write_mix(path: Path, n: int, seed: int = 7) -> None:
    """A log file of `n` mixed lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        for start in range(0, n, 10_000):
            block = lines_of("mix", min(10_000, n - start), seed + start)
            fh.write("\n".join(block) + "\n")
