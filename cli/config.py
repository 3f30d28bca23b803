"""The config as start-up loads it, shared by the daemon and `inboxd check`/`inboxd test`,
and the RouterSpec every router of the daemon, its workers and the subcommands is built
from."""

from __future__ import annotations

import argparse
from dataclasses import replace

from cli.settings import Settings, settings_from
from processors.factory import RouterSpec, build_router
from processors.pipeline import Pipeline
from processors.router import Router


def config_parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--config", metavar="FILE", help="TOML config; default pipeline without")
    return p


def config_argv(config: str | None) -> list[str]:
    """The daemon's options that load `config` (or the default pipeline when None)."""
    return ["--config", config] if config else []


def router_spec(settings: Settings) -> RouterSpec:
    """What a Router of `settings`' pipeline is built from (plain values: picklable)."""
    config = settings.config
    return RouterSpec(
        pipeline=settings.pipeline,
        config=str(config) if config is not None else None,
        trace=settings.trace,
        max_hops=settings.max_hops,
        max_outputs=settings.max_outputs,
        keep_lines=settings.keep_lines,
        sinks=settings.sink_names,
    )


def load_config(argv: list[str] | None) -> tuple[Settings, Pipeline]:
    """Validated settings and pipeline, before any thread starts; raises ConfigError."""
    settings = settings_from(argv)
    return settings, router_spec(settings).load()


def fresh_router(settings: Settings) -> Router:
    """A freshly loaded pipeline (factories called again, so no state leaks from one run
    to the next) in a tracing Router; raises ConfigError when the pipeline does not load."""
    return build_router(replace(router_spec(settings), trace=True))


__all__ = ["config_argv", "config_parser", "fresh_router", "load_config", "router_spec"]
