"""The real `logrotate` rotates inbox/app.log while a writer appends to it and the daemon
runs: nothing lost by inboxd, nothing doubled, no garbage, in both rotation modes."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from daemon_fixtures import MakeDaemon, outbox_counter, outbox_files, write_config
from net_fixtures import wait_for
from soak_common import settle
from soak_rotate import logrotate_available, soak_logrotate

pytestmark = pytest.mark.skipif(
    not logrotate_available(), reason="the logrotate binary is not installed (apt logrotate)"
)

ROTATIONS = 4
INTERVAL_S = 1.0
RATE = 2000.0
COPY_SEEN_S = 3.0


def test_create_compress_delaycompress_loses_doubles_and_garbles_nothing(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    d = make_daemon(config=write_config(tmp_path / "conf"))
    r = soak_logrotate(d, "create+compress", rotations=ROTATIONS, interval=INTERVAL_S, rate=RATE)
    print(r.summary())
    assert r.alive, d.stderr()
    assert list(d.inbox.glob("app.log.*.gz")), "logrotate compressed no rotation"
    assert (r.lost_by_inboxd, r.doubled, r.garbage) == (0, 0, 0), (r.summary(), r.examples)
    # `create` renames: logrotate itself loses nothing, so nothing at all is missing.
    assert r.lost_by_logrotate == 0, r.summary()
    # Renamed rotations stay the same file: one outbox file holds it all.
    assert [p.name for p in outbox_files(d.outbox)] == ["app.log"]


def test_copytruncate_loses_and_doubles_nothing_on_inboxds_side(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    d = make_daemon(config=write_config(tmp_path / "conf"))
    r = soak_logrotate(d, "copytruncate", rotations=ROTATIONS, interval=INTERVAL_S, rate=RATE)
    print(r.summary())
    assert r.alive, d.stderr()
    assert (r.lost_by_inboxd, r.doubled, r.garbage) == (0, 0, 0), (r.summary(), r.examples)
    # Copies are read into the original's outbox file, from its checkpoint on.
    assert [p.name for p in outbox_files(d.outbox)] == ["app.log"]


def test_copy_seen_half_written_is_still_read_from_the_checkpoint(
    tmp_path: Path, make_daemon: MakeDaemon
) -> None:
    """logrotate's copy step by step: half of it, seen by the daemon, then the rest,
    then the original truncated and written on."""
    d = make_daemon(config=write_config(tmp_path / "conf"))
    d.inbox.mkdir(parents=True)
    log, copy = d.inbox / "app.log", d.inbox / "app.log.1"
    data = b"".join(f"line {i:06d}\n".encode() for i in range(2000))
    log.write_bytes(data)
    d.start()
    wait_for(lambda: sum(outbox_counter(d.outbox).values()) == 2000, 20, "first pass")
    with copy.open("wb") as fh:
        fh.write(data[: len(data) // 2])
        fh.flush()
        # The daemon lists it, or (if it knows to wait for the copy to finish) had time to.
        settle(lambda: "app.log.1" in {f["path"] for f in d.get("/files")}, COPY_SEEN_S)
        fh.write(data[len(data) // 2 :])
    os.truncate(log, 0)
    with log.open("ab") as fh:
        fh.write(b"after 1\nafter 2\n")
    want = Counter([*data.decode().splitlines(), "after 1", "after 2"])
    wait_for(lambda: outbox_counter(d.outbox)["after 2"] == 1, 20, "lines after the truncate")
    d.stop()
    got = outbox_counter(d.outbox)
    assert got == want, f"doubled: {sum((got - want).values())}"
    assert [p.name for p in outbox_files(d.outbox)] == ["app.log"]
