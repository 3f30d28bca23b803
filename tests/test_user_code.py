"""User code cannot hurt the daemon (SPEC §3), end to end through `daemon.py`.

Bad output shapes fail their call like an exception (retries + 1 errors, one dead
letter), a generator that never ends is stopped at `max_outputs` with memory bounded, a
C-level iterator that raises is retried, and user modules may be named like inboxd's
own packages.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from daemon_fixtures import REPO, MakeDaemon, daemon_env, dir_args, pause, run_cli
from net_fixtures import wait_for

SHAPES_MODULE = '''\
from itertools import repeat


def route(line):
    """The first word of the line names the processor under test."""
    yield line.split()[0], line


def returns_str(line):
    return "end" + line


def returns_bytes(line):
    return line.encode()


def returns_none(line):
    return None


def yields_line(line):
    yield line


def yields_list(line):
    yield ["end", line]


def yields_bytes_line(line):
    yield "end", line.encode()


def yields_int_tag(line):
    yield 5, line


def yields_three(line):
    yield "end", line, "extra"


def numbers(line):
    """A C-level iterator: int() raises inside map(), with no Python frame of its own."""
    return zip(repeat("end"), map(str, map(int, line.split()[1:])))
'''

SHAPES = {
    "str": ("returns_str", "returned str"),
    "bytes": ("returns_bytes", "returned bytes"),
    "none": ("returns_none", "returned NoneType"),
    "line": ("yields_line", "yielded str"),
    "list": ("yields_list", "yielded list"),
    "bytesline": ("yields_bytes_line", "yielded tuple (str, bytes)"),
    "inttag": ("yields_int_tag", "yielded tuple (int, str)"),
    "three": ("yields_three", "yielded tuple (str, str, str)"),
}


def write_pipeline(folder: Path, modules: dict[str, str], pipeline: str, daemon: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
    config = folder / "inboxd.toml"
    config.write_text(f"[daemon]\n{daemon}\n[pipeline]\n{textwrap.dedent(pipeline)}")
    return config


def db_rows(root: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(root / "var" / "inboxd.db") as db:
        return db.execute(sql).fetchall()


def test_each_bad_shape_fails_like_an_exception_with_and_without_retries(tmp_path: Path) -> None:
    tables = ['start = "shapes:route"']
    lines = []
    for shape, (fn, _) in SHAPES.items():
        for retries in (0, 2):
            tag = f"{shape}{retries}"
            tables.append(f'{tag} = {{ processor = "shapes:{fn}", retries = {retries}, '
                          f'name = "{tag}" }}')  # fmt: skip
            lines.append(f"{tag} some text {shape}")
    config = write_pipeline(tmp_path / "conf", {"shapes": SHAPES_MODULE}, "\n".join(tables))
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "a.log").write_text("\n".join(lines) + "\n")
    proc = run_cli("--config", str(config), *dir_args(tmp_path), "--once")
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    assert not (tmp_path / "outbox" / "a.log").read_text()
    errors = db_rows(tmp_path, "SELECT processor, attempt, message, line FROM errors")
    letters = db_rows(tmp_path, "SELECT processor, tag, line FROM deadletter")
    for shape, (_, words) in SHAPES.items():
        for retries in (0, 2):
            tag = f"{shape}{retries}"
            mine = [e for e in errors if e[0] == tag]
            assert [e[1] for e in mine] == list(range(1, retries + 2)), tag
            assert all(str(e[2]).startswith(f"TypeError: {tag} {words}, expected") for e in mine)
            assert all(e[3] == f"{tag} some text {shape}" for e in mine)
            assert [letter for letter in letters if letter[0] == tag] == [
                (tag, tag, f"{tag} some text {shape}")
            ]
            assert stats[tag] == {"count": 1, "time": stats[tag]["time"],
                                  "errors": retries + 1, "retries": retries}  # fmt: skip


def test_c_level_iterator_that_raises_is_retried(tmp_path: Path) -> None:
    config = write_pipeline(
        tmp_path / "conf",
        {"shapes": SHAPES_MODULE},
        'start = "shapes:route"\nn = { processor = "shapes:numbers", retries = 2 }\n',
    )
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "a.log").write_text("n 1 2\nn 3 x\nn 4\n")
    proc = run_cli("--config", str(config), *dir_args(tmp_path), "--once")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "outbox" / "a.log").read_text() == "1\n2\n4\n"
    errors = db_rows(tmp_path, "SELECT attempt, message, line_no, traceback FROM errors")
    assert [e[:1] + e[2:3] for e in errors] == [(1, 2), (2, 2), (3, 2)]
    assert all(str(e[1]).startswith("ValueError: invalid literal for int()") for e in errors)
    assert all("ValueError" in str(e[3]) for e in errors)
    assert db_rows(tmp_path, "SELECT line_no, processor FROM deadletter") == [(2, "numbers")]
    assert json.loads(proc.stdout)["numbers"]["retries"] == 2


RUNAWAY_MODULE = """\
def forever(line):
    while True:
        yield "end", line
