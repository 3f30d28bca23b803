"""`inboxd check`: load the config and import every processor, without touching the inbox.

Prints the graph (tag -> processor -> where its lines may go) and exits 0, or exits 2
with the same one-line message start-up gives.
"""

from __future__ import annotations

import sys
from types import CodeType
from typing import TextIO

from processors.cliconfig import config_parser, load_config
from processors.errors import ConfigError
from processors.options import Settings
from processors.pipeline import END, Node, Pipeline
from processors.pipetest import read_tests
from sinks.registry import check_sinks

EXIT_OK, EXIT_USAGE = 0, 2


def describe_node(node: Node) -> str:
    extra = f", retries {node.retries}" if node.retries else ""
    return f"{node.name} ({node.target}{extra})"


def graph_lines(settings: Settings, pipeline: Pipeline) -> list[str]:
    """The graph as text: one line per tag, then the sinks."""
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
    names = [END, *(s.name for s in settings.sinks)]
    width = max(width, *(len(n) for n in names))
    fed = {name: [n.name for n in nodes if name in named_tags(n.fn)] for name in names}
    lines.append("sinks (fed by the processors whose code names them):")
    targets = {END: f"file sink {settings.outbox}/<input path> (exactly-once)"}
    for spec in settings.sinks:
        targets[spec.name] = spec.describe(str(settings.outbox), str(settings.state_dir))
    for name in names:
        feeders = ", ".join(dict.fromkeys(fed[name])) or "no processor names it"
        lines.append(f"  {name:<{width}} -> {targets[name]} <- {feeders}")
    return lines


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
        settings, pipeline = load_config(parsed.config)
        tests = read_tests(settings)
        warnings = check_sinks(settings.sinks, settings.state_dir, strict=False)
    except ConfigError as exc:
        print(f"inboxd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    lines = graph_lines(settings, pipeline)
    if tests:
        lines.append(f"tests: {len(tests)} [[test]] tables (run them with `inboxd test`)")
    print("\n".join(lines), file=out or sys.stdout)
    for warning in warnings:
        print(f"inboxd: warning: {warning}", file=sys.stderr)
    return EXIT_OK


__all__ = ["graph_lines", "main", "named_tags"]
