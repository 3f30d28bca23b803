"""`inboxd test`: run the `[[test]]` tables of a config, like `vector test`.

```toml
[[test]]
name = "errors are masked"
input = ["2026-11-27T12:00:00Z ERROR db password=x"]
outbox = ["2026-11-27T12:00:00Z ERROR db password=***"]
deadletters = 0                                   # optional
traces = [["start", "error", "redact", "end"]]    # optional, in input order
```

Each test gets a freshly loaded pipeline (factories called again, so no state leaks
from one test to the next) and runs through the real Router with tracing on. Prints
`ok` or `FAIL` per test with a diff; exits 0 when all pass, 1 when one fails, 2 for a
bad config or one without tests.
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from cli.config import config_argv, config_parser, fresh_router, load_config
from cli.settings import Settings, load_toml
from processors.errors import ConfigError
from processors.router import Routed

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
TEST_KEYS = frozenset({"name", "input", "outbox", "sinks", "deadletters", "traces"})
TEST_FILE = "test.log"


@dataclass(frozen=True)
class PipelineTest:
    name: str
    input: list[str]
    outbox: list[str] | None
    deadletters: int | None
    traces: list[list[str]] | None
    sinks: dict[str, list[str]] | None = None


def _strings(value: Any, where: str, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {key}: expected a list of strings, got {value!r:.80}")
    return list(value)


def parse_test(
    table: Any, index: int, where: str, sink_names: tuple[str, ...] = ()
) -> PipelineTest:
    """One `[[test]]` table, validated; raises ConfigError naming the test and the key."""
    here = f"{where}: [[test]] #{index}"
    if not isinstance(table, dict):
        raise ConfigError(f"{here}: expected a table")
    name = table.get("name", f"test {index}")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{here}: name: expected a non-empty string")
    here = f"{where}: [[test]] {name!r}"
    unknown = sorted(set(table) - TEST_KEYS)
    if unknown:
        allowed = ", ".join(sorted(TEST_KEYS))
        raise ConfigError(f"{here}: unknown key {unknown[0]!r} (allowed: {allowed})")
    if "input" not in table:
        raise ConfigError(f"{here}: input: missing (a list of lines)")
    sinks = _sinks(table.get("sinks"), here, sink_names)
    dead = table.get("deadletters")
    if dead is not None and (isinstance(dead, bool) or not isinstance(dead, int) or dead < 0):
        raise ConfigError(f"{here}: deadletters: expected an integer >= 0, got {dead!r}")
    traces = table.get("traces")
    if traces is not None:
        if not isinstance(traces, list):
            raise ConfigError(f"{here}: traces: expected a list of paths")
        traces = [_strings(t, here, "traces") for t in traces]
    outbox = table.get("outbox")
    return PipelineTest(
        name=name,
        input=_strings(table["input"], here, "input"),
        outbox=None if outbox is None else _strings(outbox, here, "outbox"),
        deadletters=dead,
        traces=traces,
        sinks=sinks,
    )


def _sinks(value: Any, here: str, names: tuple[str, ...]) -> dict[str, list[str]] | None:
    """`sinks = { alerts = ["..."] }`: the lines each named sink must receive, in order."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f'{here}: sinks: expected a table like {{ alerts = ["..."] }}')
    for name in value:
        if name not in names:
            known = ", ".join(names) or "none"
            raise ConfigError(f"{here}: sinks: {name!r} is not a [sinks.NAME] (known: {known})")
    return {name: _strings(lines, here, f"sinks.{name}") for name, lines in value.items()}


def read_tests(settings: Settings) -> list[PipelineTest]:
    if settings.config is None:
        return []
    tables = load_toml(settings.config).get("test", [])
    where = str(settings.config)
    if not isinstance(tables, list):
        raise ConfigError(f"{where}: test: expected [[test]] tables")
    return [parse_test(t, i, where, settings.sink_names) for i, t in enumerate(tables, start=1)]


def diff(label: str, expected: list[str], got: list[str]) -> list[str]:
    lines = difflib.unified_diff(
        expected, got, f"expected {label}", f"got {label}", lineterm="", n=2
    )
    return [f"    {line}" for line in lines]


def compare(test: PipelineTest, routed: Routed) -> list[str]:
    """What differs between `test`'s expectations and `routed`; empty when it passed."""
    problems: list[str] = []
    if test.outbox is not None and routed.out != test.outbox:
        problems += diff("outbox", test.outbox, routed.out)
    for name, expected in (test.sinks or {}).items():
        sunk = routed.sinks[name][1] if name in routed.sinks else []
        if sunk != expected:
            problems += diff(f"sink {name}", expected, sunk)
    if test.deadletters is not None and len(routed.deadletters) != test.deadletters:
        problems.append(
            f"    deadletters: expected {test.deadletters}, got {len(routed.deadletters)}"
        )
        problems += [f"      line {d.line_no} at {d.tag}: {d.message}" for d in routed.deadletters]
    if test.traces is not None:
        got = [list(r.path) for r in routed.traces.records()] if routed.traces else []
        if got != test.traces:
            problems += diff("traces", [" ".join(t) for t in test.traces],
                             [" ".join(t) for t in got])  # fmt: skip
    if problems and routed.errors:
        problems.append("    processor errors:")
        problems += [f"      line {e.line_no} {e.processor}: {e.message}" for e in routed.errors]
    return problems


def run_test(settings: Settings, test: PipelineTest) -> list[str]:
    router = fresh_router(settings)
    return compare(test, router.route(list(test.input), TEST_FILE, 1))


def run_all(settings: Settings, tests: list[PipelineTest], out: TextIO) -> int:
    failed = 0
    for test in tests:
        problems = run_test(settings, test)
        print(f"{'FAIL' if problems else 'ok':<4}  {test.name}", file=out)
        for line in problems:
            print(line, file=out)
        failed += bool(problems)
    summary = f"{len(tests) - failed} passed, {failed} failed"
    print(summary, file=out)
    return EXIT_FAILED if failed else EXIT_OK


def main(argv: list[str], out: TextIO | None = None) -> int:
    parsed = config_parser("inboxd test", "Run the [[test]] tables of a config.").parse_args(argv)
    try:
        settings, _ = load_config(config_argv(parsed.config))
        tests = read_tests(settings)
        if not tests:
            where = parsed.config or "no --config given"
            print(f"inboxd: {where}: no [[test]] tables, nothing to test", file=sys.stderr)
            return EXIT_USAGE
        return run_all(settings, tests, out or sys.stdout)
    except ConfigError as exc:
        print(f"inboxd: {exc}", file=sys.stderr)
        return EXIT_USAGE
