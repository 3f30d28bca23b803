"""End to end: `python daemon.py` as a subprocess over real folders, checked through its
outbox (its HTTP API is in test_daemon_api_e2e).

Most tests run a passthrough pipeline (every line goes to the outbox unchanged) so that
the outbox can be compared exactly with what was written.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from daemon_e2e_fixtures import append, wait_outbox
from daemon_fixtures import (
    Daemon,
    MakeDaemon,
    outbox_counter,
    pause,
    read_outbox,
    write_config,
)
from net_fixtures import wait_for


def lines_of(prefix: str, start: int, stop: int) -> list[str]:
    return [f"{prefix} line {i:06d}" for i in range(start, stop)]


def passthru(tmp_path: Path, **daemon: Any) -> Path:
    return write_config(tmp_path / "conf", **daemon)


# -- files in, lines out ----------------------------------------------------------------


def test_dropped_file_then_appends_in_rounds(tmp_path: Path, make_daemon: MakeDaemon) -> None:
    d = make_daemon(config=passthru(tmp_path)).start()
    expected = lines_of("a", 0, 500)
    (d.inbox / "app.log").write_text("".join(line + "\n" for line in expected))
    wait_outbox(d, "app.log", expected)
    for round_no in range(1, 5):
        more = lines_of("a", round_no * 1000, round_no * 1000 + 200 * round_no)
        append(d.inbox / "app.log", more)
        expected += more
        wait_outbox(d, "app.log", expected)
    nested = lines_of("n", 0, 50)
    append(d.inbox / "sub" / "dir" / "deep.log", nested)
    wait_outbox(d, "sub/dir/deep.log", nested)
    total = len(expected) + len(nested)
    stats = wait_for(lambda: (s := d.get("/stats"))["keep"]["count"] == total and s)
    assert stats["keep"]["errors"] == 0
    d.stop()


def test_logrotate_create_mode_while_writing(tmp_path: Path, make_daemon: MakeDaemon) -> None:
    """mv app.log app.log.1 + a new app.log, the writer still writing: nothing lost or doubled."""
    d = make_daemon(config=passthru(tmp_path)).start()
    log = d.inbox / "app.log"
    written: list[str] = []
    seq = 0
    fh = log.open("a", encoding="utf-8")
    for rotation in range(4):
        for _ in range(30):
            batch = lines_of(f"r{rotation}", seq, seq + 20)
            fh.write("".join(line + "\n" for line in batch))
            fh.flush()
            written += batch
            seq += 20
            pause(0.005)
        for n in range(rotation, 0, -1):
            os.rename(d.inbox / f"app.log.{n}", d.inbox / f"app.log.{n + 1}")
        os.rename(log, d.inbox / "app.log.1")
        # The writer has not reopened yet: these lines land in the renamed file.
        for _ in range(5):
            batch = lines_of(f"late{rotation}", seq, seq + 20)
            fh.write("".join(line + "\n" for line in batch))
            fh.flush()
            written += batch
            seq += 20
        log.touch()
        fh.close()
        fh = log.open("a", encoding="utf-8")
    fh.close()
    expected = Counter(written)
    assert len(expected) == len(written)
    wait_for(lambda: outbox_counter(d.outbox) == expected, 30, "every line once")
    assert "app.log" in read_outbox(d.outbox)
    d.stop()
    assert outbox_counter(d.outbox) == expected


def test_truncated_file_is_read_from_the_start(tmp_path: Path, make_daemon: MakeDaemon) -> None:
    d = make_daemon(config=passthru(tmp_path)).start()
    log = d.inbox / "app.log"
    first = lines_of("before", 0, 300)
    append(log, first)
    wait_outbox(d, "app.log", first)
    shorter = lines_of("after", 0, 10)
    with log.open("w", encoding="utf-8") as fh:  # O_TRUNC, then a few lines
        fh.write("".join(line + "\n" for line in shorter))
    wait_outbox(d, "app.log", first + shorter)
    more = lines_of("more", 0, 5)
    append(log, more)
    wait_outbox(d, "app.log", first + shorter + more)
    # copytruncate: emptied, then refilled past the old offset before anyone looks.
    longer = lines_of("refill", 0, 400)
    with log.open("w", encoding="utf-8") as fh:
        fh.write("".join(line + "\n" for line in longer))
    wait_outbox(d, "app.log", first + shorter + more + longer)
    d.stop()


def test_partial_last_line_held_completed_then_flushed_on_idle(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    timeout_s = 2
    d = make_daemon(config=passthru(tmp_path, partial_timeout=timeout_s)).start()
    log = d.inbox / "app.log"
    with log.open("ab") as fh:
        fh.write(b"first\npart")
    wrote_at = os.times().elapsed
    wait_outbox(d, "app.log", ["first"])
    with log.open("ab") as fh:
        fh.write(b"ial\nlast")
    held_for = os.times().elapsed - wrote_at
    if held_for >= timeout_s:
        pytest.skip(f"machine too slow: {held_for:.1f} s to see one line")
    wait_outbox(d, "app.log", ["first", "partial"])
    appended_at = os.times().elapsed
    wait_outbox(d, "app.log", ["first", "partial", "last"], timeout=timeout_s + 10)
    assert os.times().elapsed - appended_at >= timeout_s - 0.3, "partial line emitted early"
    append(log, ["next"])
    wait_outbox(d, "app.log", ["first", "partial", "last", "next"])
    d.stop()


def test_crlf_lines(tmp_path: Path, make_daemon: MakeDaemon) -> None:
    d = make_daemon(config=passthru(tmp_path)).start()
    (d.inbox / "win.log").write_bytes(b"one\r\ntwo\r\n\r\nthree\r\n")
    wait_outbox(d, "win.log", ["one", "two", "", "three"])
    d.stop()


# -- a hostile inbox --------------------------------------------------------------------


def _hostile_inbox(d: Daemon, outside: Path) -> dict[str, list[str]]:
    """Fill the inbox with things to refuse beside files to read; the expected outbox."""
    inbox = d.inbox
    os.mkfifo(inbox / "pipe.log")
    (outside / "secret.log").write_text("outside the inbox\n")
    (outside / "dir").mkdir()
    (outside / "dir" / "inner.log").write_text("outside dir\n")
    os.symlink(outside / "secret.log", inbox / "link.log")
    os.symlink(outside / "dir", inbox / "linkdir")
    for name in (".hidden", "x.tmp", "x.part", "x.swp", "x~"):
        (inbox / name).write_text(f"never read: {name}\n")
    (inbox / ".hiddendir").mkdir()
    (inbox / ".hiddendir" / "in.log").write_text("never read either\n")
    binary = bytes(range(256)) * 4 + b"\n\x00\x00\x01\n\xff\xfe\xfd\n"
    (inbox / "binary.log").write_bytes(binary)
    (inbox / "bad.log").write_bytes(b"caf\xe9 ok\nhalf \xe2\x82\nfine \xe2\x82\xac\n")
    big = b"before\n" + b"x" * (3 * 1024 * 1024) + b"\nafter 1\nafter 2\n"
    (inbox / "big.log").write_bytes(big)
    (inbox / "normal.log").write_text("normal 1\nnormal 2\n")
    binary_lines = [
        (part[:-1] if part.endswith(b"\r") else part).decode("utf-8", "replace")
        for part in binary.split(b"\n")[:-1]
    ]
    return {
        "normal.log": ["normal 1", "normal 2"],
        "big.log": ["before", "after 1", "after 2"],
        "bad.log": ["caf\ufffd ok", "half \ufffd", "fine \u20ac"],
        "binary.log": binary_lines,
    }


def test_hostile_inbox_is_survived(tmp_path: Path, make_daemon: MakeDaemon) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    d = make_daemon(config=passthru(tmp_path)).start()
    expected = _hostile_inbox(d, outside)
    wait_for(lambda: read_outbox(d.outbox) == expected, 30, f"outbox == {list(expected)}")
    errors = d.get("/errors")
    inbox_errors = {e["file"]: e for e in errors if e["processor"] == "inbox"}
    assert sum(e["processor"] == "inbox" for e in errors) == 2, errors
    assert sorted(inbox_errors) == ["big.log", "binary.log"], errors
    assert inbox_errors["big.log"]["line_no"] == 2
    assert inbox_errors["big.log"]["message"].startswith("LineTooLong: ")
    assert inbox_errors["binary.log"]["message"].startswith("NotText: binary.log: ")
    # Writing to what links point at, and to the FIFO's neighbours, reads nothing new.
    append(outside / "secret.log", ["outside again"])
    append(outside / "dir" / "inner.log", ["outside dir again"])
    append(outside / "dir" / "new.log", ["outside new"])
    append(d.inbox / "normal.log", ["normal 3"])
    expected["normal.log"].append("normal 3")
    wait_for(lambda: read_outbox(d.outbox) == expected, 20, "only normal 3 added")
    assert d.get("/health")["status"] == "ok"
    d.stop()
    assert read_outbox(d.outbox) == expected


def test_fifo_with_a_writer_does_not_block(tmp_path: Path, make_daemon: MakeDaemon) -> None:
    d = make_daemon(config=passthru(tmp_path)).start()
    fifo = d.inbox / "live.fifo.log"
    os.mkfifo(fifo)
    # A writer holding the FIFO open: reading it would block for ever.
    reader_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    writer_fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(writer_fd, b"in the pipe\n")
        append(d.inbox / "after.log", ["after the fifo"])
        wait_outbox(d, "after.log", ["after the fifo"])
        assert "live.fifo.log" not in read_outbox(d.outbox)
    finally:
        os.close(writer_fd)
        os.close(reader_fd)
    d.stop()


# -- restarts -----------------------------------------------------------------------------


def test_restart_reads_only_new_lines(tmp_path: Path, make_daemon: MakeDaemon) -> None:
    d = make_daemon(config=passthru(tmp_path)).start()
    a = lines_of("a", 0, 200)
    append(d.inbox / "a.log", a)
    wait_outbox(d, "a.log", a)
    d.stop()
    more_a = lines_of("a", 200, 300)
    append(d.inbox / "a.log", more_a)
    b = lines_of("b", 0, 150)
    append(d.inbox / "down" / "b.log", b)  # created while the daemon was down
    os.rename(d.inbox / "a.log", d.inbox / "a-renamed.log")  # renamed while down
    d.start()
    wait_outbox(d, "a.log", a + more_a)
    wait_outbox(d, "down/b.log", b)
    assert set(read_outbox(d.outbox)) == {"a.log", "down/b.log"}
    stats = wait_for(lambda: (s := d.get("/stats"))["keep"]["count"] == 250 and s)
    assert stats["keep"]["count"] == 250  # this run handled only the new lines
    d.stop()
    d.start()
    append(d.inbox / "a-renamed.log", ["after second restart"])
    wait_outbox(d, "a.log", [*a, *more_a, "after second restart"])
    d.stop()


def test_sigint_stops_cleanly(tmp_path: Path, make_daemon: MakeDaemon) -> None:
    d = make_daemon(config=passthru(tmp_path)).start()
    append(d.inbox / "a.log", ["one"])
    wait_outbox(d, "a.log", ["one"])
    d.stop(signal.SIGINT)


def daemon_with_backlog(
    tmp_path: Path, make_daemon: MakeDaemon, name: str, count: int
) -> tuple[Daemon, list[str]]:
    """A passthrough daemon, not started yet, whose inbox holds `count` lines of ~80 bytes."""
    d = make_daemon(config=passthru(tmp_path))
    expected = [f"{name} line {i:07d} " + "x" * 60 for i in range(count)]
    append(d.inbox / name, expected)
    return d, expected


def test_backlog_bigger_than_one_pass_is_caught_up_without_waiting_for_a_rescan(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    """A file present at start-up that needs several passes (8 MiB each) is read on."""
    d, expected = daemon_with_backlog(tmp_path, make_daemon, "big.log", 250_000)
    assert (d.inbox / "big.log").stat().st_size > 2 * 8 * 1024 * 1024
    d.start()
    wait_outbox(d, "big.log", expected, timeout=20.0)
    d.stop()


def test_stop_during_a_large_backlog_is_prompt_and_resumes_exactly(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    d, expected = daemon_with_backlog(tmp_path, make_daemon, "huge.log", 600_000)
    d.start()
    wait_for(lambda: outbox_counter(d.outbox).total() > 0, 20.0, "first lines out")
    d.stop(timeout=5.0)
    d.start()
    wait_outbox(d, "huge.log", expected, timeout=60.0)
    d.stop()


def test_inbox_removed_and_made_again_is_watched_again(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    """inotify watches the folder, not its name: the daemon must notice and watch anew."""
    import shutil

    d = make_daemon(config=passthru(tmp_path)).start()
    append(d.inbox / "before.log", ["one"])
    wait_outbox(d, "before.log", ["one"])
    shutil.rmtree(d.inbox)
    d.inbox.mkdir()
    pause(1.0)  # the daemon notices within its 0.2 s supervision tick
    append(d.inbox / "after.log", ["two", "three"])
    wait_outbox(d, "after.log", ["two", "three"], timeout=10.0)  # well before a 30 s rescan
    shutil.rmtree(d.inbox)
    wait_for(d.inbox.exists, 10.0, "the daemon makes the missing inbox again")
    append(d.inbox / "again.log", ["four"])
    wait_outbox(d, "again.log", ["four"], timeout=10.0)
    d.stop()
