"""Multiline records and the start position of `[[inputs]]` rules, below the daemon:
the pure joining function, the config, and the file reader on real files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from reader_fixtures import Reader

from cli.inputs import InputRule, Multiline, decode_lines, parse_inputs
from processors.errors import ConfigError
from watcher.reading.multiline import InputRules, Records, join_records, runs

DATED = r"^\d{4}-\d{2}-\d{2} "
JAVA = [
    "2026-12-01 12:00:00 INFO started",
    "2026-12-01 12:00:01 ERROR request failed",
    "java.lang.IllegalStateException: boom",
    "\tat com.x.Y.z(Y.java:10)",
    "\tat com.x.Main.main(Main.java:3)",
    "Caused by: java.io.IOException: disk",
    "\tat com.x.Io.read(Io.java:7)",
    "\t... 2 more",
    "2026-12-01 12:00:02 INFO next",
]
PYTHON = [
    "2026-12-01 12:00:00 ERROR handler crashed",
    "Traceback (most recent call last):",
    '  File "app.py", line 3, in <module>',
    "    1 / 0",
    "ZeroDivisionError: division by zero",
    "2026-12-01 12:00:01 INFO ok",
]


def rule(start: str = DATED, *, max_lines: int = 500, timeout: float = 1.0) -> Multiline:
    return Multiline(re.compile(start), max_lines, timeout)


def encode(lines: list[str]) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


def join(lines: list[str], *, flush: bool, first: int = 1, max_lines: int = 500) -> Records:
    raw = encode(lines)
    return join_records(decode_lines(raw), raw, first, rule(max_lines=max_lines), flush=flush)


# -- the pure function ---------------------------------------------------------------------


def test_java_stack_trace_is_one_record_and_the_last_waits() -> None:
    recs = join(JAVA, flush=False, first=11)
    assert recs.texts == [JAVA[0], "\n".join(JAVA[1:8])]
    assert recs.line_nos == [11, 12]
    assert recs.lines == 8
    assert recs.nbytes == len(encode(JAVA[:8]))


def test_python_traceback_is_one_record_and_flush_completes_the_last() -> None:
    recs = join(PYTHON, flush=True)
    assert recs.texts == ["\n".join(PYTHON[:5]), PYTHON[5]]
    assert recs.line_nos == [1, 6]
    assert (recs.lines, recs.nbytes) == (6, len(encode(PYTHON)))


def test_max_lines_splits_a_record() -> None:
    lines = ["2026-12-01 12:00:00 ERROR x"] + [f"\tat f{i}" for i in range(5)]
    recs = join(lines, flush=False, max_lines=4)
    assert recs.texts == ["\n".join(lines[:4])]  # complete at four lines
    assert recs.lines == 4
    recs = join(lines, flush=True, max_lines=4)
    assert recs.texts == ["\n".join(lines[:4]), "\n".join(lines[4:])]
    assert recs.line_nos == [1, 5]


def test_held_record_is_measured_in_bytes_as_read() -> None:
    # Multi-byte text, CRLF and invalid UTF-8: the held bytes are those of the file.
    raw = "2026-12-01 00:00:00 é\r\n".encode() + b"2026-12-01 00:00:01 \xff\xfe\n\tat \xc3\n"
    recs = join_records(decode_lines(raw), raw, 1, rule(), flush=False)
    assert recs.texts == ["2026-12-01 00:00:00 é"]
    assert recs.nbytes == len("2026-12-01 00:00:00 é\r\n".encode())
    assert recs.lines == 1


def test_lines_before_any_start_form_a_record_of_their_own() -> None:
    recs = join(["\tat orphan", "\tat orphan2", "2026-12-01 00:00:00 x"], flush=False)
    assert recs.texts == ["\tat orphan\n\tat orphan2"]
    assert recs.lines == 2


def test_runs_keep_each_record_numbered_by_its_first_line() -> None:
    texts = ["a", "b", "c\nc2\nc3", "d", "e\ne2", "f"]
    nos = [1, 2, 3, 6, 7, 9]
    assert runs(texts, nos) == [(["a", "b", "c\nc2\nc3"], 1), (["d", "e\ne2"], 6), (["f"], 9)]
    assert runs([], []) == []


# -- config --------------------------------------------------------------------------------


def test_parse_inputs_defaults_and_first_match_wins() -> None:
    rules = parse_inputs(
        [{"match": "app/*.log", "read_from": "end", "multiline": {"start": "^x"}},
         {"match": "*.log"}],
        "f.toml",
    )  # fmt: skip
    assert rules[0].multiline is not None
    assert (rules[0].multiline.max_lines, rules[0].multiline.timeout) == (500, 1.0)
    assert rules[1] == InputRule("*.log", "beginning", None)
    matcher = InputRules(rules)
    assert matcher.rule_for("app/a.log") is rules[0]
    assert matcher.rule_for("app/sub/a.log") is rules[1]
    assert matcher.rule_for("other.txt") is None


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"match": "*.log", "multiline": {"start": "("}}, ["multiline.start", "regular"]),
        ({"match": "*.log", "multiline": {"start": "x", "max_lines": 0}}, ["max_lines"]),
        ({"match": "*.log", "multiline": {"start": "x", "timeout": 0}}, ["timeout"]),
        ({"match": "*.log", "multiline": {"max_lines": 3}}, ["multiline.start"]),
        ({"match": "*.log", "multiline": {"start": "x", "every": 1}}, ["multiline.every"]),
        ({"match": "*.log", "read_from": "middle"}, ["read_from", "middle"]),
        ({"match": "*.log", "tail": True}, ["tail", "unknown"]),
        ({"read_from": "end"}, ["match"]),
    ],
)
def test_parse_inputs_refuses_mistakes(table: dict[str, object], words: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        parse_inputs([{"match": "ok"}, table], "f.toml")
    message = str(err.value)
    assert "\n" not in message
    for word in ["f.toml", "[[inputs]] #2", *words]:
        assert word in message, (word, message)


# -- the reader on real files --------------------------------------------------------------


def multiline_reader(tmp_path: Path, *, max_lines: int = 500, timeout: float = 1.0) -> Reader:
    inputs = (InputRule("*.log", "beginning", rule(max_lines=max_lines, timeout=timeout)),)
    return Reader(tmp_path, inputs=inputs, partial_timeout=5.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_reader_holds_the_last_record_until_its_timeout(tmp_path: Path) -> None:
    r = multiline_reader(tmp_path, timeout=1.0)
    clock = Clock()
    r.reader.clock = clock
    (r.settings.inbox / "a.log").write_bytes(encode(JAVA[:8]))
    r.pass_()
    assert r.outbox("a.log") == [JAVA[0]]
    tracked = next(iter(r.reader.files.values()))
    assert (tracked.offset, tracked.lines) == (len(encode(JAVA[:1])), 1)
    assert r.reader.next_deadline() == pytest.approx(clock.now + 1.0)
    clock.now += 0.9
    assert r.reader.due_partials() == []
    clock.now += 0.2
    r.reader.process(r.reader.due_partials(), final=True)
    r.reader.commit()
    assert r.outbox("a.log") == [JAVA[0], *JAVA[1:8]]  # the record, newlines inside
    assert r.routed[-1] == ("a.log", 2, ["\n".join(JAVA[1:8])])
    assert (tracked.offset, tracked.lines) == (len(encode(JAVA[:8])), 8)


def test_reader_completes_a_record_when_the_next_one_starts_and_resumes_at_a_boundary(
    tmp_path: Path,
) -> None:
    r = multiline_reader(tmp_path)
    path = r.settings.inbox / "a.log"
    path.write_bytes(encode(PYTHON[:3]))
    r.pass_()
    assert r.routed == []
    r.reopen()  # a restart reads the unfinished record again from its first line
    with path.open("ab") as fh:
        fh.write(encode(PYTHON[3:]))
    r.pass_()
    assert r.routed == [("a.log", 1, ["\n".join(PYTHON[:5])])]
    r.pass_(final=True)
    assert r.routed[-1] == ("a.log", 6, [PYTHON[5]])


def test_reader_ends_a_record_that_fills_a_chunk(tmp_path: Path) -> None:
    r = multiline_reader(tmp_path, max_lines=100_000)
    line = "\tat " + "x" * 1000
    body = ["2026-12-01 00:00:00 big"] + [line] * 2000  # about 2 MB: more than one chunk
    (r.settings.inbox / "a.log").write_bytes(encode([*body, "2026-12-01 00:00:01 next"]))
    r.pass_()
    records = [text for _, _, texts in r.routed for text in texts]
    assert "\n".join(records).split("\n") == body
    assert len(records) >= 2
    tracked = next(iter(r.reader.files.values()))
    assert tracked.lines == len(body)


def test_reader_without_rule_keeps_lines(tmp_path: Path) -> None:
    r = Reader(tmp_path)
    (r.settings.inbox / "a.log").write_bytes(encode(PYTHON))
    r.pass_()
    assert r.outbox("a.log") == PYTHON
    assert len(r.routed[0][2]) == len(PYTHON)


# -- read_from = "end" ---------------------------------------------------------------------


def test_read_from_end_starts_old_files_after_their_last_complete_line(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "old.log").write_bytes(b"one\ntwo\nthr")  # a line being written at the start
    inputs = (InputRule("*.log", "end", None),)
    r = Reader(tmp_path, inputs=inputs)
    (inbox / "new.log").write_bytes(b"n1\nn2\n")  # made after the first start
    with (inbox / "old.log").open("ab") as fh:
        fh.write(b"ee\nfour\n")
    r.pass_()
    assert r.outbox("old.log") == ["three", "four"]
    assert ("old.log", 3, ["three", "four"]) in r.routed  # numbered as in the file
    assert r.outbox("new.log") == ["n1", "n2"]


def test_read_from_end_only_on_the_first_start(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.log").write_bytes(b"a1\n")
    inputs = (InputRule("*.log", "end", None),)
    r = Reader(tmp_path, inputs=inputs)
    r.pass_()
    assert r.outbox("a.log") == []
    (inbox / "b.log").write_bytes(b"b1\n")  # there before the next start
    r.reopen()
    r.pass_()
    assert r.outbox("b.log") == ["b1"]
    assert r.outbox("a.log") == []


def test_a_rotated_file_keeps_the_rule_of_its_first_name(tmp_path: Path) -> None:
    r = multiline_reader(tmp_path)  # the rule matches *.log, not *.log.1
    path = r.settings.inbox / "a.log"
    path.write_bytes(encode(JAVA[:4]))
    r.pass_()
    path.rename(r.settings.inbox / "a.log.1")  # logrotate's create mode
    with (r.settings.inbox / "a.log.1").open("ab") as fh:
        fh.write(encode(JAVA[4:8]))
    r.pass_(final=True)
    assert r.outbox("a.log") == [JAVA[0], *JAVA[1:8]]
    assert [texts for _, _, texts in r.routed] == [[JAVA[0]], ["\n".join(JAVA[1:8])]]


def test_an_over_long_line_ends_the_record_before_it(tmp_path: Path) -> None:
    inputs = (InputRule("*.log", "beginning", rule()),)
    r = Reader(tmp_path, inputs=inputs, max_line_bytes=100)
    long = "\tat " + "y" * 200
    lines = [*PYTHON[:3], long, "\tat after", PYTHON[5]]
    (r.settings.inbox / "a.log").write_bytes(encode(lines))
    r.pass_()
    r.pass_()
    assert [texts for _, _, texts in r.routed] == [["\n".join(PYTHON[:3])], ["\tat after"]]
    errors = r.telemetry.error_records()
    assert [(e.line_no, e.message.split(":")[0]) for e in errors] == [(4, "LineTooLong")]
    tracked = next(iter(r.reader.files.values()))
    assert tracked.lines == 5  # the last record waits for what follows it
