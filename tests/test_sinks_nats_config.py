"""The nats sink's config and subjects, without a server: what `[sinks.NAME]` accepts,
the one-line errors for what it refuses, and how lines map to subjects."""

from __future__ import annotations

from pathlib import Path

import pytest

from sinks.nats import NatsSpec, render_subject, stream_filter, subject_matches
from sinks.registry import parse_sink
from store.errors import ConfigError


def parse(**table: object) -> NatsSpec:
    spec = parse_sink("bus", {"type": "nats", **table}, "c.toml: [sinks.bus]")
    assert isinstance(spec, NatsSpec)
    return spec


def test_defaults_and_a_full_table() -> None:
    spec = parse()
    assert spec.servers == ("nats://127.0.0.1:4222",)
    assert (spec.subject, spec.stream, spec.create) == ("inboxd.{host}.{file}", "INBOXD", False)
    assert spec.max_pending == 100_000 and spec.SPOOLED
    spec = parse(servers="nats://a:1", subject="logs.{sink}", stream="S", create=True,
                 max_age=3600, duplicate_window=30, discard="new", max_msgs=10, batch=50,
                 user="u", password="p", max_pending=10)  # fmt: skip
    assert spec.servers == ("nats://a:1",) and spec.max_age == 3600.0
    assert (spec.duplicate_window, spec.discard, spec.max_msgs) == (30.0, "new", 10)
    assert (spec.auth.user, spec.auth.password) == ("u", "p")
    assert spec.max_pending == 50  # never below one batch
    assert "nats://a:1" in spec.describe("out", "var") and "stream S" in spec.describe("", "")


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"servers": ["http://x:1"]}, "servers: expected a list of nats://"),
        ({"servers": []}, "servers: expected a list"),
        ({"subject": "a.*.b"}, "subject: 'a.*.b' is not a subject"),
        ({"subject": "a.>"}, "is not a subject"),
        ({"subject": "a..b"}, "is not a subject"),
        ({"subject": "a.{line}"}, "unknown placeholder {line}"),
        ({"subject": "a b"}, "is not a subject"),
        ({"stream": "A.B"}, "stream: 'A.B' cannot name a stream"),
        ({"create": "yes"}, "create: expected true or false"),
        ({"discard": "all"}, 'discard: expected "old" or "new"'),
        ({"batch": 0}, "batch: expected an integer from 1"),
        ({"timeout": -1}, "timeout: expected seconds"),
        ({"credentials": "/nonexistent/x.creds"}, "credentials: no file /nonexistent/x.creds"),
        ({"colour": "red"}, "colour: unknown key for a nats sink"),
    ],
)
def test_bad_tables_are_one_line_errors_naming_the_key(
    table: dict[str, object], words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse(**table)
    text = str(info.value)
    assert words in text and "\n" not in text and text.startswith("c.toml: [sinks.bus]")


def test_a_credentials_file_that_exists_is_taken(tmp_path: Path) -> None:
    creds = tmp_path / "x.creds"
    creds.write_text("-----BEGIN NATS USER JWT-----\n")
    assert parse(credentials=str(creds)).auth.credentials == str(creds)


def test_subjects_from_file_names() -> None:
    t = "inboxd.{host}.{file}"
    assert render_subject(t, host="web1.example", file="app/web.log", sink="bus") == (
        "inboxd.web1_example.app.web_log"
    )
    # Whatever a file name holds, the subject stays one valid subject.
    for name in ["a b*>.log", "../x", "//", "", "ü/\udcff.log", ".hidden"]:
        subject = render_subject(t, host="h", file=name, sink="s")
        assert all(tok and " " not in tok and tok not in ("*", ">") for tok in subject.split("."))
        assert subject_matches(stream_filter(t), subject)
    assert render_subject("fixed", host="h", file="a", sink="s") == "fixed"
    assert render_subject("x.{sink}", host="h", file="a", sink="my.bus") == "x.my_bus"


def test_stream_filters_and_matching() -> None:
    assert stream_filter("inboxd.{host}.{file}") == "inboxd.*.>"
    assert stream_filter("logs.{file}.raw") == "logs.>"
    assert stream_filter("logs") == "logs"
    assert subject_matches("a.*.>", "a.b.c.d") and not subject_matches("a.*.>", "a.b")
    assert subject_matches("a.*", "a.b") and not subject_matches("a.*", "a.b.c")
    assert not subject_matches("a.b", "a.c") and subject_matches("a.b", "a.b")
