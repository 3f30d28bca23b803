"""Secrets stay out of the stores (SPEC §3 `keep_lines`), end to end on a live daemon.

One daemon per `keep_lines` mode routes lines holding secrets into errors, dead letters
and traces; every place they are kept is then read the way a user would: /errors,
/history/errors, /deadletter, /traces, the SQLite tables and the JSON log.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_fixtures import Daemon
from net_fixtures import wait_for

LEAKY_MODULE = """\
def route(line):
    if line.startswith("fail"):
        raise ValueError(f"cannot parse {line}")
    yield ("nowhere" if line.startswith("lost") else "end"), line
"""
LINES = [
    "fail user=bob password=hunter2",
    "fail token=abc123 and more",
    "lost Authorization: Bearer xyz",
    "ok password=hunter2 token=abc123 Authorization: Bearer xyz",
]
SECRETS = {"password": "hunter2", "token": "abc123", "bearer": "Bearer xyz"}
MODES = ("default", "full", "none")


def run_daemon(root: Path, mode: str) -> dict[str, str]:
    """Run a daemon over LINES with `keep_lines = mode`; every store's text, by store."""
    conf = root / "conf"
    conf.mkdir(parents=True)
    (conf / "leaky.py").write_text(LEAKY_MODULE)
    keep = "" if mode == "default" else f'keep_lines = "{mode}"\n'
    (conf / "inboxd.toml").write_text(f'[daemon]\n{keep}\n[pipeline]\nstart = "leaky:route"\n')
    d = Daemon(root, config=conf / "inboxd.toml", extra_args=["--trace"], flush_interval=0.2)
    try:
        d.start()
        d.inbox.mkdir(exist_ok=True)
        (d.inbox / "a.log").write_text("\n".join(LINES) + "\n")
        wait_for(lambda: len(d.get("/deadletter")) == 3, 20, "three dead letters")
        wait_for(lambda: len(d.get("/history/errors")) == 3, 20, "errors flushed")
        wait_for(lambda: len(d.get("/traces")) == 4, 20, "four traces")
        found = {path: json.dumps(d.get(path)) for path in
                 ("/errors", "/history/errors", "/deadletter", "/traces")}  # fmt: skip
        d.stop()
    finally:
        d.kill()
    with sqlite3.connect(d.state_dir / "inboxd.db") as db:
        for table in ("errors", "deadletter", "traces"):
            found[table] = json.dumps(db.execute(f"SELECT * FROM {table}").fetchall())
    found["inboxd.log"] = (d.state_dir / "logs" / "inboxd.log").read_text()
    assert '"event": "error"' in found["inboxd.log"]
    return found


class StoresByMode(dict[str, dict[str, str]]):
    """Each mode's stores, from one daemon run per mode, made when first asked for."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        super().__init__()
        self.factory = factory

    def __missing__(self, mode: str) -> dict[str, str]:
        self[mode] = run_daemon(self.factory.mktemp(mode), mode)
        return self[mode]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> StoresByMode:
    return StoresByMode(tmp_path_factory)


def secret_cases() -> Iterator[object]:
    for mode in MODES:
        for name in SECRETS:
            yield pytest.param(mode, name, id=f"{mode}-{name}")


@pytest.mark.parametrize(("mode", "secret"), list(secret_cases()))
def test_secret_is_kept_only_with_keep_lines_full(
    stores: StoresByMode, mode: str, secret: str
) -> None:
    found = stores[mode]
    value = SECRETS[secret]
    for store in ("/errors", "/history/errors", "/deadletter", "/traces", "errors",
                  "deadletter", "traces"):  # fmt: skip
        assert (value in found[store]) is (mode == "full"), (store, found[store])
    # The JSON log never holds a line, only messages, masked unless "full".
    assert (value in found["inboxd.log"]) is (mode == "full" and secret != "bearer")


def test_none_keeps_no_line_text(stores: StoresByMode) -> None:
    found = stores["none"]
    for store in ("/errors", "/history/errors", "/deadletter", "/traces"):
        docs = json.loads(found[store])
        assert docs and all(doc["line"] in (None, "") for doc in docs), store
    for line in LINES:
        assert all(line not in text for text in found.values())
    assert json.loads(found["/errors"])[0]["message"] == "ValueError: cannot parse <line>"


def test_default_keeps_masked_lines(stores: StoresByMode) -> None:
    docs = json.loads(stores["default"]["/errors"])
    assert [doc["line"] for doc in docs] == [
        "fail user=bob password=***",
        "fail token=*** and more",
        "lost Authorization: Bearer ***",
    ]
    assert [doc["attempt"] for doc in docs] == [1, 1, 1]
    assert docs[0]["traceback"].startswith("Traceback (most recent call last):")
    assert "hunter2" not in docs[0]["traceback"]
