"""`python daemon.py check` routes the `[[test]]` inputs in a dry run (SPEC §10): it
warns about tags nothing handles and names who feeds `end` and the sinks when their
code does not say."""

from __future__ import annotations

import time
from pathlib import Path

from daemon_fixtures import run_cli

# The README's pipeline example and its [[test]] example, with the built-in processors.
README_PIPELINE = """\
[pipeline]
start = "processors.builtin:tag_router"
error = { processor = "processors.builtin:filter_errors", retries = 2 }
warn  = { processor = "processors.builtin:Throttle", options = { per_second = 100 }, \
name = "throttle" }

[[test]]
name = "errors are masked"
input = ["2026-11-27T12:00:00Z ERROR db password=x"]
outbox = ["2026-11-27T12:00:00Z ERROR db password=***"]
deadletters = 0
traces = [["start", "error", "redact", "end"]]

[[test]]
name = "the other levels"
input = ["2026-11-27T12:00:00Z INFO up", "2026-11-27T12:00:00Z WARN slow"]
deadletters = 0
"""

# The default pipeline written out: every tag emitted has a processor.
CLEAN = """\
[pipeline]
start = "processors.builtin:tag_router"
error = { processor = "processors.builtin:filter_errors", retries = 2 }
warn = "processors.builtin:keep"
info = "processors.builtin:keep"
debug = "processors.builtin:drop"
redact = "processors.builtin:redact_secrets"

[[test]]
name = "every level"
input = ["a ERROR x", "a WARN x", "a INFO x", "a DEBUG x", "no level", ""]
traces = [["start", "error", "redact", "end"]]
"""

HIDDEN = """\
def send(line):
    return [("alerts" if "ALERT" in line else "end", line)]


def route(line):
    if "hang" in line:
        while True:
            pass
    if "bye" in line:
        raise KeyboardInterrupt("bye")
    if "boom" in line:
        raise ValueError("boom")
    return send(line)


class Forward:
    def __init__(self, to):
        self.to = to

    def __call__(self, line):
        return [(self.to, line)]
"""

HIDDEN_PIPELINE = """\
[pipeline]
start = "hidden:route"

[sinks.alerts]
type = "file"
path = "alerts/{file}"
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "hidden.py").write_text(HIDDEN)
    path = tmp_path / "inboxd.toml"
    path.write_text(text)
    return path


def warnings(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("inboxd: warning: ")]


def sink_line(stdout: str, name: str) -> str:
    lines = [ln for ln in stdout.splitlines() if ln.strip().startswith(f"{name} ")]
    assert len(lines) == 1, stdout
    return lines[0]


def test_the_readme_example_warns_about_the_tags_that_are_dead_lettered(tmp_path: Path) -> None:
    path = write(tmp_path, README_PIPELINE)
    checked = run_cli("check", "--config", str(path))
    assert checked.returncode == 0, checked.stderr
    assert warnings(checked.stderr) == [
        "inboxd: warning: tag 'redact' is emitted by filter_errors (in test 'errors are"
        " masked') and named in the traces of test 'errors are masked' but no processor"
        " or sink handles it; such lines are dead-lettered as UnknownTag",
        "inboxd: warning: tag 'info' is emitted by tag_router (in test 'the other levels')"
        " but no processor or sink handles it; such lines are dead-lettered as UnknownTag",
    ]
    # The throttle (a factory's object) sent the WARN line to `end` in the dry run.
    assert sink_line(checked.stdout, "end").endswith("<- throttle (in the [[test]] dry run)")
    # What check warns about is what the run dead-letters.
    tested = run_cli("test", "--config", str(path))
    assert "UnknownTag: no processor for tag 'redact'" in tested.stdout
    assert "no processor for tag 'info'" in tested.stdout


def test_a_clean_config_gives_no_warning(tmp_path: Path) -> None:
    checked = run_cli("check", "--config", str(write(tmp_path, CLEAN)))
    assert checked.returncode == 0
    assert checked.stderr == ""
    assert sink_line(checked.stdout, "end").endswith("<- redact_secrets")


def test_a_tag_only_named_in_traces_is_warned_about(tmp_path: Path) -> None:
    text = CLEAN + '\n[[test]]\nname = "typo"\ninput = ["x"]\ntraces = [["start", "inf"]]\n'
    checked = run_cli("check", "--config", str(write(tmp_path, text)))
    assert checked.returncode == 0
    assert warnings(checked.stderr) == [
        "inboxd: warning: tag 'inf' is named in the traces of test 'typo' but no processor"
        " or sink handles it; such lines are dead-lettered as UnknownTag"
    ]


def test_end_and_sinks_reached_through_a_helper_name_the_processor(tmp_path: Path) -> None:
    text = HIDDEN_PIPELINE + '[[test]]\nname = "t"\ninput = ["ALERT x", "plain"]\n'
    checked = run_cli("check", "--config", str(write(tmp_path, text)))
    assert checked.returncode == 0 and checked.stderr == ""
    assert sink_line(checked.stdout, "end").endswith("<- route (in the [[test]] dry run)")
    assert sink_line(checked.stdout, "alerts").endswith("<- route (in the [[test]] dry run)")


def test_without_a_line_reaching_end_check_says_what_it_cannot_see(tmp_path: Path) -> None:
    text = HIDDEN_PIPELINE.replace(
        '"hidden:route"',
        '"hidden:route"\nfwd = { processor = "hidden:Forward", options = { to = "end" } }',
    )
    untested = run_cli("check", "--config", str(write(tmp_path, text)))
    assert untested.returncode == 0
    assert sink_line(untested.stdout, "end").endswith(
        "<- no processor names it (check cannot see into: route (calls send),"
        " Forward (an object: its tags may be attributes))"
    )
    text += '[[test]]\nname = "t"\ninput = ["boom"]\n'
    tested = run_cli("check", "--config", str(write(tmp_path, text)))
    assert tested.returncode == 0 and "Traceback" not in tested.stderr
    assert "<- no processor names it, no [[test]] line reached it (check cannot see into:" in (
        sink_line(tested.stdout, "end")
    )


def test_a_processor_that_hangs_or_exits_does_not_stop_check(tmp_path: Path) -> None:
    text = HIDDEN_PIPELINE + (
        '[[test]]\nname = "first"\ninput = ["plain"]\n'
        '[[test]]\nname = "stuck"\ninput = ["hang"]\n'
        '[[test]]\nname = "never run"\ninput = ["ALERT"]\n'
    )
    t0 = time.monotonic()
    hung = run_cli("check", "--config", str(write(tmp_path, text)))
    assert time.monotonic() - t0 < 30
    assert hung.returncode == 0, hung.stderr
    assert warnings(hung.stderr) == [
        "inboxd: warning: dry run stopped after 5 s in test 'stuck' in processor route,"
        " which had not returned; the tests after it were not dry-run"
    ]
    # What ran before the budget was spent still counts.
    assert sink_line(hung.stdout, "end").endswith("<- route (in the [[test]] dry run)")
    text = HIDDEN_PIPELINE + '[[test]]\nname = "leaves"\ninput = ["bye"]\n'
    exited = run_cli("check", "--config", str(write(tmp_path, text)))
    assert exited.returncode == 0 and "Traceback" not in exited.stderr
    assert warnings(exited.stderr) == [
        "inboxd: warning: dry run stopped in test 'leaves': KeyboardInterrupt: bye"
    ]
