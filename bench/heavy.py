"""A CPU-heavy pipeline for the workers benchmark: JSON in, two regexes, enrichment,
JSON out (10 to 20 µs a line on this class of machine)."""

from __future__ import annotations

import json
import re

_IP = re.compile(r"\b(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\b")
_TOOK = re.compile(r"took (\d+) ms")
_ZONES = {"10": "internal", "192": "lan", "172": "vpn"}


def enrich(line: str) -> list[tuple[str, str]]:
    """Parse, find the client address and the duration, add fields, write JSON again."""
    rec = json.loads(line)
    msg = rec.get("msg", "")
    ip = _IP.search(msg)
    took = _TOOK.search(msg)
    rec["zone"] = _ZONES.get(ip.group(1), "public") if ip else "none"
    ms = int(took.group(1)) if took else None
    rec["ms"] = ms
    rec["slow"] = ms is not None and ms > 500
    rec["service"] = rec.get("svc", "").upper()
    return [("end", json.dumps(rec, sort_keys=True))]


CONFIG = """\
[pipeline]
start = "heavy:enrich"
"""
