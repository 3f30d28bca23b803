"""The one way a Router is built: from a RouterSpec, by the daemon, a worker process and
`inboxd check`/`inboxd test` alike, so the options a config sets reach every router.

A RouterSpec holds plain values only: it crosses to worker processes by pickle, and each
process loads the pipeline from it itself (factories called there, one state each).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from processors.pipeline import Pipeline, add_import_path, load_pipeline
from processors.router import Router
from store.live.tap import TapHub

DEFAULT_WHERE = "default pipeline"


@dataclass(frozen=True, slots=True)
class RouterSpec:
    """The `[pipeline]` table and the options of the Router that routes it."""

    pipeline: dict[str, Any]
    config: str | None
    trace: bool
    max_hops: int
    max_outputs: int
    keep_lines: str
    # The `[sinks.NAME]` names: tags that leave the graph, which no processor may take.
    sinks: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        """What config errors name as their source."""
        return self.config if self.config is not None else DEFAULT_WHERE

    def load(self, *, reload: bool = False) -> Pipeline:
        """The pipeline, its modules importable from beside the config (again with
        `reload`, for SIGHUP); raises ConfigError."""
        add_import_path(Path(self.config) if self.config is not None else None)
        return load_pipeline(self.pipeline, where=self.where, reload=reload, sinks=self.sinks)


def build_router(
    spec: RouterSpec,
    pipeline: Pipeline | None = None,
    *,
    tap: TapHub | None = None,
    reload: bool = False,
) -> Router:
    """A Router of `pipeline` (loaded from `spec` when None) with `spec`'s options."""
    if pipeline is None:
        pipeline = spec.load(reload=reload)
    return Router(pipeline, trace=spec.trace, max_hops=spec.max_hops, tap=tap,
                  max_outputs=spec.max_outputs, keep_lines=spec.keep_lines,
                  sinks=spec.sinks)  # fmt: skip


__all__ = ["DEFAULT_WHERE", "RouterSpec", "build_router"]
