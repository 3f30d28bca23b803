"""`inboxd check`: load the config and import every processor, without touching the inbox.

Prints the graph (tag -> processor -> where its lines may go) and exits 0, or exits 2
with the same one-line message start-up gives.
"""

from __future__ import annotations

import sys
from types import BuiltinFunctionType, CodeType, FunctionType, MethodType
from typing import TextIO

from cli.config import config_argv, config_parser, load_config
from cli.dryrun import DryRun, dry_run, unhandled_warnings
from cli.pipetest import read_tests
from cli.settings import Settings
from processors.errors import ConfigError
from processors.pipeline import END, Node, Pipeline
from sinks.registry import check_sinks

EXIT_OK, EXIT_USAGE = 0, 2


def describe_node(node: Node) -> str:
    extra = f", retries {node.retries}" if node.retries else ""
    return f"{node.name} ({node.target}{extra})"


def graph_lines(settings: Settings, pipeline: Pipeline, run: DryRun | None = None) -> list[str]:
    """The graph as text: one line per tag, then the sinks.

    A sink (or `end`) that no processor's code names is shown fed by the processors
    whose lines reached it in the `[[test]]` dry run `run`, if any did.
    """
    source = str(settings.config) if settings.config else "the embedded default pipeline"
    nodes = list(pipeline.nodes.values())
    width = max(len(n.tag) for n in nodes)
    lines = [f"config {source}: {len(nodes)} processors, max_hops {settings.max_hops}"]
    lines += [f"  {n.tag:<{width}} -> {describe_node(n)}" for n in nodes]
    for rule in settings.inputs:
        how = f"read_from {rule.read_from}"
        if rule.multiline is not None:
            m = rule.multiline
            how += (f", multiline start {m.start.pattern!r} max_lines {m.max_lines}"
                    f" timeout {m.timeout:g} s")  # fmt: skip
        lines.append(f"inputs {rule.match!r}: {how}")
    names = [END, *settings.sink_names]
    width = max(width, *(len(n) for n in names))
    fed = {name: [n.name for n in nodes if name in named_tags(n.fn)] for name in names}
    lines.append(
        "sinks (fed by the processors whose code names them, else by those seen feeding"
        " them in the [[test]] dry run):"
    )
    targets = {END: f"file sink {settings.outbox}/<input path> (exactly-once)"}
    for spec in settings.sinks:
        targets[spec.name] = spec.describe(str(settings.outbox), str(settings.state_dir))
    for name in names:
        feeders = ", ".join(dict.fromkeys(fed[name])) or unnamed(name, nodes, run)
        lines.append(f"  {name:<{width}} -> {targets[name]} <- {feeders}")
    return lines


def unnamed(name: str, nodes: list[Node], run: DryRun | None) -> str:
    """Who feeds `name` when no processor's code names it: the dry run's word, or why
    check cannot tell."""
    seen = run.feeders(name) if run else []
    if seen:
        return f"{', '.join(seen)} (in the [[test]] dry run)"
    text = "no processor names it"
    if run is not None and run.seen:
        text += ", no [[test]] line reached it"
    hidden = [f"{n.name} ({why})" for n in nodes if (why := unseen(n.fn))]
    if hidden:
        text += f" (check cannot see into: {', '.join(dict.fromkeys(hidden))})"
    return text


def unseen(fn: object) -> str | None:
    """Why the tags a processor emits may not be string constants of its code, if so."""
    if isinstance(fn, BuiltinFunctionType):
        return "not Python code"
    func = fn.__func__ if isinstance(fn, MethodType) else fn
    if not isinstance(func, FunctionType):
        return "an object: its tags may be attributes"
    helpers: list[str] = []
    todo = [func.__code__]
    while todo:
        code = todo.pop()
        todo += [c for c in code.co_consts if isinstance(c, CodeType)]
        for global_name in code.co_names:
            value = func.__globals__.get(global_name)
            if value is not func and (
                isinstance(value, FunctionType)
                or (isinstance(value, type) and value.__module__ != "builtins")
            ):
                helpers.append(global_name)
    return f"calls {', '.join(dict.fromkeys(helpers))}" if helpers else None


def named_tags(fn: object) -> set[str]:
    """The strings a processor's code holds as constants (the tags it may emit)."""
    found: set[str] = set()
    seen: set[int] = set()
    call = type(fn).__dict__.get("__call__")
    todo: list[object] = [fn, getattr(fn, "__func__", None), call]
    while todo:
        obj = todo.pop()
        code = getattr(obj, "__code__", None) or (obj if isinstance(obj, CodeType) else None)
        if code is None or id(code) in seen:
            continue
        seen.add(id(code))
        for const in code.co_consts:
            if isinstance(const, str):
                found.add(const)
            elif isinstance(const, CodeType):
                todo.append(const)
            elif isinstance(const, tuple):
                found.update(c for c in const if isinstance(c, str))
    return found


def main(argv: list[str], out: TextIO | None = None) -> int:
    args = config_parser("inboxd check", "Load the config and import every processor.")
    parsed = args.parse_args(argv)
    # The test tables are checked too, so that `check` passing means `test` can run.
    try:
        settings, pipeline = load_config(config_argv(parsed.config))
        tests = read_tests(settings)
        warnings = check_sinks(settings.sinks, settings.state_dir, strict=False)
    except ConfigError as exc:
        print(f"inboxd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    run = dry_run(settings, pipeline.nodes, tests) if tests else None
    lines = graph_lines(settings, pipeline, run)
    if tests:
        lines.append(f"tests: {len(tests)} [[test]] tables (run them with `inboxd test`)")
    print("\n".join(lines), file=out or sys.stdout)
    if run is not None:
        warnings = [*unhandled_warnings(run, tests), *run.problems, *warnings]
    for warning in warnings:
        print(f"inboxd: warning: {warning}", file=sys.stderr)
    return EXIT_OK


__all__ = ["graph_lines", "main", "named_tags"]
