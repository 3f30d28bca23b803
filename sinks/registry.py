"""Sink types by name: the one place a `type = "..."` is looked up.

Each type's module is imported only when a config names it (a worker process, or a
daemon with no http or nats sink, never loads their clients).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from sinks.base import SenderContext, Sink, SinkContext, SinkSpec
from sinks.config import check_name
from sinks.sender import SpoolSender
from store.errors import ConfigError

# type -> "module:SpecClass"
TYPES = {
    "file": "sinks.file:FileSpec",
    "sqlite": "sinks.sqlite:SqliteSpec",
    "http": "sinks.http:HttpSpec",
    "stdout": "sinks.stdout:StdoutSpec",
    "nats": "sinks.nats:NatsSpec",
}
SINK_TYPES = tuple(TYPES)


def spec_class(kind: str) -> type[SinkSpec]:
    module, _, name = TYPES[kind].partition(":")
    cls: type[SinkSpec] = getattr(importlib.import_module(module), name)
    return cls


def parse_sinks(value: Any, where: str) -> tuple[SinkSpec, ...]:
    """The `[sinks]` table as specs, in the order written."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: sinks: expected [sinks.NAME] tables")
    return tuple(parse_sink(name, table, f"{where}: [sinks.{name}]")
                 for name, table in value.items())  # fmt: skip


def parse_sink(name: str, table: Any, where: str) -> SinkSpec:
    check_name(name, where)
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    kind = table.get("type")
    if kind not in TYPES:
        raise ConfigError(f"{where} type: expected one of {', '.join(TYPES)}, got {kind!r}")
    cls = spec_class(kind)
    unknown = sorted(set(table) - set(cls.KEYS))
    if unknown:
        raise ConfigError(
            f"{where} {unknown[0]}: unknown key for a {kind} sink (allowed: {', '.join(cls.KEYS)})"
        )
    return cls.parse(name, table, where)


def build_sinks(specs: tuple[SinkSpec, ...], ctx: SinkContext) -> list[Sink]:
    """The processing thread's sinks, in the order configured."""
    return [spec.build(ctx) for spec in specs]


def build_senders(specs: tuple[SinkSpec, ...], ctx: SenderContext) -> list[SpoolSender]:
    """One sender thread per spooled sink (not started)."""
    return [s for s in (spec.sender(ctx) for spec in specs) if s is not None]


def check_sinks(specs: tuple[SinkSpec, ...], state_dir: Path, *, strict: bool) -> list[str]:
    """Start-up checks of every sink (ConfigError); returns warnings to show."""
    return [w for w in (spec.check(state_dir, strict=strict) for spec in specs) if w]
