"""WebServer: uvicorn in a background thread, bound on the caller's thread."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import httpx
import pytest
from web_fixtures import make_context, no_thread_leak  # noqa: F401

from processors.errors import InboxdError
from web.app import create_app
from web.server import WebServer, WebServerError


def test_webserver_reports_the_real_port_and_stops_cleanly(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    server = WebServer(create_app(make_context(tmp_path)), host="127.0.0.1", port=0)
    server.start()
    assert server.is_alive()
    assert server.port > 0
    assert httpx.get(f"http://127.0.0.1:{server.port}/health").status_code == 200
    server.stop()
    server.stop()
    server.join(10)
    assert not server.is_alive()
    assert set(threading.enumerate()) - before == set()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{server.port}/health")


def test_webserver_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = WebServer(create_app(make_context(tmp_path)), host="127.0.0.1", port=port)
        with pytest.raises(WebServerError) as caught:
            server.start()
    assert isinstance(caught.value, InboxdError)
    assert str(port) in str(caught.value)
    assert not server.is_alive()
    server.stop()


def test_webserver_stop_before_start_is_harmless(tmp_path: Path) -> None:
    server = WebServer(create_app(make_context(tmp_path)), host="127.0.0.1", port=0)
    server.stop()
    server.join(0.1)
    assert not server.is_alive()


def test_webserver_refuses_an_address_not_on_this_machine(tmp_path: Path) -> None:
    server = WebServer(create_app(make_context(tmp_path)), host="192.0.2.1", port=0)
    with pytest.raises(WebServerError, match=r"cannot listen on 192\.0\.2\.1"):
        server.start()
    assert not server.is_alive()


def test_webserver_serves_on_a_host_name(tmp_path: Path) -> None:
    server = WebServer(create_app(make_context(tmp_path)), host="localhost", port=0)
    server.start()
    try:
        host = "[::1]" if ":" in server_address(server) else "127.0.0.1"
        assert httpx.get(f"http://{host}:{server.port}/health").status_code == 200
    finally:
        server.stop()
        server.join(10)
    assert not server.is_alive()


def server_address(server: WebServer) -> str:
    return str(server.address[0])
