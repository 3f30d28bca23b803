"""A hostile inbox: names that are not UTF-8, a FIFO, a symlink out of the inbox, a file
replaced by a folder of its name and the reverse, an unreadable file, an empty file, a
2 MiB line, a compressed rotation. The daemon stays up, good lines arrive exactly once,
and `/files` shows the files it cannot read as `error` with a reason.

Run as root, the daemon gets a bounding set without CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH (`setpriv`), so that `chmod 000` keeps it out as it keeps out
anyone else; without `setpriv` the unreadable-file case is left out and said so.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon_fixtures import Daemon, outbox_counter
from soak_common import Tally, caught_up, passthrough_daemon, settle, tally

BAD_NAME = b"bad\xffname.log"
LONG_LINE_BYTES = 2 * 1024 * 1024
WAIT_S = 30.0
DROP_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps=-all"]


class UnprivilegedDaemon(Daemon):
    """The daemon with file permissions enforced even when run as root."""

    def command(self, *extra: str) -> list[str]:
        return [*DROP_DAC, "--", *super().command(*extra)]


def can_enforce_permissions() -> bool:
    return os.geteuid() != 0 or shutil.which("setpriv") is not None


@dataclass
class HostileResult:
    tally: Tally
    errors_expected: list[str]
    errors_shown: dict[str, str]
    long_line_reported: bool
    odd_name_kept: bool  # outbox file of the same bytes, /files shows it escaped
    alive: bool
    secs: float
    notes: list[str] = field(default_factory=list)

    @property
    def missing_errors(self) -> list[str]:
        return [p for p in self.errors_expected if not self.errors_shown.get(p)]

    @property
    def ok(self) -> bool:
        return (
            self.tally.exact
            and self.alive
            and not self.missing_errors
            and self.long_line_reported
            and self.odd_name_kept
        )

    def summary(self) -> str:
        t = self.tally
        shown = len(self.errors_expected) - len(self.missing_errors)
        notes = "".join(f" ({n})" for n in self.notes)
        return (
            f"soak hostile: written={t.written} lost={t.lost} doubled={t.doubled} "
            f"garbage={t.garbage} errors_shown={shown}/{len(self.errors_expected)} "
            f"long_line_reported={'yes' if self.long_line_reported else 'no'} "
            f"odd_name_kept={'yes' if self.odd_name_kept else 'no'} "
            f"alive={'yes' if self.alive else 'no'} secs={self.secs:.1f}{notes}"
        )


def numbered(tag: str, n: int) -> list[str]:
    return [f"{tag} {i:05d}" for i in range(n)]


def put(path: Path | bytes, lines: list[str], mode: str = "ab") -> None:
    with open(path, mode) as fh:
        fh.write("".join(f"{x}\n" for x in lines).encode())


def zipped_rotation() -> bytes:
    """A compressed rotation whose bytes hold newlines (read as text, it is garbage)."""
    text = "".join(f"zipped {i} {hashlib.sha256(bytes(i)).hexdigest()}\n" for i in range(2000))
    return gzip.compress(text.encode(), mtime=0)


def lay_out(inbox: Path, want: Counter[str], enforce: bool) -> None:
    """The hostile files present at start-up; the good lines among them go to `want`."""
    for tag, path in [("good", inbox / "good.log"), ("swap1", inbox / "swap1"),
                      ("swap2", inbox / "swap2" / "x.log")]:  # fmt: skip
        path.parent.mkdir(exist_ok=True)
        put(path, numbered(tag, 50))
        want.update(numbered(tag, 50))
    put(os.path.join(os.fsencode(inbox), BAD_NAME), numbered("badname", 20))
    want.update(numbered("badname", 20))
    os.mkfifo(inbox / "fifo.log")
    (inbox / "passwd.log").symlink_to("/etc/passwd")
    (inbox / "empty.log").write_bytes(b"")
    with open(inbox / "long.log", "wb") as fh:
        fh.write(b"short 1\n" + b"L" * LONG_LINE_BYTES + b"\nshort 2\n")
    want.update(["short 1", "short 2"])
    (inbox / "old.log.1.gz").write_bytes(zipped_rotation())
    put(inbox / "locked.log", numbered("locked", 10))
    if enforce:
        (inbox / "locked.log").chmod(0)
    else:
        want.update(numbered("locked", 10))


def swap_kinds(inbox: Path) -> None:
    """The file `swap1` becomes a folder, the folder `swap2` becomes a file."""
    (inbox / "swap1").unlink()
    (inbox / "swap1").mkdir()
    put(inbox / "swap1" / "inner.log", numbered("inner", 10))
    shutil.rmtree(inbox / "swap2")
    put(inbox / "swap2", numbered("flat", 10))


def error_files(d: Daemon) -> dict[str, str]:
    files: list[dict[str, Any]] = d.get("/files")
    return {f["path"]: f.get("reason") or "" for f in files if f["state"] == "error"}


def long_line_reported(d: Daemon) -> bool:
    errors: list[dict[str, Any]] = d.get("/errors")
    return any(e.get("processor") == "inbox" and "long.log" in str(e) for e in errors)


def repair(d: Daemon, want: Counter[str], enforce: bool) -> None:
    """The operator's fixes: the file readable again, the outbox entries in the way moved
    aside by a consumer; one more line each so that the change is seen at once."""
    taken = d.root / "taken"
    taken.mkdir()
    os.replace(d.outbox / "swap1", taken / "swap1")
    os.replace(d.outbox / "swap2", taken / "swap2")
    (d.inbox / "locked.log").chmod(0o644)
    for name, tag in [("swap1/inner.log", "inner"), ("swap2", "flat"), ("locked.log", "locked")]:
        put(d.inbox / name, [f"{tag} more"])
    want.update(numbered("inner", 10) + numbered("flat", 10) + ["inner more", "flat more"])
    want.update(["locked more", *(numbered("locked", 10) if enforce else [])])


def odd_name_kept(d: Daemon) -> bool:
    """The non-UTF-8 name: an outbox file of the same bytes, shown escaped by /files."""
    same = os.path.isfile(os.path.join(os.fsencode(d.outbox), BAD_NAME))
    return same and "bad\\xffname.log" in {f["path"] for f in d.get("/files")}


def delivered(d: Daemon) -> Counter[str]:
    """The outbox, with what the consumer moved aside."""
    got = outbox_counter(d.outbox)
    got.update(outbox_counter(d.root / "taken"))
    return got


def soak_hostile(root: Path) -> HostileResult:
    started = time.monotonic()
    enforce = can_enforce_permissions()
    d = passthrough_daemon(root)
    if os.geteuid() == 0 and enforce:
        d = UnprivilegedDaemon(d.root, config=d.config)
    want: Counter[str] = Counter()
    lay_out(d.inbox, want, enforce)
    expected = ["swap1/inner.log", "swap2"] + (["locked.log"] if enforce else [])
    try:
        d.start()
        settle(caught_up(d, want), WAIT_S)
        swap_kinds(d.inbox)
        settle(lambda: all(p in error_files(d) for p in expected), WAIT_S)
        shown = error_files(d)
        reported = long_line_reported(d)
        up = d.is_running()
        odd_name = odd_name_kept(d)
        repair(d, want, enforce)
        settle(lambda: not want - delivered(d) and not error_files(d), WAIT_S)
        d.stop()
        d.start()  # the hostile inbox at start-up too
        settle(lambda: len(d.get("/files")) > 0, WAIT_S)
        alive = up and d.is_running()
        d.stop()
    finally:
        d.kill()
    notes = [] if enforce else ["unreadable file left out: running as root without setpriv"]
    return HostileResult(tally(want, delivered(d)), expected, shown, reported, odd_name, alive,
                         time.monotonic() - started, notes)  # fmt: skip
