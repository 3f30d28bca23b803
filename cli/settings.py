"""Daemon options: the command line merged over the config file's `[daemon]` table."""

from __future__ import annotations

import argparse
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from cli.inputs import InputRule, parse_inputs
from processors.errors import ConfigError
from sinks.base import SinkSpec
from sinks.registry import parse_sinks

VERSION = "0.1.0"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
KEEP_LINES = ("redacted", "full", "none")
# Compressed files are never text lines: logrotate's `compress` rotations among them.
DEFAULT_EXCLUDE = ("*.gz", "*.bz2", "*.xz", "*.zst", "*.zip", "*.lz4", "*.Z")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "ip6-localhost"})


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the daemon needs to know before it starts a thread."""

    inbox: Path = Path("inbox")
    outbox: Path = Path("outbox")
    state_dir: Path = Path("var")
    config: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    trace: bool = False
    trace_size: int = 1000
    errors_size: int = 1000
    flush_interval: float = 5.0
    once: bool = False
    log_level: str = "info"
    # Config-file only (no command-line flag).
    max_hops: int = 64
    max_line_bytes: int = 1024 * 1024
    partial_timeout: float = 5.0
    retention_days: float = 14.0
    log_max_bytes: int = 10 * 1024 * 1024
    log_backups: int = 5
    rescan_interval: float = 30.0
    # What errors, dead letters and traces keep of a line: masked, as is, or nothing.
    keep_lines: str = "redacted"
    # Pairs one processor call may yield; past it the call fails with OverflowError.
    max_outputs: int = 10_000
    # Processes that route lines (1: the processing thread routes them itself).
    workers: int = 1
    # A processor call running longer than this is a stall (/health failing, no WATCHDOG).
    stall_timeout: float = 30.0
    # Restarts at one line before it is dead-lettered as poison.
    poison_after: int = 3
    allow_redelivery: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    # `[[inputs]]` tables, in order: the first whose glob matches a file applies.
    inputs: tuple[InputRule, ...] = ()
    # `[sinks.NAME]` tables: where a processor sends a line by emitting the sink's name.
    sinks: tuple[SinkSpec, ...] = ()
    pipeline: dict[str, Any] = field(default_factory=dict)

    @property
    def sink_names(self) -> tuple[str, ...]:
        """The `[sinks.NAME]` names, in config order: tags that leave the graph."""
        return tuple(s.name for s in self.sinks)

    @property
    def db_path(self) -> Path:
        return self.state_dir / "inboxd.db"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"


_PATHS = {"inbox", "outbox", "state_dir", "config"}
_POSITIVE = {"trace_size", "errors_size", "max_hops", "max_line_bytes", "log_max_bytes",
             "max_outputs"}  # fmt: skip
_NON_NEGATIVE = {"flush_interval", "partial_timeout", "retention_days", "log_backups"}
_POSITIVE_TOO = {"stall_timeout", "poison_after", "workers"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="inboxd",
        description="Watch an inbox folder and route every new line through processors.",
        argument_default=argparse.SUPPRESS,
        epilog="subcommands: check, test, tap (see `inboxd check --help`)",
    )
    p.add_argument("--inbox", metavar="DIR", help="folder watched recursively (./inbox)")
    p.add_argument("--outbox", metavar="DIR", help="where lines tagged end go (./outbox)")
    p.add_argument("--state-dir", metavar="DIR", help="inboxd.db and logs/ (./var)")
    p.add_argument("--config", metavar="FILE", help="TOML config; default pipeline without")
    p.add_argument("--host", metavar="HOST", help="dashboard address (127.0.0.1)")
    p.add_argument("--port", metavar="N", type=int, help="dashboard port (8000)")
    p.add_argument("--token", metavar="TOKEN", help="bearer token for the API ($INBOXD_TOKEN)")
    p.add_argument("--trace", action="store_true", help="record the path of every line")
    p.add_argument("--trace-size", metavar="N", type=int, help="traces kept in memory (1000)")
    p.add_argument("--errors-size", metavar="N", type=int, help="errors kept in memory (1000)")
    p.add_argument("--flush-interval", metavar="S", type=float, help="seconds between flushes")
    p.add_argument("--once", action="store_true", help="process the inbox, print /stats, exit")
    p.add_argument("--log-level", metavar="LEVEL", help="debug, info, warning, error")
    p.add_argument("--workers", metavar="N", type=int, help="processes that route lines (1)")
    p.add_argument(
        "--allow-redelivery",
        action="store_true",
        help="start although the outbox was written under another state database",
    )
    p.add_argument("--version", action="version", version=f"inboxd {VERSION}")
    return p


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _coerce(key: str, value: Any, where: str, base: Path) -> Any:
    kinds = {f.name: f.type for f in fields(Settings)}
    kind = kinds[key]
    if key in _PATHS:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: {key}: expected a path string, got {value!r}")
        p = Path(value).expanduser()
        return p if p.is_absolute() else base / p
    if kind == "tuple[str, ...]":
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{where}: {key}: expected a list of glob strings, got {value!r}")
        return tuple(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {key}: expected true or false, got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: {key}: expected an integer, got {value!r}")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: {key}: expected a number, got {value!r}")
        value = float(value)
    elif kind in ("str", "str | None") and not isinstance(value, str):
        raise ConfigError(f"{where}: {key}: expected a string, got {value!r}")
    if (key in _POSITIVE or key in _POSITIVE_TOO) and value <= 0:
        raise ConfigError(f"{where}: {key}: must be greater than 0, got {value!r}")
    if key in _NON_NEGATIVE and value < 0:
        raise ConfigError(f"{where}: {key}: must not be negative, got {value!r}")
    if key == "port" and not 0 <= value <= 65535:
        raise ConfigError(f"{where}: port: must be between 0 and 65535, got {value!r}")
    if key == "log_level" and value.lower() not in LOG_LEVELS:
        raise ConfigError(f"{where}: log_level: expected one of {', '.join(LOG_LEVELS)}")
    if key == "keep_lines" and value not in KEEP_LINES:
        raise ConfigError(f"{where}: keep_lines: expected one of {', '.join(KEEP_LINES)}")
    return value.lower() if key == "log_level" else value


def _read_config(config_path: Path, values: dict[str, Any]) -> dict[str, Any]:
    """Put the `[daemon]` table into `values`; returns the `[pipeline]` table."""
    doc = load_toml(config_path)
    where = str(config_path)
    # [[test]] tables are read by `inboxd test` only.
    unknown = sorted(set(doc) - {"daemon", "pipeline", "test", "inputs", "sinks"})
    if unknown:
        raise ConfigError(
            f"{where}: unknown table [{unknown[0]}] "
            "(expected [daemon], [pipeline], [[inputs]], [sinks.NAME], [[test]])"
        )
    if "inputs" in doc:
        values["inputs"] = parse_inputs(doc["inputs"], where)
    if "sinks" in doc:
        values["sinks"] = parse_sinks(doc["sinks"], where)
    daemon = doc.get("daemon", {})
    if not isinstance(daemon, dict):
        raise ConfigError(f"{where}: daemon: expected a table")
    allowed = {f.name for f in fields(Settings)} - {"pipeline", "config", "once", "inputs", "sinks"}
    for key, value in daemon.items():
        if key not in allowed:
            raise ConfigError(f"{where}: [daemon] {key}: unknown option")
        values[key] = _coerce(key, value, f"{where}: [daemon]", config_path.parent)
    pipeline = doc.get("pipeline", {})
    if not isinstance(pipeline, dict):
        raise ConfigError(f"{where}: pipeline: expected a table")
    return pipeline


def settings_from(argv: list[str] | None = None, env: dict[str, str] | None = None) -> Settings:
    """Parse the command line and the config file into validated Settings.

    Raises ConfigError for anything the user must fix; argparse itself exits 2 on bad
    usage.
    """
    env = dict(os.environ) if env is None else env
    cli = vars(build_parser().parse_args(argv))
    values: dict[str, Any] = {}
    token_env = env.get("INBOXD_TOKEN")
    if token_env:
        values["token"] = token_env
    pipeline: dict[str, Any] = {}
    config_arg = cli.get("config")
    if config_arg:
        config_path = Path(config_arg).expanduser()
        pipeline = _read_config(config_path, values)
        values["config"] = config_path
    for key, value in cli.items():
        if key == "config":
            continue
        name = key.replace("-", "_")
        values[name] = (
            _coerce(name, value, "command line", Path.cwd()) if value is not None else value
        )
    values["pipeline"] = pipeline
    settings = Settings(**values)
    if settings.host not in LOOPBACK_HOSTS and not settings.token and not settings.once:
        origin = "command line: --host" if "host" in cli else f"{values['config']}: [daemon] host"
        raise ConfigError(
            f"{origin}: refusing to serve the API on {settings.host} without a token "
            "(set --token or INBOXD_TOKEN, or bind to 127.0.0.1)"
        )
    return settings
