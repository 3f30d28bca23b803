"""A loopback HTTP receiver for the http sink's tests, told how to answer each request."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple


class Request(NamedTuple):
    key: str
    body: bytes
    headers: dict[str, str]
    all_keys: list[str]  # every Idempotency-Key header of the request


class Receiver:
    """A loopback HTTP/1.1 receiver told how to answer its next requests.

    `plan` holds one answer per request, taken in order; with none left it answers 200.
    An answer is ("status", code, headers), ("drop",) (close without answering),
    ("sleep", seconds) (then 200, too late for the sender) or ("hold",) (never answer).
    """

    def __init__(self) -> None:
        self.plan: list[tuple[Any, ...]] = []
        self.requests: list[Request] = []
        self.accepted: list[Request] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 5

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                keys = self.headers.get_all("Idempotency-Key") or []
                req = Request(keys[0] if keys else "", body, dict(self.headers), keys)
                with receiver.lock:
                    receiver.requests.append(req)
                    answer = receiver.plan.pop(0) if receiver.plan else ("status", 200, {})
                receiver.answer(self, answer, req)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                return None  # a sender that hung up on a late answer

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/ingest?from=test"
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.05,), name="receiver"
        )
        self.thread.start()

    def answer(self, h: BaseHTTPRequestHandler, answer: tuple[Any, ...], req: Request) -> None:
        kind = answer[0]
        if kind == "drop":
            h.close_connection = True
            return
        if kind == "hold":
            self.release.wait(30)
            h.close_connection = True
            return
        code, headers = (answer[1], answer[2]) if kind == "status" else (200, {})
        if kind == "sleep":
            self.release.wait(answer[1])
        if 200 <= code < 300:
            with self.lock:
                self.accepted.append(req)
        h.send_response(code)
        for name, value in headers.items():
            h.send_header(name, value)
        h.send_header("Content-Length", "2")
        h.end_headers()
        h.wfile.write(b"{}")

    def got(self, n: int) -> bool:
        with self.lock:
            return len(self.requests) >= n

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def check_keys(self) -> None:
        """A key never names two different bodies."""
        bodies: dict[str, set[bytes]] = {}
        for r in self.requests:
            bodies.setdefault(r.key, set()).add(r.body)
        assert all(len(b) == 1 for b in bodies.values()), "one key, two bodies"
