"""The tailer and the file reader on real files: partial lines, over-long lines, CRLF,
invalid UTF-8, identity (truncation, inode reuse) and checkpoint expiry."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from reader_fixtures import Reader

from store.checkpoints import CheckpointStore, TrackedFile
from watcher.reading.tailer import (
    check_identity,
    fingerprint,
    read_chunk,
    scan,
)


def tracked_for(path: Path, rel: str = "a.log") -> TrackedFile:
    st = os.stat(path)
    now = time.time()
    return TrackedFile(st.st_dev, st.st_ino, 0, fingerprint(b""), rel, 0, 0, rel, now, now)


def read_all(
    path: Path, tracked: TrackedFile, *, max_line_bytes: int = 1 << 20, final: bool = False,
    chunk_bytes: int = 1 << 20,
) -> tuple[list[tuple[int, str]], list[tuple[int, int]]]:  # fmt: skip
    """Read like the reader does until nothing moves: numbered lines and skipped lines."""
    numbered: list[tuple[int, str]] = []
    skipped: list[tuple[int, int]] = []
    fd = os.open(path, os.O_RDONLY)
    try:
        while True:
            chunk = read_chunk(
                fd, tracked, max_line_bytes=max_line_bytes, final=final, chunk_bytes=chunk_bytes
            )
            numbered += [(chunk.first_line_no + i, line) for i, line in enumerate(chunk.lines)]
            skipped += chunk.skipped
            moved = chunk.end_offset != tracked.offset
            tracked.offset, tracked.lines = chunk.end_offset, chunk.end_lines
            tracked.state = "skipping" if chunk.skipping else "active"
            if not moved:
                return numbered, skipped
    finally:
        os.close(fd)


# -- read_chunk ---------------------------------------------------------------------------


def test_partial_line_is_held_until_final(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"one\ntw")
    tracked = tracked_for(path)
    assert read_all(path, tracked) == ([(1, "one")], [])
    assert tracked.offset == 4
    assert read_all(path, tracked) == ([], [])
    with path.open("ab") as fh:
        fh.write(b"o\nthr")
    assert read_all(path, tracked) == ([(2, "two")], [])
    assert read_all(path, tracked, final=True) == ([(3, "thr")], [])
    assert (tracked.offset, tracked.lines) == (path.stat().st_size, 3)
    with path.open("ab") as fh:
        fh.write(b"ee\n")
    assert read_all(path, tracked) == ([(4, "ee")], [])


@pytest.mark.parametrize("chunk_bytes", [16, 64, 1 << 20])
def test_over_long_line_is_skipped_and_numbers_stay_right(tmp_path: Path, chunk_bytes: int) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"short\n" + b"x" * 50 + b"\nafter\n" + b"y" * 11 + b"\nagain\n")
    tracked = tracked_for(path)
    numbered, skipped = read_all(path, tracked, max_line_bytes=10, chunk_bytes=chunk_bytes)
    assert numbered == [(1, "short"), (3, "after"), (5, "again")]
    assert [line_no for line_no, _ in skipped] == [2, 4]
    assert all(size > 10 for _, size in skipped)
    assert tracked.lines == 5


def test_line_of_exactly_max_bytes_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"z" * 10 + b"\n" + b"ok\n" * 10)
    numbered, skipped = read_all(path, tracked_for(path), max_line_bytes=10)
    assert skipped == []
    assert numbered[0] == (1, "z" * 10)
    assert len(numbered) == 11


def test_over_long_line_still_being_written(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"first\n" + b"x" * 40)
    tracked = tracked_for(path)
    numbered, skipped = read_all(path, tracked, max_line_bytes=10, chunk_bytes=16)
    assert numbered == [(1, "first")]
    assert [n for n, _ in skipped] == [2]
    assert tracked.state == "skipping"
    with path.open("ab") as fh:
        fh.write(b"x" * 40 + b"\nnext\n")
    numbered, skipped = read_all(path, tracked, max_line_bytes=10, chunk_bytes=16)
    assert (numbered, skipped) == ([(3, "next")], [])
    assert tracked.state == "active"


def test_invalid_utf8_is_not_measured_as_replacement_characters(tmp_path: Path) -> None:
    """60 undecodable bytes are a 60-byte line, not 180 bytes of U+FFFD."""
    path = tmp_path / "a.log"
    path.write_bytes(b"\xff" * 60 + b"\n" + b"ok\n" * 30)
    numbered, skipped = read_all(path, tracked_for(path), max_line_bytes=100)
    assert skipped == []
    assert numbered[0] == (1, "\ufffd" * 60)
    assert len(numbered) == 31


def test_crlf_and_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"a\r\nb\rc\r\n\r\ncaf\xe9\n\xf0\x9f\x98\x80 ok\nlast\r")
    numbered, _ = read_all(path, tracked_for(path), final=True)
    assert [line for _, line in numbered] == ["a", "b\rc", "", "caf\ufffd", "\U0001f600 ok", "last"]


# -- identity -------------------------------------------------------------------------------


def test_check_identity_same_truncated_replaced(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"hello world\n")
    tracked = tracked_for(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert check_identity(fd, tracked, 12) == "same"
        assert tracked.fp_len == 12
        tracked.offset = 12
        os.truncate(path, 3)
        assert check_identity(fd, tracked, 3) == "truncated"
        path.write_bytes(b"HELLO WORLD!\n")  # same inode, other content, past the offset
        assert check_identity(fd, tracked, 13) == "replaced"
    finally:
        os.close(fd)


def test_fingerprint_grows_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"ab")
    tracked = tracked_for(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert check_identity(fd, tracked, 2) == "same"
        assert tracked.fp_len == 2
        with path.open("ab") as fh:
            fh.write(b"c" * 5000)
        assert check_identity(fd, tracked, 5002) == "same"
        assert tracked.fp_len == 1024
    finally:
        os.close(fd)


# -- scan -------------------------------------------------------------------------------------


def test_scan_finds_only_eligible_regular_files(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "sub").mkdir(parents=True)
    (inbox / ".git").mkdir()
    outside = tmp_path / "outside.log"
    outside.write_text("x\n")
    for name in ("a.log", "sub/b.log", ".hidden", "x.tmp", "x.part", "x.swp", "x~", ".git/c"):
        (inbox / name).write_text("x\n")
    os.mkfifo(inbox / "fifo.log")
    os.symlink(outside, inbox / "link.log")
    os.symlink(tmp_path, inbox / "linkdir")
    found = scan(inbox)
    assert sorted(rel for rel, _ in found.values()) == ["a.log", "sub/b.log"]
    st = os.stat(inbox / "a.log")
    assert found[(st.st_dev, st.st_ino)][0] == "a.log"


# -- FileReader over real checkpoints and outbox ----------------------------------------------


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[Reader]:
    r = Reader(tmp_path)
    yield r
    r.reader.close()


def test_reader_truncation_reads_from_the_start(reader: Reader) -> None:
    log = reader.settings.inbox / "a.log"
    log.write_text("one\ntwo\nthree\n")
    reader.pass_()
    log.write_text("new\n")
    reader.pass_()
    assert reader.outbox("a.log") == ["one", "two", "three", "new"]
    assert reader.routed[-1] == ("a.log", 1, ["new"])


def replace_on_same_inode(reader: Reader, old: str, old_text: str, new: str, new_text: str) -> None:
    """Read `old`, delete it, write `new`, and make the checkpoint of `old` own new's inode.

    Whether the file system reused the inode or not, the reader then sees a new file on a
    reused inode.
    """
    inbox = reader.settings.inbox
    (inbox / old).write_text(old_text)
    reader.pass_()
    (inbox / old).unlink()
    (inbox / new).write_text(new_text)
    st = (inbox / new).stat()
    tracked = next(f for f in reader.reader.files.values() if f.path == old)
    reader.reader.files.pop(tracked.key)
    tracked.dev, tracked.ino = st.st_dev, st.st_ino
    reader.reader.files[tracked.key] = tracked
    reader.pass_()


def test_reader_inode_reuse_reads_the_new_file_from_the_start(reader: Reader) -> None:
    replace_on_same_inode(
        reader, "old.log", "old 1\nold 2\nold 3\nold 4\n",
        "new.log", "brand new 1\nbrand new 2\nbrand new 3\nbrand new 4\n",
    )  # fmt: skip
    assert reader.outbox("new.log") == [
        "brand new 1", "brand new 2", "brand new 3", "brand new 4",
    ]  # fmt: skip
    assert reader.outbox("old.log") == ["old 1", "old 2", "old 3", "old 4"]


def test_reader_rename_is_not_read_again(reader: Reader) -> None:
    inbox = reader.settings.inbox
    (inbox / "app.log").write_text("a\nb\n")
    reader.pass_()
    os.rename(inbox / "app.log", inbox / "app.log.1")
    (inbox / "app.log").write_text("c\n")
    with (inbox / "app.log.1").open("a") as fh:
        fh.write("late\n")
    reader.pass_()
    assert sorted(reader.outbox("app.log")) == ["a", "b", "c", "late"]
    assert reader.outbox("app.log.1") == []


def test_reader_resumes_from_checkpoints(reader: Reader) -> None:
    log = reader.settings.inbox / "a.log"
    log.write_text("one\ntwo\n")
    reader.pass_()
    reader.reopen()
    with log.open("a") as fh:
        fh.write("three\n")
    reader.pass_()
    assert reader.outbox("a.log") == ["one", "two", "three"]
    assert reader.routed[-1] == ("a.log", 3, ["three"])


def test_checkpoints_of_deleted_files_expire(reader: Reader) -> None:
    log = reader.settings.inbox / "a.log"
    log.write_text("one\n")
    reader.pass_()
    assert len(CheckpointStore(reader.settings.db_path).load()[0]) == 1
    log.unlink()
    r = reader.reader
    r.mark_gone(r.scan(), expiry_s=0)
    r.commit()
    files = CheckpointStore(reader.settings.db_path).load()[0]
    assert [f.state for f in files.values()] == ["gone"]
    r.mark_gone(r.scan(), expiry_s=0)
    r.commit()
    assert r.files == {}
    assert CheckpointStore(reader.settings.db_path).load()[0] == {}


def test_partial_of_a_deleted_file_is_read_and_not_due_for_ever(tmp_path: Path) -> None:
    """A file deleted while its last line waits is read to its end through the open
    descriptor, and must not keep the engine awake afterwards."""
    r = Reader(tmp_path, partial_timeout=0.0)
    try:
        log = r.settings.inbox / "a.log"
        log.write_text("one\ntw")
        r.pass_()
        assert r.reader.next_deadline() < float("inf")
        log.unlink()
        r.reader.process(r.reader.due_partials(), final=True)
        r.reader.commit()
        assert r.outbox("a.log") == ["one", "tw"]
        assert r.reader.due_partials() == []
        assert r.reader.next_deadline() == float("inf")
    finally:
        r.reader.close()


def test_skipped_line_is_an_inbox_error(tmp_path: Path) -> None:
    r = Reader(tmp_path, max_line_bytes=8)
    try:
        (r.settings.inbox / "a.log").write_text("ok\n" + "long" * 10 + "\nok again\n")
        r.pass_()
        assert r.outbox("a.log") == ["ok", "ok again"]
        errors = r.reader.telemetry.error_records()
        assert [(e.processor, e.file, e.line_no) for e in errors] == [("inbox", "a.log", 2)]
        assert errors[0].message.startswith("LineTooLong: ")
    finally:
        r.reader.close()


def test_lone_surrogate_from_a_processor_does_not_kill_the_reader(tmp_path: Path) -> None:
    r = Reader(tmp_path)
    r.route = lambda lines, file, first: (["\ud800" + line for line in lines], [], {})  # type: ignore[method-assign]
    r.reader.writer.handoff.route = r.route  # type: ignore[attr-defined]
    try:
        (r.settings.inbox / "a.log").write_text("x\n")
        r.pass_()
        assert r.outbox("a.log") == ["?x"]
    finally:
        r.reader.close()


def test_reader_shorter_new_file_on_a_reused_inode_gets_its_own_outbox(reader: Reader) -> None:
    replace_on_same_inode(
        reader, "long.log", "a fairly long first line\nand a second one\n", "short.log", "tiny\n"
    )
    assert reader.outbox("short.log") == ["tiny"]
    assert reader.outbox("long.log") == ["a fairly long first line", "and a second one"]