"""
RSS_LIMIT_KB = 300 * 1024


def rss_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for row in status.splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1])
    return 0


def test_runaway_generator_keeps_memory_bounded(tmp_path: Path) -> None:
    config = write_pipeline(
        tmp_path / "conf",
        {"runaway": RUNAWAY_MODULE},
        'start = { processor = "runaway:forever", retries = 1 }\n',
    )
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "a.log").write_text("x" * 1000 + "\n" + "y" * 1000 + "\n")
    proc = subprocess.Popen(
        [sys.executable, "daemon.py", "--config", str(config), *dir_args(tmp_path), "--once"],
        cwd=REPO,
        env=daemon_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    peak = 0
    while proc.poll() is None:
        peak = max(peak, rss_kb(proc.pid))
        if peak > RSS_LIMIT_KB or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"runaway generator: RSS {peak} kB, limit {RSS_LIMIT_KB} kB")
        pause(0.02)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    stats = json.loads(out)
    assert stats["forever"] == {"count": 2, "time": stats["forever"]["time"], "errors": 4,
                                "retries": 2}  # fmt: skip
    errors = db_rows(tmp_path, "SELECT line_no, attempt, message FROM errors")
    assert errors == [
        (n, attempt, "OverflowError: forever yielded more than 10000 pairs (max_outputs)")
        for n in (1, 2)
        for attempt in (1, 2)
    ]
    assert len(db_rows(tmp_path, "SELECT * FROM deadletter")) == 2


# -- user modules named like inboxd's own packages -----------------------------------------

OWN_NAMES_MODULES = {
    "web": """\
        from helpers import SUFFIX


        def post(line):
            yield "store", line + SUFFIX
        """,
    "helpers": 'SUFFIX = "!"\n',
    "store": 'def put(line):\n    yield "processors", "s:" + line\n',
    "processors": 'def run(line):\n    yield "watcher", "p:" + line\n',
    "watcher": 'def see(line):\n    yield "daemon", "w:" + line\n',
    "daemon": 'def main(line):\n    yield "end", "d:" + line\n',
}
OWN_NAMES_PIPELINE = """\
start = "web:post"
store = "store:put"
processors = "processors:run"
watcher = "watcher:see"
daemon = "daemon:main"
"""


def test_user_modules_named_like_inboxd_packages_work_once(tmp_path: Path) -> None:
    config = write_pipeline(tmp_path / "conf", OWN_NAMES_MODULES, OWN_NAMES_PIPELINE)
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "a.log").write_text("one\ntwo\n")
    proc = run_cli("--config", str(config), *dir_args(tmp_path), "--once")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "outbox" / "a.log").read_text() == "d:w:p:s:one!\nd:w:p:s:two!\n"
    assert set(json.loads(proc.stdout)) == {"post", "put", "run", "see", "main"}


def test_user_module_named_web_works_live_and_reloads(make_daemon: MakeDaemon) -> None:
    d = make_daemon()
    config = write_pipeline(d.root / "conf", OWN_NAMES_MODULES, OWN_NAMES_PIPELINE)
    d.config = config
    d.start()
    d.inbox.mkdir(exist_ok=True)
    (d.inbox / "a.log").write_text("one\n")
    out = d.outbox / "a.log"
    wait_for(lambda: out.exists() and out.read_text() == "d:w:p:s:one!\n", 20, "first line")
    assert set(d.stats()) == {"post", "put", "run", "see", "main"}
    assert d.get("/health")["status"] in ("ok", "degraded")
    # Edited code and an edited sibling module take effect on SIGHUP.
    (config.parent / "helpers.py").write_text('SUFFIX = "?"\n')
    (config.parent / "daemon.py").write_text('def main(line):\n    yield "end", "D:" + line\n')
    d.send_signal(signal.SIGHUP)
    log = d.state_dir / "logs" / "inboxd.log"
    wait_for(lambda: '"event": "reloaded"' in log.read_text(), 20, "pipeline reloaded")
    with (d.inbox / "a.log").open("a") as fh:
        fh.write("two\n")
    wait_for(lambda: out.read_text().count("\n") == 2, 20, "second line")
    assert out.read_text() == "d:w:p:s:one!\nD:w:p:s:two?\n"
    d.stop()


@pytest.mark.parametrize(
    ("pipeline", "named"),
    [
        ('start = "nosuchmodule:route"', "'nosuchmodule'"),
        ('start = "web:missing"', "'missing'"),
    ],
)
def test_missing_module_or_callable_is_one_line_and_exit_2(
    tmp_path: Path, pipeline: str, named: str
) -> None:
    config = write_pipeline(tmp_path / "conf", OWN_NAMES_MODULES, pipeline)
    proc = run_cli("--config", str(config), *dir_args(tmp_path), "--once")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and named in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert os.path.basename(str(config)) in proc.stderr


FOUR_MODULE = """\
def four(line):
    return [("end", line + str(i)) for i in range(4)]
"""


@pytest.mark.parametrize(("max_outputs", "delivered"), [(3, ""), (4, "a0\na1\na2\na3\n")])
def test_max_outputs_is_read_from_the_daemon_table(
    tmp_path: Path, max_outputs: int, delivered: str
) -> None:
    config = write_pipeline(
        tmp_path / "conf", {"fan": FOUR_MODULE}, 'start = "fan:four"\n',
        daemon=f"max_outputs = {max_outputs}\n",
    )  # fmt: skip
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "a.log").write_text("a\n")
    proc = run_cli("--config", str(config), *dir_args(tmp_path), "--once")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "outbox" / "a.log").read_text() == delivered
    errors = db_rows(tmp_path, "SELECT message FROM errors")
    assert errors == ([] if delivered else [(f"OverflowError: four yielded more than {max_outputs} "
                                             "pairs (max_outputs)",)])  # fmt: skip


@pytest.mark.parametrize(
    ("setting", "named"),
    [('keep_lines = "some"', "keep_lines"), ("max_outputs = 0", "max_outputs")],
)
def test_bad_keep_lines_or_max_outputs_is_refused(tmp_path: Path, setting: str, named: str) -> None:
    config = write_pipeline(tmp_path / "conf", {"fan": FOUR_MODULE}, 'start = "fan:four"\n',
                            daemon=setting + "\n")  # fmt: skip
    proc = run_cli("--config", str(config), *dir_args(tmp_path), "--once")
    assert proc.returncode == 2
    assert named in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
