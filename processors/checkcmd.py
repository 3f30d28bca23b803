"""`inboxd check`: load the config and import every processor, without touching the inbox.

Prints the graph (tag -> processor -> where its lines may go) and exits 0, or exits 2
with the same one-line message start-up gives.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from processors.errors import ConfigError
from processors.options import Settings, settings_from
from processors.pipeline import END, Node, Pipeline, add_import_path, load_pipeline

EXIT_OK, EXIT_USAGE = 0, 2


def config_parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--config", metavar="FILE", help="TOML config; default pipeline without")
    return p


def load_config(config: str | None) -> tuple[Settings, Pipeline]:
    """Settings and pipeline exactly as start-up loads them; raises ConfigError."""
    settings = settings_from(["--config", config] if config else [])
    add_import_path(settings.config)
    where = str(settings.config) if settings.config else "default pipeline"
    return settings, load_pipeline(settings.pipeline, where=where)


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
    lines.append("sinks:")
    lines.append(f"  {END:<{width}} -> file sink {settings.outbox}/<input path>")
    return lines


def main(argv: list[str], out: TextIO | None = None) -> int:
    args = config_parser("inboxd check", "Load the config and import every processor.")
    parsed = args.parse_args(argv)
    # The test tables are checked too, so that `check` passing means `test` can run.
    from processors.pipetest import read_tests

    try:
        settings, pipeline = load_config(parsed.config)
        tests = read_tests(settings)
    except ConfigError as exc:
        print(f"inboxd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    lines = graph_lines(settings, pipeline)
    if tests:
        lines.append(f"tests: {len(tests)} [[test]] tables (run them with `inboxd test`)")
    print("\n".join(lines), file=out or sys.stdout)
    return EXIT_OK


__all__ = ["config_parser", "graph_lines", "load_config", "main"]
