"""The `stdout` sink: lines written to standard output at each commit (for `make run`
and debugging). At-least-once: a crash before the commit writes them again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

from sinks.base import Sink, SinkContext, SinkSpec


@dataclass(frozen=True, slots=True)
class StdoutSpec(SinkSpec):
    def describe(self, outbox: str, state_dir: str) -> str:
        return "stdout"

    def build(self, ctx: SinkContext) -> StdoutSink:
        return StdoutSink(self, ctx)


class StdoutSink(Sink):
    def __init__(self, spec: StdoutSpec, ctx: SinkContext) -> None:
        super().__init__(spec, ctx)
        self.out: TextIO | None = ctx.stdout
        self._text: list[str] = []

    def add(self, outbox_rel: str, file: str, numbers: list[int], texts: list[str]) -> None:
        self.count += len(texts)
        self._text.extend(texts)

    def before_commit(self) -> None:
        text, self._text = self._text, []
        if not text or self.out is None:
            return
        try:
            self.out.write("\n".join(text) + "\n")
            self.out.flush()
        except (OSError, ValueError) as exc:
            raise self.fault(exc) from exc
