"""logrotate's `copytruncate` against a live writer, step by step through the reader.

Between logrotate's copy and its truncate the writer goes on appending to the original,
and the reader may read those lines from the original before the cut: the checkpoint
the original has when it is cut is then past the end of its copy. Meanwhile earlier
copies are renamed along (app.log.1 -> app.log.2). Each interleaving is replayed through
the reader's own steps with a fake clock: no sleeps, no threads.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from reader_fixtures import Reader, all_outbox_lines, append_lines

from watcher.reading.copies import COPY_WAIT_S
from watcher.reading.reader import Found


def lines(start: int, stop: int) -> list[str]:
    return [f"app {i:09d} {'x' * (i % 29)}" for i in range(start, stop)]


def found(path: Path, rel: str) -> Found:
    st = os.stat(path)
    return Found((st.st_dev, st.st_ino), rel)


def shift(inbox: Path) -> None:
    """logrotate's rename chain: app.log.N -> app.log.N+1, highest first."""
    numbered = sorted(
        (int(p.name.rsplit(".", 1)[1]) for p in inbox.glob("app.log.*")), reverse=True
    )
    for n in numbered:
        os.rename(inbox / f"app.log.{n}", inbox / f"app.log.{n + 1}")


class Rotation:
    """A reader over inbox/app.log, a fake clock, and the writer's next line number."""

    def __init__(self, root: Path) -> None:
        self.r = Reader(root)
        self.now = 1000.0
        self.r.reader.clock = lambda: self.now
        self.log = self.r.settings.inbox / "app.log"
        self.next = 0

    def write(self, n: int) -> None:
        append_lines(self.log, lines(self.next, self.next + n))
        self.next += n

    def read_original(self) -> None:
        """One reader step over the original only (the copy not listed yet)."""
        self.r.reader.process([found(self.log, "app.log")], final=False)
        self.r.reader.commit()

    def settle(self) -> None:
        """A full pass, then whatever waits, once the wait for copies is over."""
        self.r.pass_()
        self.now += COPY_WAIT_S + 1
        self.r.reader.process(self.r.reader.due_partials(), final=False)
        self.r.pass_()


def test_lines_read_between_the_copy_and_the_cut_are_not_read_again(tmp_path: Path) -> None:
    """The reader reads the original past the copy, then sees the cut, then the copy."""
    t = Rotation(tmp_path)
    try:
        t.write(100)
        t.r.pass_()
        shutil.copyfile(t.log, t.log.with_name("app.log.1"))  # logrotate's copy
        t.write(30)  # written after the copy: logrotate's copy misses them
        t.read_original()  # ... but the reader has them, from the original
        os.truncate(t.log, 0)  # logrotate's cut
        t.write(10)
        t.r.pass_()
        copy = t.r.reader.files[found(t.log.with_name("app.log.1"), "").key]
        assert copy.offset == os.path.getsize(t.log.with_name("app.log.1")), "not placed at once"
        assert copy.lines == 100
        t.settle()
        assert all_outbox_lines(t.r) == lines(0, 140)
        assert [p.name for p in t.r.settings.outbox.iterdir()] == ["app.log"]
    finally:
        t.r.reader.close()


def test_a_copy_seen_before_the_cut_then_shorter_than_the_checkpoint(tmp_path: Path) -> None:
    """The copy is listed while the original is live (it waits), the original is read
    past it, cut, and the copy renamed along by the next rotation before it is placed."""
    t = Rotation(tmp_path)
    inbox = t.r.settings.inbox
    try:
        t.write(100)
        t.r.pass_()
        shutil.copyfile(t.log, inbox / "app.log.1")
        t.write(25)
        t.r.pass_()  # the original to its end, then the copy: a live original, it waits
        os.truncate(t.log, 0)
        t.write(40)
        shift(inbox)  # the next rotation: app.log.1 -> app.log.2, a new copy, a new cut
        shutil.copyfile(t.log, inbox / "app.log.1")
        t.write(5)
        t.read_original()
        os.truncate(t.log, 0)
        t.write(10)
        t.settle()
        assert all_outbox_lines(t.r) == lines(0, 180)
        assert [p.name for p in t.r.settings.outbox.iterdir()] == ["app.log"]
    finally:
        t.r.reader.close()


def test_a_waiting_copy_renamed_along_is_looked_at_under_its_new_name(tmp_path: Path) -> None:
    t = Rotation(tmp_path)
    inbox = t.r.settings.inbox
    try:
        t.write(100)
        t.r.pass_()
        shutil.copyfile(t.log, inbox / "app.log.1")
        t.r.pass_()  # a copy of a live original: it waits
        t.now += COPY_WAIT_S / 2 + 1
        shift(inbox)
        t.r.pass_()
        assert [item.rel for item in t.r.reader.due_partials()] == ["app.log.2"]
        t.now += COPY_WAIT_S / 2 + 1  # the wait counts from the first sighting
        t.r.reader.process(t.r.reader.due_partials(), final=False)
        t.r.reader.commit()
        assert found(inbox / "app.log.2", "").key in t.r.reader.files
        assert all_outbox_lines(t.r) == lines(0, 100)
    finally:
        t.r.reader.close()
