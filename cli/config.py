"""What `inboxd check` and `inboxd test` share: the config as start-up loads it, and a
fresh pipeline routed by the real router with tracing on."""

from __future__ import annotations

import argparse

from cli.settings import Settings, settings_from
from processors.pipeline import Pipeline, add_import_path, load_pipeline
from processors.router import Router


def config_parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--config", metavar="FILE", help="TOML config; default pipeline without")
    return p


def load_config(config: str | None) -> tuple[Settings, Pipeline]:
    """Settings and pipeline exactly as start-up loads them; raises ConfigError."""
    settings = settings_from(["--config", config] if config else [])
    add_import_path(settings.config)
    where = str(settings.config) if settings.config else "default pipeline"
    sinks = [s.name for s in settings.sinks]
    return settings, load_pipeline(settings.pipeline, where=where, sinks=sinks)


def fresh_router(settings: Settings, where: str) -> Router:
    """A freshly loaded pipeline (factories called again, so no state leaks from one run
    to the next) in a tracing Router; raises ConfigError when the pipeline does not load."""
    sinks = [s.name for s in settings.sinks]
    pipeline = load_pipeline(settings.pipeline, where=where, sinks=sinks)
    return Router(pipeline, trace=True, max_hops=settings.max_hops, sinks=sinks,
                  max_outputs=settings.max_outputs, keep_lines=settings.keep_lines)  # fmt: skip


__all__ = ["config_parser", "fresh_router", "load_config"]
