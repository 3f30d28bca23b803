"""The `file` sink: lines appended to files under the outbox, exactly once.

Its files are outbox files like the `end` sink's: written as each chunk is routed, synced
with the outbox before the checkpoint that covers them, cut back at start-up to the size
committed with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, ClassVar

from sinks.base import Sink, SinkContext, SinkSpec
from sinks.config import relative, template_fields
from sinks.outbox import Outbox
from store.errors import ConfigError

FIELDS = ("file", "tag")


@dataclass(frozen=True, slots=True)
class FileSpec(SinkSpec):
    KEYS: ClassVar[tuple[str, ...]] = ("type", "path")

    path: str = ""  # template relative to the outbox: {file} input path, {tag} the sink

    @classmethod
    def parse(cls, name: str, table: dict[str, Any], where: str) -> FileSpec:
        return cls(name, "file", path=file_template(table.get("path"), f"{where} path"))

    def describe(self, outbox: str, state_dir: str) -> str:
        return f"file sink {outbox}/{self.path} (exactly-once)"

    def build(self, ctx: SinkContext) -> FileSink:
        return FileSink(self, ctx)


def file_template(value: Any, where: str) -> str:
    template = relative(value, where)
    template_fields(template, FIELDS, where)
    if "{file}" not in template and template.endswith("/"):
        raise ConfigError(f"{where}: names a folder; end it with a file name or {{file}}")
    if PurePosixPath(template).parts[0].startswith(".inboxd"):
        raise ConfigError(f"{where}: names starting with .inboxd are inboxd's own")
    return template


def render_path(template: str, file: str, tag: str) -> str:
    """The outbox path of a file sink's line from input path `file`."""
    return template.replace("{file}", file).replace("{tag}", tag)


class FileSink(Sink):
    def __init__(self, spec: FileSpec, ctx: SinkContext) -> None:
        super().__init__(spec, ctx)
        self.path = spec.path
        self.outbox: Outbox = ctx.outbox

    def add(self, outbox_rel: str, file: str, numbers: list[int], texts: list[str]) -> None:
        self.count += len(texts)
        rel = render_path(self.path, outbox_rel, self.name)
        body = "\n".join(texts) + "\n"
        try:
            try:
                data = body.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                data = body.encode("utf-8", "replace")
            self.outbox.append(rel, data)
        except OSError as exc:
            raise self.fault(exc, f"file {rel}") from exc
