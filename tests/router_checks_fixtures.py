"""The router as the output-check tests build it (from `{tag: fn}`, traced), and bad shapes.

Shared by the checked-output tests and the fast-loop tests: the bad shapes are both
checked on output and kept off the fast loops.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from processors.pipeline import Node, Pipeline, processor_name
from processors.router import Router

S, E = "start", "end"


def router(
    spec: dict[str, Any], *, max_outputs: int = 10_000, keep_lines: str = "redacted"
) -> Router:
    """A traced Router over `{tag: fn}` or `{tag: (fn, retries)}`, names from the callables."""
    nodes = {}
    for tag, entry in spec.items():
        fn, retries = entry if isinstance(entry, tuple) else (entry, 0)
        nodes[tag] = Node(tag, processor_name(fn), fn, retries, f"tests:{tag}")
    return Router(Pipeline(nodes), trace=True, max_outputs=max_outputs, keep_lines=keep_lines)


def returns_str(line: str) -> Any:
    return "end" + line


def returns_none(line: str) -> Any:
    return None


def yields_str(line: str) -> Iterator[Any]:
    yield line


def list_of_str(line: str) -> Any:
    return [line]


def good_then_int(line: str) -> Iterator[Any]:
    yield from (("end", line), 42)
