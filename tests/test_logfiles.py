"""Listing and reading the daemon's log files: real plain and gzip files in tmp_path."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest
from web_fixtures import no_thread_leak  # noqa: F401

from store import logfiles
from store.logfiles import (
    InvalidLogName,
    LogNotFound,
    LogUnreadable,
    list_logs,
    read_log,
)


def write_gz(path: Path, text: str) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(text)


@pytest.fixture
def logs_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "inboxd.log").write_text("c1\nc2\nc3\n")
    write_gz(folder / "inboxd.log.1.gz", "r1a\nr1b\n")
    write_gz(folder / "inboxd.log.2.gz", "r2\n")
    write_gz(folder / "inboxd.log.10.gz", "r10\n")
    return folder


def test_list_puts_current_first_then_by_number(logs_dir: Path) -> None:
    listing = list_logs(logs_dir)
    assert [doc["name"] for doc in listing] == [
        "inboxd.log",
        "inboxd.log.1.gz",
        "inboxd.log.2.gz",
        "inboxd.log.10.gz",
    ]
    current = listing[0]
    assert current["size"] == len("c1\nc2\nc3\n")
    assert current["modified"] == pytest.approx((logs_dir / "inboxd.log").stat().st_mtime)


def test_list_ignores_other_names_links_and_folders(logs_dir: Path, tmp_path: Path) -> None:
    (logs_dir / "inboxd.log.3.gz.tmp").write_bytes(b"x")
    (logs_dir / "inboxd.log.01.gz").write_bytes(b"x")
    (logs_dir / "notes.txt").write_text("x")
    (logs_dir / "inboxd.log.4.gz").mkdir()
    outside = tmp_path / "outside.gz"
    write_gz(outside, "secret\n")
    os.symlink(outside, logs_dir / "inboxd.log.5.gz")
    names = [doc["name"] for doc in list_logs(logs_dir)]
    assert names == ["inboxd.log", "inboxd.log.1.gz", "inboxd.log.2.gz", "inboxd.log.10.gz"]


def test_list_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    assert list_logs(tmp_path / "nowhere") == []


def test_read_plain_and_decompressed(logs_dir: Path) -> None:
    assert read_log(logs_dir, "inboxd.log", None) == "c1\nc2\nc3\n"
    assert read_log(logs_dir, "inboxd.log.1.gz", None) == "r1a\nr1b\n"
    assert read_log(logs_dir, "inboxd.log.10.gz", None) == "r10\n"


def test_tail_keeps_the_last_lines(logs_dir: Path) -> None:
    assert read_log(logs_dir, "inboxd.log", 2) == "c2\nc3\n"
    assert read_log(logs_dir, "inboxd.log", 50) == "c1\nc2\nc3\n"
    assert read_log(logs_dir, "inboxd.log", 0) == ""
    assert read_log(logs_dir, "inboxd.log.1.gz", 1) == "r1b\n"
    assert read_log(logs_dir, "inboxd.log.1.gz", 0) == ""


def test_tail_counts_a_last_line_without_newline(logs_dir: Path) -> None:
    (logs_dir / "inboxd.log").write_text("a\nb\nc")
    assert read_log(logs_dir, "inboxd.log", 2) == "b\nc"


def test_tail_of_large_files_spans_chunks(logs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logfiles, "_CHUNK_BYTES", 7)
    lines = [f"line {i:05d}\n" for i in range(2000)]
    (logs_dir / "inboxd.log").write_text("".join(lines))
    write_gz(logs_dir / "inboxd.log.1.gz", "".join(lines))
    assert read_log(logs_dir, "inboxd.log", 3) == "".join(lines[-3:])
    assert read_log(logs_dir, "inboxd.log.1.gz", 3) == "".join(lines[-3:])
    assert read_log(logs_dir, "inboxd.log.1.gz", None) == "".join(lines)


def test_reads_are_capped_keeping_the_end(logs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logfiles, "LOG_READ_MAX_BYTES", 64)
    monkeypatch.setattr(logfiles, "_CHUNK_BYTES", 16)
    text = "".join(f"{i:09d}\n" for i in range(100))
    (logs_dir / "inboxd.log").write_text(text)
    write_gz(logs_dir / "inboxd.log.1.gz", text)
    assert read_log(logs_dir, "inboxd.log", None) == text[-64:]
    assert read_log(logs_dir, "inboxd.log.1.gz", None) == text[-64:]


def test_invalid_utf8_becomes_replacement_characters(logs_dir: Path) -> None:
    (logs_dir / "inboxd.log").write_bytes(b"ok \xff\xfe\n")
    assert read_log(logs_dir, "inboxd.log", None) == "ok \ufffd\ufffd\n"


@pytest.mark.parametrize(
    "name",
    [
        "",
        "..",
        "../inboxd.log",
        "..%2finboxd.log",
        "%2e%2e",
        "inboxd.log/..",
        "/etc/passwd",
        "\\etc\\passwd",
        "..\\inboxd.log",
        "inboxd.log\x00",
        "inboxd.log\x00.1.gz",
        "inboxd.log.1.gz%00",
        "inboxd.log.0.gz",
        "inboxd.log.-1.gz",
        "inboxd.log.1",
        "inboxd.log.1.gz.tmp",
        "other.log",
        "INBOXD.LOG",
    ],
)
def test_names_that_are_not_log_files_are_refused(logs_dir: Path, name: str) -> None:
    with pytest.raises(InvalidLogName):
        read_log(logs_dir, name, None)


def test_absolute_path_into_the_folder_is_refused(logs_dir: Path) -> None:
    with pytest.raises(InvalidLogName):
        read_log(logs_dir, str(logs_dir / "inboxd.log"), None)


def test_missing_rotation_is_not_found(logs_dir: Path) -> None:
    with pytest.raises(LogNotFound):
        read_log(logs_dir, "inboxd.log.3.gz", None)


def test_symlink_pointing_outside_is_never_followed(logs_dir: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("TOP SECRET\n")
    (logs_dir / "inboxd.log").unlink()
    os.symlink(secret, logs_dir / "inboxd.log")
    with pytest.raises(LogNotFound):
        read_log(logs_dir, "inboxd.log", None)


def test_open_refuses_a_link_swapped_in_after_listing(logs_dir: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("TOP SECRET\n")
    assert "inboxd.log" in [doc["name"] for doc in list_logs(logs_dir)]
    (logs_dir / "inboxd.log").unlink()
    os.symlink(secret, logs_dir / "inboxd.log")
    with pytest.raises(LogNotFound):
        logfiles._open_regular(logs_dir / "inboxd.log")


def test_corrupt_archive_is_unreadable(logs_dir: Path) -> None:
    (logs_dir / "inboxd.log.2.gz").write_bytes(b"this is not gzip data at all")
    with pytest.raises(LogUnreadable):
        read_log(logs_dir, "inboxd.log.2.gz", None)


def test_truncated_archive_yields_what_was_readable(logs_dir: Path) -> None:
    text = "".join(f"entry {i}\n" for i in range(5000))
    data = gzip.compress(text.encode(), compresslevel=1)
    (logs_dir / "inboxd.log.1.gz").write_bytes(data[: len(data) // 2])
    result = read_log(logs_dir, "inboxd.log.1.gz", None)
    assert 0 < len(result) < len(text)
    assert text.startswith(result)
