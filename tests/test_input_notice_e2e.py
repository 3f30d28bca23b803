"""Nothing about input is silent, through `daemon.py`: files the rules exclude are listed
in /files with the rule and logged once; a file that is not text is delivered and
flagged once as an error of `inbox`."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from daemon_fixtures import Daemon, MakeDaemon, outbox_counter, outbox_files, write_config
from net_fixtures import wait_for


def excluded_rows(d: Daemon) -> dict[str, dict[str, Any]]:
    return {f["path"]: f for f in d.get("/files") if f["state"] == "excluded"}


def logged(d: Daemon, event: str) -> Counter[str]:
    """How many times each file was named by a log line of `event` (the JSON log)."""
    counts: Counter[str] = Counter()
    for line in (d.state_dir / "logs" / "inboxd.log").read_text().splitlines():
        doc = json.loads(line)
        if doc.get("event") == event:
            counts[doc["file"]] += 1
    return counts


def drop_folder(d: Daemon, staging: Path, name: str, files: dict[str, bytes]) -> None:
    """Move a folder holding `files` into the inbox: a folder event makes a full scan."""
    folder = staging / name
    folder.mkdir(parents=True)
    for rel, data in files.items():
        (folder / rel).write_bytes(data)
    folder.rename(d.inbox / name)


def test_excluded_files_are_listed_with_their_rule_and_logged_once(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    conf = write_config(tmp_path / "conf", exclude=["*.gz", "*.debug"])
    d = make_daemon(config=conf)
    (d.inbox / "sub").mkdir(parents=True)
    (d.inbox / "app.log.1.gz").write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)) + b"\n")
    (d.inbox / "sub" / "trace.debug").write_text("debug line\n")
    (d.inbox / "app.log").write_text("kept\n")
    (d.inbox / ".hidden.gz").write_text("never listed\n")
    d.start()
    wait_for(lambda: outbox_counter(d.outbox) == Counter(["kept"]), 20, "app.log delivered")
    rows = wait_for(lambda: len(excluded_rows(d)) == 2 and excluded_rows(d), 10, "2 excluded")
    gz, debug = rows["app.log.1.gz"], rows["sub/trace.debug"]
    assert (gz["rule"], gz["offset"], gz["lag"], gz["size"]) == ('exclude "*.gz"', 0, 0, 261)
    assert (debug["rule"], debug["offset"], debug["lines"]) == ('exclude "*.debug"', 0, 0)
    assert gz["reason"] == 'excluded by exclude "*.gz"'

    # Two more full scans: the first files are not logged again, new ones are.
    staging = tmp_path / "staging"
    drop_folder(d, staging, "more", {"x.gz": b"x\n"})
    wait_for(lambda: "more/x.gz" in excluded_rows(d), 10, "a scan lists more/x.gz")
    drop_folder(d, staging, "again", {"y.debug": b"y\n"})
    wait_for(lambda: "again/y.debug" in excluded_rows(d), 10, "a scan lists again/y.debug")
    assert logged(d, "file_excluded") == Counter(
        ["app.log.1.gz", "sub/trace.debug", "more/x.gz", "again/y.debug"]
    )
    # Nothing was read from them: no outbox file, no line.
    assert [p.name for p in outbox_files(d.outbox)] == ["app.log"]
    assert outbox_counter(d.outbox) == Counter(["kept"])
    d.stop()


def inbox_errors(d: Daemon) -> list[dict[str, Any]]:
    return [e for e in d.get("/errors") if e["processor"] == "inbox"]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_file_that_is_not_text_is_delivered_and_flagged_once(
    tmp_path: Path, make_daemon: MakeDaemon, workers: int
) -> None:
    d = make_daemon(config=write_config(tmp_path / "conf", workers=workers)).start()
    (d.inbox / "app").mkdir()
    (d.inbox / "app" / "x.bin").write_bytes(b"rec\x00one\nrec\x00two\n")
    (d.inbox / "notes.log").write_bytes("café déjà vu\nnaïve résumé\n".encode())
    first = ["rec\x00one", "rec\x00two", "café déjà vu", "naïve résumé"]
    wait_for(lambda: outbox_counter(d.outbox) == Counter(first), 20, "all lines delivered")
    errors = wait_for(lambda: inbox_errors(d), 10, "an inbox error")
    # More of the same file is not looked at again.
    with (d.inbox / "app" / "x.bin").open("ab") as fh:
        fh.write(b"rec\x00three\n")
    wait_for(lambda: outbox_counter(d.outbox)["rec\x00three"] == 1, 20, "the appended line")
    errors = inbox_errors(d)
    assert len(errors) == 1, errors
    assert errors[0]["file"] == "app/x.bin"
    assert errors[0]["message"].startswith("NotText: app/x.bin: ")
    assert "(2 NUL bytes)" in errors[0]["message"]
    assert logged(d, "file_not_text") == Counter(["app/x.bin"])
    d.stop()
