"""The daemon's engine, a worker process and `inboxd check`/`inboxd test` build their
routers through one factory: the options a config sets (trace, max_hops, max_outputs,
keep_lines, sinks) reach each of them, and the same lines route the same way."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

import daemon
from cli import pipetest
from cli.config import fresh_router, load_config, router_spec
from cli.settings import Settings
from processors.factory import DEFAULT_WHERE, RouterSpec, build_router
from processors.router import Router
from watcher.workers.child import Result
from watcher.workers.pool import make_pool, worker_spec

PIPE = """\
def start(line):
    if line.startswith("loop") and line.count("+") < 8:
        return [("start", line + "+")]  # 9 hops: past max_hops = 5, not the default 64
    if line.startswith("wide"):
        return [("end", line)] * 12  # past max_outputs = 9, not the default 10 000
    if line.startswith("alert"):
        return [("alerts", line), ("end", line)]
    return [("end", line.upper())]
"""

CONFIG = """\
[daemon]
trace = true
max_hops = 5
max_outputs = 9
keep_lines = "none"

[pipeline]
start = "factorypipe:start"

[sinks.alerts]
type = "file"
path = "alerts/{file}"

[[test]]
name = "the config's options reach inboxd test"
input = ["plain", "alert one", "loop", "wide"]
outbox = ["PLAIN", "alert one"]
sinks = { alerts = ["alert one"] }
deadletters = 2
"""

LINES = ["plain", "alert one", "loop", "wide"]
# What the config's options make of LINES, whichever router routes them.
EXPECTED = {
    "out": ["PLAIN", "alert one"],
    "sinks": {"alerts": ([2], ["alert one"])},
    # keep_lines = "none": dead letters keep no line. Line 4 passes max_outputs, line 3
    # max_hops = 5: each is an error and a dead letter.
    "deadletters": [(4, None), (3, None)],
    "errors": [(4, "start"), (3, "start")],
    "traces": 5,
}


def write_config(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "factorypipe.py").write_text(PIPE)
    path = folder / "inboxd.toml"
    path.write_text(CONFIG)
    return path


def options(router: Router) -> tuple[Any, ...]:
    return (router.trace, router.max_hops, router.max_outputs, router.keeper.mode,
            router.sinks, sorted(router.pipeline.nodes))  # fmt: skip


def outcome(
    out: list[str], sinks: Any, deadletters: Any, errors: Any, traces: int
) -> dict[str, Any]:
    return {
        "out": out,
        "sinks": {name: (list(nos), list(lines)) for name, (nos, lines) in sinks.items()},
        "deadletters": [(d.line_no, d.line or None) for d in deadletters],
        "errors": [(e.line_no, e.processor) for e in errors],
        "traces": traces,
    }


def routed_by(router: Router) -> dict[str, Any]:
    routed = router.route(list(LINES), "a.log", 1)
    traces = len(routed.traces.records()) if routed.traces is not None else 0
    return outcome(routed.out, routed.sinks, routed.deadletters, routed.errors, traces)


def routed_by_worker(settings: Settings) -> dict[str, Any]:
    pool = make_pool(settings, lambda line: line)
    pool.start()
    try:
        w = pool.submit("\n".join(LINES).encode(), "a.log", 1, len(LINES))
        result: Result = pool.collect(w)
    finally:
        pool.stop()
        pool.join()
    out = result.out.decode().splitlines()
    return outcome(out, result.sinks, result.deadletters, result.errors, len(result.traces))


@pytest.fixture
def argv(tmp_path: Path) -> list[str]:
    return ["--config", str(write_config(tmp_path / "conf"))]


def test_the_engine_and_check_build_routers_with_the_configs_options(argv: list[str]) -> None:
    settings, pipeline = daemon.load(argv)
    expected = (True, 5, 9, "none", ("alerts",), ["start"])
    assert options(daemon.build_router(settings, pipeline)) == expected
    assert options(fresh_router(settings)) == expected
    assert routed_by(daemon.build_router(settings, pipeline)) == EXPECTED
    assert routed_by(fresh_router(settings)) == EXPECTED


def test_a_worker_process_routes_with_the_configs_options(argv: list[str]) -> None:
    settings, _ = load_config(argv)
    spec = worker_spec(settings)
    assert pickle.loads(pickle.dumps(spec)) == spec  # it crosses to the worker by pickle
    assert spec.router == router_spec(settings)
    assert routed_by_worker(settings) == EXPECTED


def test_inboxd_test_routes_with_the_configs_options(argv: list[str]) -> None:
    assert pipetest.main(argv) == pipetest.EXIT_OK


def test_inboxd_test_traces_even_when_the_daemon_does_not(argv: list[str]) -> None:
    settings, _ = load_config(argv)
    quiet = Settings(**{**settings.__dict__, "trace": False})
    assert fresh_router(quiet).trace
    assert not daemon.build_router(quiet, router_spec(quiet).load()).trace


def test_a_spec_without_config_names_the_default_pipeline() -> None:
    spec = router_spec(Settings())
    assert spec.config is None and spec.where == DEFAULT_WHERE
    assert isinstance(spec, RouterSpec)
    assert "start" in build_router(spec).pipeline.nodes
