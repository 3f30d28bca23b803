"""The http sink's sender: lines a second from the spool to a loopback receiver.

Usage: python bench/bench_httpsink.py [--lines 200000] [--batch 500] [--in-process]
Spools `--lines` lines into a fresh state database (timed too: it is the processing
thread's share), then drains them with one HttpSender in this process, POSTing NDJSON
batches of `--batch` lines. The receiver (http.server's ThreadingHTTPServer, HTTP/1.1,
answering 200 to every POST) runs as a subprocess by default, so that it does not share
this process's GIL; `--in-process` runs it on a thread here instead. Figures, not
assertions; the count of lines the receiver took is checked against the spool.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from sinks import spool  # noqa: E402
from sinks.http import HttpSpec, http_sender  # noqa: E402
from store.db import connect, ensure_schema, transaction  # noqa: E402
from store.live.sinkboard import SinkBoard  # noqa: E402

SPOOL_CHUNK = 5_000  # lines a transaction, about what one commit of the engine holds


class Receiver(BaseHTTPRequestHandler):
    """Counts the lines and keys it is sent; GET returns the counts as JSON."""

    protocol_version = "HTTP/1.1"
    lines = 0
    posts = 0
    keys: set[str] = set()  # noqa: RUF012
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with Receiver.lock:
            Receiver.lines += body.count(b"\n")
            Receiver.posts += 1
            Receiver.keys.add(self.headers["Idempotency-Key"])
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        with Receiver.lock:
            doc = {"lines": Receiver.lines, "posts": Receiver.posts, "keys": len(Receiver.keys)}
        data = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def serve() -> None:
    """The receiver subprocess: print the port, serve until killed."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    print(server.server_port, flush=True)
    server.serve_forever()


def fill(db_path: Path, n: int) -> float:
    """Spool n lines of about 60 bytes, SPOOL_CHUNK a transaction; returns seconds."""
    db = connect(db_path)
    ensure_schema(db)
    t0 = time.perf_counter()
    for start in range(0, n, SPOOL_CHUNK):
        rows = [
            ("app/service.log", i, f"2026-11-27T12:00:00Z INFO service-{i % 17} request {i} ok")
            for i in range(start, min(start + SPOOL_CHUNK, n))
        ]
        with transaction(db):
            spool.spool_lines(db.conn, "hook", rows)
    elapsed = time.perf_counter() - t0
    db.close()
    return elapsed


def stats(port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as resp:
        doc: dict[str, int] = json.loads(resp.read())
        return doc


def run(lines: int, batch: int, in_process: bool) -> None:
    out = HERE / "out" / "httpsink"
    shutil.rmtree(out, ignore_errors=True)
    db_path = out / "var" / "inboxd.db"
    spooled_s = fill(db_path, lines)
    print(f"spool: {lines} lines in {spooled_s:.2f} s ({lines / spooled_s:,.0f} lines/s)")
    proc: subprocess.Popen[str] | None = None
    server: ThreadingHTTPServer | None = None
    try:
        if in_process:
            server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            port = server.server_port
        else:
            proc = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE,
                                    text=True)  # fmt: skip
            assert proc.stdout is not None
            port = int(proc.stdout.readline())
        spec = HttpSpec("hook", "http", url=f"http://127.0.0.1:{port}/ingest", batch=batch)
        board = SinkBoard((spec,))
        t0 = time.perf_counter()
        done = http_sender(spec, board, db_path).drain(600.0)
        elapsed = time.perf_counter() - t0
        got = stats(port)
    finally:
        if server is not None:
            server.shutdown()
        if proc is not None:
            proc.kill()
            proc.wait()
    where = "this process" if in_process else "a subprocess"
    print(f"receiver: ThreadingHTTPServer in {where}; batch {batch}")
    print(f"delivered: {got['lines']} lines in {got['posts']} POSTs ({got['keys']} keys), "
          f"{elapsed:.2f} s, drained={done}")  # fmt: skip
    print(
        f"http sink: {got['lines'] / elapsed:,.0f} lines/s, {got['posts'] / elapsed:,.0f} POSTs/s"
    )
    if got["lines"] != lines:
        print(f"MISMATCH: spooled {lines}, received {got['lines']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=200_000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--in-process", action="store_true")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve()
    else:
        run(args.lines, args.batch, args.in_process)


if __name__ == "__main__":
    main()
