"""Faults of the world at the reader level, produced for real: odd names, blocked outbox
paths, reused inodes, deleted and copied files, consumers that move outbox files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from reader_fixtures import Reader, all_outbox_lines, append_lines

from store.checkpoints import CheckpointStore
from watcher.reading.reader import Found


def lines(prefix: str, start: int, stop: int) -> list[str]:
    return [f"{prefix} line {i:06d}" for i in range(start, stop)]


def test_a_name_that_is_not_utf8_is_read_kept_losslessly_and_shown_escaped(
    tmp_path: Path,
) -> None:
    r = Reader(tmp_path)
    inbox = os.fsencode(r.settings.inbox)
    with open(inbox + b"/bad\xffname.log", "wb") as fh:
        fh.write(b"odd one\nodd two\n")
    (r.settings.inbox / "good.log").write_text("good\n")
    try:
        r.pass_()
        assert r.outbox("good.log") == ["good"]
        with open(os.fsencode(r.settings.outbox) + b"/bad\xffname.log", "rb") as fh:
            assert fh.read() == b"odd one\nodd two\n"
        shown = {s.path for s in r.reader.statuses()}
        assert shown == {"bad\\xffname.log", "good.log"}
        r.reopen()
        with open(inbox + b"/bad\xffname.log", "ab") as fh:
            fh.write(b"odd three\n")
        r.routed.clear()
        r.pass_()
        assert r.routed == [("bad\\xffname.log", 3, ["odd three"])]
    finally:
        r.reader.close()


def test_an_outbox_path_that_cannot_be_made_stops_that_file_only(tmp_path: Path) -> None:
    r = Reader(tmp_path)
    (r.settings.outbox).mkdir(parents=True)
    (r.settings.outbox / "a").write_text("a file where a folder is wanted\n")
    (r.settings.inbox / "a").mkdir()
    append_lines(r.settings.inbox / "a" / "x.log", ["blocked"])
    append_lines(r.settings.inbox / "good.log", ["flows"])
    try:
        r.pass_()
        assert r.outbox("good.log") == ["flows"]
        status = {s.path: s for s in r.reader.statuses()}
        assert status["a/x.log"].state == "error"
        reason = status["a/x.log"].reason or ""
        assert reason.startswith("outbox a/x.log: ") and "Error" in reason
        assert status["good.log"].state == "active"
        errors = [e for e in r.telemetry.error_records() if e.processor == "inbox"]
        assert len(errors) == 1 and errors[0].file == "a/x.log"
        r.pass_()  # the same fault again: not reported twice
        assert len([e for e in r.telemetry.error_records() if e.processor == "inbox"]) == 1
        (r.settings.outbox / "a").rename(r.settings.outbox / "a.moved")
        r.pass_()
        assert r.outbox("a/x.log") == ["blocked"]
        assert {s.path: s.state for s in r.reader.statuses()}["a/x.log"] == "active"
    finally:
        r.reader.close()


def test_a_name_too_long_for_the_outbox_is_a_fault_of_that_file(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*(["o" * 250] * 15))
    r = Reader(tmp_path)
    r.settings = type(r.settings)(
        inbox=r.settings.inbox, outbox=deep, state_dir=r.settings.state_dir
    )
    r.reader.close()
    r.reader = r.open()
    rel = Path("d" * 250) / ("f" * 200)
    (r.settings.inbox / rel.parent).mkdir()
    append_lines(r.settings.inbox / rel, ["too long"])
    append_lines(r.settings.inbox / "ok.log", ["fine"])
    try:
        r.pass_()
        status = {s.path: s for s in r.reader.statuses()}
        assert status[rel.as_posix()].state == "error"
        assert "File name too long" in (status[rel.as_posix()].reason or "")
        assert (deep / "ok.log").read_text() == "fine\n"
    finally:
        r.reader.close()


def test_a_reused_inode_with_the_same_header_is_read_from_the_start(tmp_path: Path) -> None:
    r = Reader(tmp_path)
    log = r.settings.inbox / "a.log"
    header = lines("header", 0, 100)  # well over the first KiB
    append_lines(log, [*header, "old one", "old two"])
    try:
        r.pass_()
        with open(log, "r+") as fh:  # same inode, same first KiB, other content after
            fh.write("".join(x + "\n" for x in [*header, "new one", "new two", "new three"]))
        r.routed.clear()
        r.pass_()
        assert r.routed and r.routed[0][1] == 1
        assert r.routed[0][2] == [*header, "new one", "new two", "new three"]
    finally:
        r.reader.close()


def test_a_file_deleted_while_being_read_is_read_to_its_end(tmp_path: Path) -> None:
    r = Reader(tmp_path)
    log = r.settings.inbox / "big.log"
    written = lines("big", 0, 700_000)  # about 11 MB: more than one pass's budget
    append_lines(log, written)
    try:
        again = r.reader.process(r.reader.scan().values(), final=False)
        assert again, "the file should need a second pass"
        log.unlink()
        while again:
            again = r.reader.process(again, final=False)
        r.reader.commit()
        assert r.outbox("big.log") == written
    finally:
        r.reader.close()


def test_copytruncate_copy_is_read_from_the_checkpoint(tmp_path: Path) -> None:
    r = Reader(tmp_path)
    log = r.settings.inbox / "app.log"
    append_lines(log, lines("a", 0, 100))
    try:
        r.pass_()
        append_lines(log, lines("a", 100, 150))  # not read yet when logrotate copies
        shutil.copyfile(log, r.settings.inbox / "app.log.1")
        os.truncate(log, 0)
        append_lines(log, lines("a", 150, 160))
        r.pass_()
        assert sorted(r.outbox("app.log")) == lines("a", 0, 160)
        assert all_outbox_lines(r) == lines("a", 0, 160)
    finally:
        r.reader.close()


def test_copy_seen_before_the_truncation_is_not_read_twice(tmp_path: Path) -> None:
    r = Reader(tmp_path)
    log = r.settings.inbox / "app.log"
    append_lines(log, lines("a", 0, 100))
    try:
        r.pass_()
        append_lines(log, lines("a", 100, 120))
        shutil.copyfile(log, r.settings.inbox / "app.log-20261201")
        r.pass_()  # the original is read first, then its copy from that checkpoint on
        os.truncate(log, 0)
        append_lines(log, lines("a", 120, 130))
        r.pass_()
        assert all_outbox_lines(r) == lines("a", 0, 130)
    finally:
        r.reader.close()


def test_files_with_the_same_content_and_unrelated_names_are_both_read(tmp_path: Path) -> None:
    r = Reader(tmp_path)
    append_lines(r.settings.inbox / "one.log", ["same", "content"])
    try:
        r.pass_()
        append_lines(r.settings.inbox / "two.log", ["same", "content"])
        r.pass_()
        assert r.outbox("two.log") == ["same", "content"]
    finally:
        r.reader.close()


def test_compressed_files_are_not_read_and_globs_choose(tmp_path: Path) -> None:
    r = Reader(tmp_path)
    (r.settings.inbox / "app.log.2.gz").write_bytes(b"\x1f\x8b\x08\x00garbage\n")
    append_lines(r.settings.inbox / "app.log", ["text"])
    try:
        r.pass_()
        shown = {s.path: (s.state, s.rule, s.offset, s.lag) for s in r.reader.statuses()}
        assert shown == {
            "app.log": ("active", None, 5, 0),
            "app.log.2.gz": ("excluded", 'exclude "*.gz"', 0, 0),
        }
        assert not (r.settings.outbox / "app.log.2.gz").exists()
    finally:
        r.reader.close()
    r2 = Reader(tmp_path / "2", include=("app/**",), exclude=("*.debug",))
    for rel in ("app/x.log", "app/deep/y.log", "app/z.debug", "other.log", "app/.hidden"):
        (r2.settings.inbox / rel).parent.mkdir(parents=True, exist_ok=True)
        append_lines(r2.settings.inbox / rel, [rel])
    try:
        r2.pass_()
        states = {s.path: (s.state, s.rule) for s in r2.reader.statuses()}
        assert states == {
            "app/deep/y.log": ("active", None),
            "app/x.log": ("active", None),
            "app/z.debug": ("excluded", 'exclude "*.debug"'),
            "other.log": ("excluded", 'include (matches none of "app/**")'),
        }
    finally:
        r2.reader.close()


def crash(r: Reader) -> None:
    """Drop the reader as kill -9 would: nothing committed, descriptors just closed."""
    r.reader.outbox.close()
    r.reader.store.close()
    r.reader = r.open()


def test_an_outbox_file_moved_by_a_consumer_then_a_crash_doubles_nothing(tmp_path: Path) -> None:
    r = Reader(tmp_path)
    log = r.settings.inbox / "a.log"
    append_lines(log, lines("a", 0, 50))
    try:
        r.pass_()
        (r.settings.outbox / "a.log").rename(tmp_path / "taken.log")
        append_lines(log, lines("a", 50, 80))
        r.reader.process(r.reader.scan().values(), final=False)  # written, not committed
        crash(r)
        r.pass_()
        assert (tmp_path / "taken.log").read_text().splitlines() == lines("a", 0, 50)
        assert r.outbox("a.log") == lines("a", 50, 80)
    finally:
        r.reader.close()


def test_an_outbox_file_cut_by_a_consumer_then_a_crash_doubles_nothing(tmp_path: Path) -> None:
    r = Reader(tmp_path)
    log = r.settings.inbox / "a.log"
    append_lines(log, lines("a", 0, 50))
    try:
        r.pass_()
        os.truncate(r.settings.outbox / "a.log", 0)
        append_lines(log, lines("a", 50, 53))
        r.reader.process(r.reader.scan().values(), final=False)
        crash(r)
        r.pass_()
        assert r.outbox("a.log") == lines("a", 50, 53)
    finally:
        r.reader.close()


def test_checkpoints_keep_odd_names_as_their_bytes(tmp_path: Path) -> None:
    r = Reader(tmp_path)
    with open(os.fsencode(r.settings.inbox) + b"/x\xfe.log", "wb") as fh:
        fh.write(b"1\n")
    try:
        r.pass_()
    finally:
        r.reader.close()
    store = CheckpointStore(r.settings.db_path)
    try:
        (path,) = [row[0] for row in store.db.execute("SELECT path FROM checkpoints")]
        assert path == b"x\xfe.log"
        files, outbox = store.load()
        assert [f.path for f in files.values()] == [os.fsdecode(b"x\xfe.log")]
        assert list(outbox.sizes) == [os.fsdecode(b"x\xfe.log")]
    finally:
        store.close()


def test_a_file_where_an_outbox_folder_is_stops_that_file_only(tmp_path: Path) -> None:
    r = Reader(tmp_path)
    (r.settings.inbox / "b").mkdir()
    append_lines(r.settings.inbox / "b" / "x.log", ["in a folder"])
    try:
        r.pass_()
        shutil.rmtree(r.settings.inbox / "b")
        append_lines(r.settings.inbox / "b", ["now a file"])
        append_lines(r.settings.inbox / "c.log", ["flows"])
        r.pass_()
        assert r.outbox("c.log") == ["flows"]
        status = {s.path: s for s in r.reader.statuses()}
        assert status["b"].state == "error"
        assert "IsADirectoryError" in (status["b"].reason or "")
    finally:
        r.reader.close()


def test_a_copy_seen_half_written_waits_and_resumes_from_the_checkpoint(tmp_path: Path) -> None:
    r = Reader(tmp_path)
    log, copy = r.settings.inbox / "app.log", r.settings.inbox / "app.log.1"
    data = "".join(x + "\n" for x in lines("a", 0, 2000)).encode()
    log.write_bytes(data)
    try:
        r.pass_()
        copy.write_bytes(data[:10_000])  # logrotate writes its copy 8 KiB at a time
        r.pass_()
        assert "app.log.1" not in {s.path for s in r.reader.statuses()}
        copy.write_bytes(data)
        os.truncate(log, 0)
        append_lines(log, ["after"])
        r.pass_()
        r.reader.process(r.reader.due_partials(), final=False)
        r.reader.commit()
        assert all_outbox_lines(r) == sorted([*lines("a", 0, 2000), "after"])
    finally:
        r.reader.close()


def test_a_file_that_only_starts_like_a_copy_is_read_after_the_wait(tmp_path: Path) -> None:
    r = Reader(tmp_path)
    now = [1000.0]
    r.reader.clock = lambda: now[0]
    log = r.settings.inbox / "app.log"
    data = "".join(x + "\n" for x in lines("a", 0, 2000)).encode()
    log.write_bytes(data)
    try:
        r.pass_()
        head = data[: data.rindex(b"\n", 0, 20_000) + 1]
        (r.settings.inbox / "app.log.old").write_bytes(head)
        r.pass_()
        assert "app.log.old" not in {s.path for s in r.reader.statuses()}
        now[0] += 11.0  # past the wait: a file of its own
        r.reader.process(r.reader.due_partials(), final=False)
        r.reader.commit()
        assert r.outbox("app.log.old") == head.decode().splitlines()
    finally:
        r.reader.close()


def test_a_copy_of_a_file_not_yet_cut_waits_for_the_cut(tmp_path: Path) -> None:
    """The copy is seen before the original's last lines are read: resuming from the
    original's checkpoint then would double what the original still gives."""
    r = Reader(tmp_path)
    log, copy = r.settings.inbox / "app.log", r.settings.inbox / "app.log.1"
    append_lines(log, lines("a", 0, 100))
    try:
        r.pass_()
        append_lines(log, lines("a", 100, 120))
        shutil.copyfile(log, copy)
        st = os.stat(copy)
        r.reader.process([Found((st.st_dev, st.st_ino), "app.log.1")], final=False)
        r.pass_()  # the original is read to its end, 100..119
        os.truncate(log, 0)
        append_lines(log, lines("a", 120, 125))
        r.pass_()
        r.reader.process(r.reader.due_partials(), final=False)
        r.reader.commit()
        assert all_outbox_lines(r) == lines("a", 0, 125)
    finally:
        r.reader.close()
