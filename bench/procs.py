"""Processors for the benchmarks: a level router and three one-line processors."""

from __future__ import annotations

from collections.abc import Iterator


def level_router(line: str) -> Iterator[tuple[str, str]]:
    """Route by the level word in the third field."""
    if " ERROR " in line:
        yield "error", line
    elif " WARN " in line:
        yield "warn", line
    else:
        yield "info", line


def mark_error(line: str) -> Iterator[tuple[str, str]]:
    yield "end", "!! " + line


def upper_warn(line: str) -> Iterator[tuple[str, str]]:
    yield "end", line.upper()


def strip_info(line: str) -> Iterator[tuple[str, str]]:
    yield "end", line[21:]


PIPELINE = {
    "start": level_router,
    "error": mark_error,
    "warn": upper_warn,
    "info": strip_info,
}

CONFIG = """\
[pipeline]
start = "procs:level_router"
error = "procs:mark_error"
warn = "procs:upper_warn"
info = "procs:strip_info"
"""
