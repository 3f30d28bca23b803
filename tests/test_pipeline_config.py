"""Config loading as a user meets it: `python daemon.py --config X --once` (SPEC §2, §3)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from daemon_fixtures import dir_args, run_cli


def run_daemon(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the daemon the way a user does, with its state inside tmp_path."""
    return run_cli(*dir_args(tmp_path), *args, env=env)


RULES_MODULE = """
from collections.abc import Iterator


def route(line: str) -> Iterator[tuple[str, str]]:
    yield ("warn" if "WARN" in line else "plain"), line


def passthrough(line: str) -> Iterator[tuple[str, str]]:
    yield "end", line


class Suffix:
    def __init__(self, suffix: str) -> None:
        self.suffix = suffix

    def __call__(self, line: str) -> list[tuple[str, str]]:
        return [("end", line + self.suffix)]


class Upper:
    def __call__(self, line: str) -> list[tuple[str, str]]:
        return [("shout", line.upper())]


UPPER = Upper()
NOT_CALLABLE = 42


def broken_factory(**options: object) -> object:
    raise RuntimeError("cannot build")
"""


@dataclass(frozen=True)
class Bad:
    config: str | None
    # Words the one-line message must contain besides the file name.
    words: tuple[str, ...]
    with_module: bool = False


GOOD_PIPELINE = '[pipeline]\nstart = "processors.builtin:tag_router"\n'

BAD = {
    "unknown module": Bad(
        '[pipeline]\nstart = "no_such_module_xyz:route"\n', ("start", "no_such_module_xyz")
    ),
    "unknown callable": Bad(
        '[pipeline]\nstart = "processors.builtin:no_such_fn"\n', ("start", "no_such_fn")
    ),
    "not module:callable": Bad('[pipeline]\nstart = "processors.builtin"\n', ("start",)),
    "missing start": Bad('[pipeline]\ninfo = "processors.builtin:keep"\n', ("start",)),
    "end defined": Bad(GOOD_PIPELINE + 'end = "processors.builtin:keep"\n', ("end", "reserved")),
    "retries not an integer": Bad(
        GOOD_PIPELINE + 'error = { processor = "processors.builtin:keep", retries = "x" }\n',
        ("error", "retries"),
    ),
    "negative retries": Bad(
        GOOD_PIPELINE + 'error = { processor = "processors.builtin:keep", retries = -1 }\n',
        ("error", "retries"),
    ),
    "options not a table": Bad(
        GOOD_PIPELINE + 'warn = { processor = "processors.builtin:Throttle", options = 3 }\n',
        ("warn", "options"),
    ),
    "name not a string": Bad(
        GOOD_PIPELINE + 'warn = { processor = "processors.builtin:keep", name = 3 }\n',
        ("warn", "name"),
    ),
    "processor not a string": Bad(GOOD_PIPELINE + "warn = { processor = 3 }\n", ("warn",)),
    "tag value not a string or table": Bad(GOOD_PIPELINE + "warn = 3\n", ("warn",)),
    "pipeline not a table": Bad('pipeline = "x"\n', ("pipeline",)),
    "port not an integer": Bad('[daemon]\nport = "abc"\n' + GOOD_PIPELINE, ("port", "integer")),
    "trace not a boolean": Bad('[daemon]\ntrace = "yes"\n', ("trace",)),
    "flush_interval negative": Bad("[daemon]\nflush_interval = -1\n", ("flush_interval",)),
    "trace_size zero": Bad("[daemon]\ntrace_size = 0\n", ("trace_size",)),
    "port out of range": Bad("[daemon]\nport = 70000\n", ("port",)),
    "log_level unknown": Bad('[daemon]\nlog_level = "loud"\n', ("log_level",)),
    "unknown key in [daemon]": Bad("[daemon]\ncolour = 1\n", ("colour", "unknown")),
    "once in [daemon]": Bad("[daemon]\nonce = true\n", ("once",)),
    "unknown key in a processor table": Bad(
        GOOD_PIPELINE + 'warn = { processor = "processors.builtin:keep", retry = 1 }\n',
        ("warn", "retry", "unknown"),
    ),
    "unknown top table": Bad("[pipelines]\nstart = 1\n", ("pipelines", "unknown")),
    "daemon not a table": Bad('daemon = "x"\n', ("daemon",)),
    "invalid TOML": Bad("[pipeline\nstart = \n", ("TOML",)),
    "missing file": Bad(None, ("not found",)),
    "factory raising": Bad(
        GOOD_PIPELINE
        + 'warn = { processor = "inboxd_test_rules:broken_factory", options = { a = 1 } }\n',
        ("warn", "cannot build"),
        with_module=True,
    ),
    "non-callable target": Bad(
        GOOD_PIPELINE + 'warn = "inboxd_test_rules:NOT_CALLABLE"\n',
        ("warn", "not callable"),
        with_module=True,
    ),
    "non-callable factory": Bad(
        GOOD_PIPELINE + 'warn = { processor = "inboxd_test_rules:NOT_CALLABLE", options = {} }\n',
        ("warn", "not callable"),
        with_module=True,
    ),
    "non-loopback host in [daemon] without token": Bad(
        '[daemon]\nhost = "0.0.0.0"\n', ("[daemon] host", "0.0.0.0", "token")
    ),
}


