"""`python daemon.py check` and `python daemon.py test`, run as a user runs them (SPEC §10)."""

from __future__ import annotations

from pathlib import Path

from daemon_fixtures import run_cli

RULES = """\
class Counter:
    def __init__(self, start):
        self.n = start

    def __call__(self, line):
        self.n += 1
        yield "end", f"{self.n} {line}"


def route(line):
    if "ERROR" in line:
        yield "redact", line
    elif "boom" in line:
        raise ValueError("boom")
    elif "count" in line:
        yield "count", line
    elif "skip" not in line:
        yield "end", line
"""

PIPELINE = """\
[pipeline]
start = "rules:route"
redact = "processors.builtin:redact_secrets"
count = { processor = "rules:Counter", options = { start = 10 } }
"""

PASSING = """
[[test]]
name = "errors are masked"
input = ["2026-11-27T12:00:00Z ERROR db password=x", "plain", "skip me"]
outbox = ["2026-11-27T12:00:00Z ERROR db password=***", "plain"]
deadletters = 0
traces = [["start", "redact", "end"], ["start", "end"], ["start"]]

[[test]]
name = "a factory starts afresh in every test"
input = ["count a", "count b"]
outbox = ["11 count a", "12 count b"]

[[test]]
name = "and in the next one"
input = ["count c"]
outbox = ["11 count c"]

[[test]]
name = "a failing line is dead-lettered"
input = ["boom", "after"]
outbox = ["after"]
deadletters = 1
traces = [["start"], ["start", "end"]]
"""

FAILING = """
[[test]]
name = "expects too much"
input = ["boom", "ok"]
outbox = ["ok", "missing line"]
deadletters = 0
"""


def config(tmp_path: Path, tests: str) -> Path:
    (tmp_path / "rules.py").write_text(RULES)
    path = tmp_path / "inboxd.toml"
    path.write_text(PIPELINE + tests)
    return path


def test_check_prints_the_graph_and_exits_0(tmp_path: Path) -> None:
    path = config(tmp_path, PASSING)
    path.write_text('[daemon]\ninbox = "never-made"\nstate_dir = "no-state"\n' + path.read_text())
    result = run_cli("check", "--config", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("start" in ln and "route (rules:route)" in ln for ln in lines), result.stdout
    assert any("redact" in ln and "redact_secrets" in ln for ln in lines)
    assert any("count" in ln and "Counter" in ln for ln in lines)
    assert any(ln.strip().startswith("end") and "outbox" in ln for ln in lines)
    assert not (tmp_path / "never-made").exists() and not (tmp_path / "no-state").exists()


def test_check_counts_the_test_tables_and_refuses_a_bad_one(tmp_path: Path) -> None:
    good = run_cli("check", "--config", str(config(tmp_path, PASSING)))
    assert good.returncode == 0 and "tests: 4 [[test]] tables" in good.stdout
    bad = run_cli("check", "--config", str(config(tmp_path, '[[test]]\nname = "x"\n')))
    assert bad.returncode == 2 and "input: missing" in bad.stderr


def test_check_without_config_shows_the_default_pipeline() -> None:
    result = run_cli("check")
    assert result.returncode == 0, result.stderr
    assert "tag_router" in result.stdout and "filter_errors" in result.stdout


def test_check_refuses_a_bad_config_with_the_start_up_message(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[pipeline]\nstart = "nowhere_module:fn"\n')
    checked = run_cli("check", "--config", str(path))
    started = run_cli("--config", str(path), "--once", "--state-dir", str(tmp_path / "var"))
    assert checked.returncode == 2 and started.returncode == 2
    assert checked.stderr == started.stderr
    assert checked.stderr.count("\n") == 1 and "nowhere_module" in checked.stderr
    assert "Traceback" not in checked.stderr


def test_test_runs_every_table_and_exits_0_when_all_pass(tmp_path: Path) -> None:
    result = run_cli("test", "--config", str(config(tmp_path, PASSING)))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        "ok    errors are masked",
        "ok    a factory starts afresh in every test",
        "ok    and in the next one",
        "ok    a failing line is dead-lettered",
    ]
    assert "4 passed, 0 failed" in result.stdout


def test_test_fails_with_a_readable_diff(tmp_path: Path) -> None:
    result = run_cli("test", "--config", str(config(tmp_path, PASSING + FAILING)))
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "FAIL  expects too much" in out
    assert "-missing line" in out
    assert "deadletters: expected 0, got 1" in out
    assert "ValueError: boom" in out
    assert "4 passed, 1 failed" in out


def test_test_notices_wrong_traces_and_wrong_deadletter_counts(tmp_path: Path) -> None:
    wrong = """
[[test]]
name = "wrong path"
input = ["ERROR x"]
traces = [["start", "end"]]

[[test]]
name = "wrong count"
input = ["fine"]
deadletters = 1
"""
    result = run_cli("test", "--config", str(config(tmp_path, wrong)))
    assert result.returncode == 1
    assert "FAIL  wrong path" in result.stdout and "+start redact end" in result.stdout
    assert "FAIL  wrong count" in result.stdout


def test_test_exits_2_for_a_bad_test_table(tmp_path: Path) -> None:
    for table, expected in (
        ('[[test]]\nname = "x"\ninput = "not a list"\n', "input: expected a list"),
        ('[[test]]\nname = "x"\ninput = []\nexpect = []\n', "unknown key 'expect'"),
        ('[[test]]\nname = "x"\n', "input: missing"),
    ):
        result = run_cli("test", "--config", str(config(tmp_path, table)))
        assert result.returncode == 2, (table, result.stdout, result.stderr)
        assert expected in result.stderr and "Traceback" not in result.stderr


def test_test_exits_2_when_there_is_no_test_table(tmp_path: Path) -> None:
    path = config(tmp_path, "")
    result = run_cli("test", "--config", str(path))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.splitlines() == [f"inboxd: {path}: no [[test]] tables, nothing to test"]
    assert result.stdout == ""
    result = run_cli("test")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.splitlines() == [
        "inboxd: no --config given: no [[test]] tables, nothing to test"
    ]
