"""The daemon's own log: JSON lines, gzip rotation, the journal copy."""

from __future__ import annotations

import gzip
import json
import logging
import threading
from datetime import datetime
from pathlib import Path

import pytest

from cli.logs import LOGGER_NAME, setup_logging


def read_lines(path: Path) -> list[dict[str, object]]:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return [json.loads(line) for line in raw.decode("utf-8").splitlines()]


def all_files(logs_dir: Path) -> list[str]:
    return sorted(p.name for p in logs_dir.iterdir())


@pytest.fixture
def logs_dir(tmp_path: Path) -> Path:
    return tmp_path / "logs"


def test_records_are_json_lines_with_core_and_extra_fields(logs_dir: Path) -> None:
    teardown = setup_logging(logs_dir, level="info", max_bytes=1 << 20, backups=2, to_stderr=False)
    try:
        log = logging.getLogger("inboxd.engine")
        log.info(
            "file opened\nsecond line",
            extra={"file": "a.log", "processor": "tag_router", "line_no": 7, "event": "open"},
        )
        log.debug("not at info level")
        try:
            raise KeyError("tag")
        except KeyError:
            log.exception("processor failed", extra={"time": "clashes with a core key"})
    finally:
        teardown()
    lines = read_lines(logs_dir / "inboxd.log")
    assert len(lines) == 2
    first, second = lines
    assert isinstance(first["ts"], float)
    assert datetime.fromisoformat(str(first["time"])).utcoffset() is not None
    assert first["level"] == "info"
    assert first["logger"] == "inboxd.engine"
    assert first["msg"] == "file opened\nsecond line"
    assert (first["file"], first["processor"], first["line_no"], first["event"]) == (
        "a.log",
        "tag_router",
        7,
        "open",
    )
    assert second["level"] == "error"
    assert "KeyError: 'tag'" in str(second["exc"])
    assert second["extra_time"] == "clashes with a core key"
    assert second["time"] != "clashes with a core key"


def test_rotation_keeps_at_most_backups_gzip_files_newest_first(logs_dir: Path) -> None:
    teardown = setup_logging(logs_dir, level="info", max_bytes=2_000, backups=3, to_stderr=False)
    try:
        log = logging.getLogger("inboxd.watcher")
        for i in range(400):
            log.info("line %d", i, extra={"seq": i})
    finally:
        teardown()
    assert all_files(logs_dir) == [
        "inboxd.log",
        "inboxd.log.1.gz",
        "inboxd.log.2.gz",
        "inboxd.log.3.gz",
    ]
    seqs = {
        name: [int(str(r["seq"])) for r in read_lines(logs_dir / name)]
        for name in all_files(logs_dir)
    }
    # Each file holds consecutive records; .1.gz comes right before the live file.
    order = ["inboxd.log.3.gz", "inboxd.log.2.gz", "inboxd.log.1.gz", "inboxd.log"]
    chained = [s for name in order for s in seqs[name]]
    assert chained == list(range(chained[0], 400))
    for name in order[:-1]:
        assert seqs[name], name
        assert (logs_dir / name).stat().st_size < 2_000


def test_nothing_is_lost_or_torn_across_rotations_from_several_threads(logs_dir: Path) -> None:
    teardown = setup_logging(
        logs_dir, level="info", max_bytes=4_000, backups=10_000, to_stderr=False
    )
    per_thread = 300
    try:
        log = logging.getLogger("inboxd.engine")

        def write(worker: int) -> None:
            for i in range(per_thread):
                log.info("payload %s", "x" * (i % 50), extra={"worker": worker, "i": i})

        threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        teardown()
    names = all_files(logs_dir)
    assert len(names) > 10
    assert not [n for n in names if n.endswith(".tmp")]
    seen = [(r["worker"], r["i"]) for name in names for r in read_lines(logs_dir / name)]
    assert sorted(seen) == [(w, i) for w in range(4) for i in range(per_thread)]


def test_zero_backups_restarts_the_file(logs_dir: Path) -> None:
    teardown = setup_logging(logs_dir, level="info", max_bytes=1_000, backups=0, to_stderr=False)
    try:
        for i in range(200):
            logging.getLogger("inboxd").info("line %d", i)
    finally:
        teardown()
    assert all_files(logs_dir) == ["inboxd.log"]
    assert (logs_dir / "inboxd.log").stat().st_size < 1_000
    assert read_lines(logs_dir / "inboxd.log")[-1]["msg"] == "line 199"


def test_failed_compression_leaves_no_archive_and_loses_no_line(
    logs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    teardown = setup_logging(logs_dir, level="info", max_bytes=1_000, backups=2, to_stderr=False)
    try:
        # A directory where the temporary archive must go makes every rotation fail.
        (logs_dir / "inboxd.log.1.gz.tmp").mkdir()
        for i in range(100):
            logging.getLogger("inboxd").info("line %d", i)
    finally:
        teardown()
    assert "rotating" in capsys.readouterr().err
    assert not (logs_dir / "inboxd.log.1.gz").exists()
    msgs = [r["msg"] for r in read_lines(logs_dir / "inboxd.log")]
    assert msgs == [f"line {i}" for i in range(100)]


def test_setup_removes_stale_temporaries_and_surplus_archives(logs_dir: Path) -> None:
    logs_dir.mkdir()
    for name in ("inboxd.log.1.gz.tmp", "inboxd.log.4.gz", "inboxd.log.2.gz", "other.txt"):
        (logs_dir / name).write_bytes(b"")
    teardown = setup_logging(logs_dir, level="info", max_bytes=1_000, backups=3, to_stderr=False)
    teardown()
    assert all_files(logs_dir) == ["inboxd.log", "inboxd.log.2.gz", "other.txt"]


def test_journal_stream_adds_a_plain_stderr_copy(
    logs_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    teardown = setup_logging(logs_dir, level="info", max_bytes=1 << 20, backups=1)
    try:
        logging.getLogger("inboxd.engine").warning("slow disk", extra={"file": "a.log"})
    finally:
        teardown()
    err = capsys.readouterr().err
    assert "<4>WARNING inboxd.engine: slow disk file=a.log" in err
    assert read_lines(logs_dir / "inboxd.log")[0]["msg"] == "slow disk"


def test_no_stderr_copy_outside_systemd(
    logs_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    teardown = setup_logging(logs_dir, level="info", max_bytes=1 << 20, backups=1)
    try:
        logging.getLogger("inboxd").warning("only in the file")
    finally:
        teardown()
    assert capsys.readouterr().err == ""


def test_teardown_restores_the_logger(logs_dir: Path) -> None:
    logger = logging.getLogger(LOGGER_NAME)
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    teardown = setup_logging(logs_dir, level="debug", max_bytes=1 << 20, backups=1, to_stderr=True)
    installed = [h for h in logger.handlers if h not in handlers]
    assert len(installed) == 2
    assert logger.level == logging.DEBUG
    teardown()
    assert logger.handlers == handlers
    assert (logger.level, logger.propagate) == (level, propagate)
    file_handler = next(h for h in installed if isinstance(h, logging.FileHandler))
    assert file_handler.stream is None