def assert_one_line_usage_error(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_config_exits_2_with_one_line(tmp_path: Path, case: str) -> None:
    bad = BAD[case]
    config = tmp_path / "conf" / "inboxd.toml"
    config.parent.mkdir()
    if bad.config is not None:
        config.write_text(bad.config)
    if bad.with_module:
        (config.parent / "inboxd_test_rules.py").write_text(RULES_MODULE)
    once = [] if "host" in case else ["--once"]
    proc = run_daemon(tmp_path, "--config", str(config), *once)
    assert_one_line_usage_error(proc, str(config), *bad.words)
    assert not (tmp_path / "outbox").exists()


def test_non_loopback_host_without_token_is_refused(tmp_path: Path) -> None:
    proc = run_daemon(tmp_path, "--host", "0.0.0.0", "--port", "0")
    assert_one_line_usage_error(proc, "--host", "0.0.0.0", "token")


def test_command_line_port_not_a_number_exits_2(tmp_path: Path) -> None:
    proc = run_daemon(tmp_path, "--port", "abc", "--once")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "--port" in proc.stderr


def write_good_config(tmp_path: Path, pipeline: str) -> Path:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "inboxd_test_rules.py").write_text(RULES_MODULE)
    config = conf / "inboxd.toml"
    config.write_text(pipeline)
    return config


def test_factory_options_name_and_callable_objects_from_a_module_beside_the_config(
    tmp_path: Path,
) -> None:
    config = write_good_config(
        tmp_path,
        "[pipeline]\n"
        'start = "inboxd_test_rules:route"\n'
        'warn = { processor = "inboxd_test_rules:Suffix", options = { suffix = "!" },'
        ' name = "suffixer" }\n'
        'plain = "inboxd_test_rules:UPPER"\n'
        'shout = { processor = "inboxd_test_rules:Suffix", options = { suffix = "?" } }\n',
    )
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "a.log").write_text("a WARN x\nb plain\n")
    proc = run_daemon(tmp_path, "--config", str(config), "--once")
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    assert list(stats) == ["route", "suffixer", "Upper", "Suffix"]
    assert stats["suffixer"]["count"] == 1
    assert stats["Upper"]["count"] == 1
    assert stats["Suffix"]["count"] == 1
    assert (tmp_path / "outbox" / "a.log").read_text() == "a WARN x!\nB PLAIN?\n"


def test_daemon_table_sets_options_relative_to_the_config(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    config = conf / "inboxd.toml"
    config.write_text('[daemon]\ninbox = "in"\noutbox = "out"\nstate_dir = "state"\n')
    (conf / "in").mkdir()
    (conf / "in" / "x.log").write_text("2026 WARN w\n")
    proc = run_cli("--config", str(config), "--once")
    assert proc.returncode == 0, proc.stderr
    assert (conf / "out" / "x.log").read_text() == "2026 WARN w\n"
    assert (conf / "state" / "inboxd.db").is_file()


def test_command_line_wins_over_the_daemon_table(tmp_path: Path) -> None:
    config = tmp_path / "inboxd.toml"
    config.write_text('[daemon]\noutbox = "elsewhere"\n')
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "x.log").write_text("2026 INFO i\n")
    proc = run_daemon(tmp_path, "--config", str(config), "--once")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "outbox" / "x.log").read_text() == "2026 INFO i\n"
    assert not (tmp_path / "elsewhere").exists()


