"""`inboxd tap`: print the lines flowing through a running daemon, read from `GET /tap`.

One line per event, `path  file:line_no  text`, with the path's tags joined by `>`.
Standard library only, so that it runs wherever the daemon runs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import urllib.parse
from collections.abc import Iterator
from typing import Any, TextIO

DEFAULT_URL = "http://127.0.0.1:8000"
CONNECT_TIMEOUT_S = 10.0
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class TapError(Exception):
    """The daemon could not be reached or refused the tap."""


class OutputClosed(Exception):
    """Whoever reads the output went away (`inboxd tap | head -n 3`)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="inboxd tap",
        description="Print the lines flowing through a running inboxd (GET /tap).",
    )
    p.add_argument("--url", default=DEFAULT_URL, help=f"the daemon's address ({DEFAULT_URL})")
    p.add_argument("--tag", help="only lines whose path passes this tag")
    p.add_argument("--file", metavar="GLOB", help="only lines of input files matching GLOB")
    p.add_argument("--limit", metavar="N", type=int, help="stop after N lines")
    p.add_argument("--rate", metavar="N", type=int, default=100, help="lines per second (100)")
    return p


def tap_target(args: argparse.Namespace) -> tuple[urllib.parse.SplitResult, str]:
    """The parsed base URL and the request path with its query."""
    base = urllib.parse.urlsplit(args.url)
    if base.scheme not in ("http", "https") or not base.hostname:
        raise TapError(f"--url: expected http://HOST:PORT, got {args.url!r}")
    query = {"rate": args.rate, "tag": args.tag, "file": args.file, "limit": args.limit}
    params = urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
    return base, f"{base.path.rstrip('/')}/tap?{params}"


def open_stream(args: argparse.Namespace, token: str | None) -> http.client.HTTPResponse:
    base, target = tap_target(args)
    kind = http.client.HTTPSConnection if base.scheme == "https" else http.client.HTTPConnection
    conn = kind(base.hostname or "", base.port, timeout=CONNECT_TIMEOUT_S)
    headers = {"Accept": "text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request("GET", target, headers=headers)
        response = conn.getresponse()
    except OSError as exc:
        raise TapError(f"cannot reach {args.url}: {exc.strerror or exc}") from None
    if response.status != 200:
        detail = response.read(500).decode(errors="replace").strip()
        hint = " (set INBOXD_TOKEN)" if response.status == 401 else ""
        raise TapError(f"{args.url}/tap answered {response.status}: {detail}{hint}")
    if conn.sock is not None:
        conn.sock.settimeout(None)  # a quiet pipeline is not an error
    return response


def events(response: http.client.HTTPResponse) -> Iterator[tuple[str, str]]:
    """(event type, data) of each server-sent event until the stream ends."""
    kind, data = "message", list[str]()
    for raw in response:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line:
            if data:
                yield kind, "\n".join(data)
            kind, data = "message", list[str]()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif line.startswith("event:"):
            kind = line[6:].strip()


def format_event(doc: dict[str, Any]) -> str:
    path = ">".join(doc.get("path") or [])
    where = f"{doc.get('file')}:{doc.get('line_no')}"
    return f"{path}  {where}  {doc.get('line')}"


def print_events(response: http.client.HTTPResponse, out: TextIO, limit: int | None) -> int:
    printed = 0
    for kind, data in events(response):
        if kind == "skipped":
            print(f"... {data} lines skipped (over --rate)", file=sys.stderr)
            continue
        try:
            print(format_event(json.loads(data)), file=out, flush=True)
        except BrokenPipeError:
            raise OutputClosed from None
        printed += 1
        if limit is not None and printed >= limit:
            break
    return printed


def main(argv: list[str], out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.limit is not None and args.limit < 1:
        print("inboxd tap: --limit: must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if args.rate < 1:
        print("inboxd tap: --rate: must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        response = open_stream(args, os.environ.get("INBOXD_TOKEN"))
        print_events(response, out or sys.stdout, args.limit)
    except TapError as exc:
        print(f"inboxd tap: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
    except OutputClosed:
        return EXIT_OK
    except (OSError, http.client.HTTPException) as exc:
        print(f"inboxd tap: connection lost: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
