"""The outbox sink on real files: appends, consumers that move files away, recovery."""

from __future__ import annotations

import os
from pathlib import Path

from sinks.outbox import Outbox, recover


def test_append_creates_folders_and_reports_the_file_size(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    assert box.append("a/b.log", b"one\n") == 4
    assert box.append("a/b.log", b"two\n") == 8
    assert box.sync() == ["a/b.log"]
    assert (tmp_path / "a" / "b.log").read_bytes() == b"one\ntwo\n"
    box.close()


def test_a_moved_outbox_file_is_left_alone_and_a_new_one_started(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    box.append("x.log", b"first\n")
    taken = tmp_path / "taken.log"
    os.rename(tmp_path / "x.log", taken)
    assert box.append("x.log", b"second\n") == 7
    box.sync()
    assert taken.read_bytes() == b"first\n"
    assert (tmp_path / "x.log").read_bytes() == b"second\n"
    box.close()


def test_a_deleted_outbox_file_is_recreated(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    box.append("x.log", b"first\n")
    (tmp_path / "x.log").unlink()
    box.append("x.log", b"second\n")
    assert (tmp_path / "x.log").read_bytes() == b"second\n"
    assert box.sizes["x.log"] == 7
    box.close()


def test_sizes_follow_a_file_a_consumer_emptied(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    box.append("x.log", b"0123456789\n")
    os.truncate(tmp_path / "x.log", 0)
    assert box.append("x.log", b"ab\n") == 3
    box.close()


def test_recover_cuts_back_to_committed_sizes_only(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_bytes(b"kept\nuncommitted\n")
    (tmp_path / "b.log").write_bytes(b"short\n")
    cuts = recover(tmp_path, {"a.log": 5, "b.log": 100, "missing.log": 3})
    assert cuts == [("a.log", 17, 5)]
    assert (tmp_path / "a.log").read_bytes() == b"kept\n"
    assert (tmp_path / "b.log").read_bytes() == b"short\n"


def identity(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def test_recover_leaves_a_file_put_in_place_of_its_own_alone(tmp_path: Path) -> None:
    """An outbox file replaced by another file (a consumer's, with its own inode) is not
    the one whose size was committed: it is not cut. Its own files, recorded with their
    identity and listed after it, still are."""
    (tmp_path / "a.log").write_bytes(b"kept\nuncommitted\n")
    (tmp_path / "b.log").write_bytes(b"kept\nuncommitted\n")
    ids = {"a.log": identity(tmp_path / "a.log"), "b.log": identity(tmp_path / "b.log")}
    (tmp_path / "theirs.log").write_bytes(b"a consumer's own file\n")
    os.replace(tmp_path / "theirs.log", tmp_path / "a.log")
    assert identity(tmp_path / "a.log") != ids["a.log"]
    cuts = recover(tmp_path, {"a.log": 5, "b.log": 5}, ids)
    assert cuts == [("b.log", 17, 5)]
    assert (tmp_path / "a.log").read_bytes() == b"a consumer's own file\n"
    assert (tmp_path / "b.log").read_bytes() == b"kept\n"


def test_many_outbox_files_keep_a_bounded_number_of_descriptors(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    before = len(os.listdir("/proc/self/fd"))
    for i in range(600):
        box.append(f"f{i}.log", b"x\n")
    during = len(os.listdir("/proc/self/fd"))
    assert during - before <= 256
    box.sync()
    box.close()
    assert all((tmp_path / f"f{i}.log").read_bytes() == b"x\n" for i in range(600))


def test_a_removed_outbox_folder_is_made_again(tmp_path: Path) -> None:
    import shutil

    box = Outbox(tmp_path)
    box.append("sub/a.log", b"one\n")
    box.close()
    shutil.rmtree(tmp_path / "sub")
    box.append("sub/b.log", b"two\n")
    assert (tmp_path / "sub" / "b.log").read_bytes() == b"two\n"
    box.close()


def test_many_written_files_are_made_durable_in_one_sync(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    for i in range(40):
        box.append(f"d/{i}.log", b"x\n")
    assert len(box.sync()) == 40
    assert box.sync() == []
    box.close()