def test_reload_imports_edited_processor_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from processors.pipeline import load_pipeline

    monkeypatch.syspath_prepend(str(tmp_path))
    module = tmp_path / "inboxd_reload_rules.py"
    module.write_text('def route(line):\n    yield "end", "A:" + line\n')
    table = {"start": "inboxd_reload_rules:route"}
    before = load_pipeline(table)
    module.write_text('def route(line):\n    yield "end", "Bee:" + line\n')
    kept = load_pipeline(table)
    fresh = load_pipeline(table, reload=True)
    assert list(before.nodes["start"].fn("x")) == [("end", "A:x")]
    assert list(kept.nodes["start"].fn("x")) == [("end", "A:x")]
    assert list(fresh.nodes["start"].fn("x")) == [("end", "Bee:x")]


def test_reload_with_broken_code_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from processors.errors import ConfigError
    from processors.pipeline import load_pipeline

    monkeypatch.syspath_prepend(str(tmp_path))
    module = tmp_path / "inboxd_broken_rules.py"
    module.write_text('def route(line):\n    yield "end", line\n')
    table = {"start": "inboxd_broken_rules:route"}
    running = load_pipeline(table)
    module.write_text("def route(line):\n    yield (\n")
    with pytest.raises(ConfigError, match="inboxd_broken_rules"):
        load_pipeline(table, reload=True)
    assert list(running.nodes["start"].fn("x")) == [("end", "x")]


# -- user modules beside the config -------------------------------------------------------


def test_user_module_named_like_an_inboxd_package_loads_from_its_folder(tmp_path: Path) -> None:
    import processors
    from processors.pipeline import load_pipeline

    (tmp_path / "processors.py").write_text('def go(line):\n    yield "end", "mine:" + line\n')
    pipeline = load_pipeline({"start": "processors:go"}, folders=[tmp_path])
    assert list(pipeline.nodes["start"].fn("x")) == [("end", "mine:x")]
    assert sys.modules["processors"] is processors  # inboxd's own package untouched
    module = pipeline.nodes["start"].fn.__module__
    assert module.startswith("_inboxd_user_") and module.endswith("_processors")


def test_user_package_with_relative_imports_loads_by_path(tmp_path: Path) -> None:
    from processors.pipeline import load_pipeline

    pkg = tmp_path / "web"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "consts.py").write_text('TAG = "end"\n')
    (pkg / "rules.py").write_text(
        "from .consts import TAG\n\ndef go(line):\n    yield TAG, line.upper()\n"
    )
    pipeline = load_pipeline({"start": "web.rules:go"}, folders=[tmp_path])
    assert list(pipeline.nodes["start"].fn("x")) == [("end", "X")]


def test_reload_runs_a_by_path_module_and_its_siblings_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from processors.pipeline import load_pipeline

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "inboxd_sibling_helper.py").write_text('MARK = "a"\n')
    (tmp_path / "store.py").write_text(
        "from inboxd_sibling_helper import MARK\n\ndef go(line):\n    yield 'end', MARK + line\n"
    )
    table = {"start": "store:go"}
    first = load_pipeline(table, folders=[tmp_path])
    (tmp_path / "inboxd_sibling_helper.py").write_text('MARK = "b"\n')
    kept = load_pipeline(table, folders=[tmp_path])
    fresh = load_pipeline(table, folders=[tmp_path], reload=True)
    assert [list(p.nodes["start"].fn("x")) for p in (first, kept, fresh)] == [
        [("end", "ax")],
        [("end", "ax")],
        [("end", "bx")],
    ]


def test_module_in_a_user_package_that_is_a_plain_module_is_a_config_error(
    tmp_path: Path,
) -> None:
    from processors.errors import ConfigError
    from processors.pipeline import load_pipeline

    (tmp_path / "web.py").write_text("def go(line):\n    yield 'end', line\n")
    with pytest.raises(ConfigError, match=r"cannot import module 'web\.rules'"):
        load_pipeline({"start": "web.rules:go"}, folders=[tmp_path])
