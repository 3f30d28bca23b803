"""Start-up checks of the state folder and the outbox, and the outbox's state marker.

Exactly-once rests on the checkpoints in `inboxd.db`. If that database is lost (or
another one is pointed at), every input line would be delivered again without a word.
The outbox therefore holds a marker naming the database it was written with; start-up
refuses, with one line naming the choices, when the database is new or another one
while the outbox holds data.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from pathlib import Path

from store.checkpoints import CheckpointStore
from store.errors import ConfigError
from store.folders import make_folder

MARKER_NAME = ".inboxd-state"
INSTANCE_KEY = "instance"


def _marker(outbox: Path) -> str | None:
    try:
        doc = json.loads((outbox / MARKER_NAME).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{outbox / MARKER_NAME}: cannot read the state marker: {exc}") from None
    value = doc.get("database") if isinstance(doc, dict) else None
    return str(value) if value else None


def _write_marker(outbox: Path, instance: str, db_path: Path) -> None:
    tmp = outbox / (MARKER_NAME + ".new")
    body = json.dumps({"database": instance, "path": str(db_path.resolve())}) + "\n"
    with open(tmp, "w") as fh:
        fh.write(body)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, outbox / MARKER_NAME)


def holds_data(outbox: Path) -> bool:
    """Whether any file under the outbox (but inboxd's own) has a byte in it."""
    stack = [str(outbox)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for e in entries:
            if e.name.startswith(".inboxd-"):
                continue
            try:
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                elif e.is_file(follow_symlinks=False) and e.stat(follow_symlinks=False).st_size:
                    return True
            except OSError:
                continue
    return False


def _open_state(db_path: Path) -> tuple[CheckpointStore, bool]:
    """The database and whether it is new (no identity, no checkpoints)."""
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        store = CheckpointStore(db_path)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"{db_path.parent}: state folder cannot be written: {exc}") from None
    files, outbox = store.load()
    new = store.get_meta(INSTANCE_KEY) is None and not files and not outbox.sizes
    return store, new


def check_state(inbox: Path, outbox: Path, db_path: Path, *, allow_redelivery: bool) -> None:
    """Refuse to start (ConfigError) when the outbox was written under another database,
    or when the inbox, the outbox or the state folder cannot be made or written."""
    for folder, what in ((inbox, "inbox"), (outbox, "outbox")):
        make_folder(folder, what)
    store, new = _open_state(db_path)
    try:
        instance = store.get_meta(INSTANCE_KEY)
        marked = _marker(outbox)
        mismatch = marked is not None and marked != instance
        if (mismatch or (marked is None and new)) and not allow_redelivery and holds_data(outbox):
            what = "a new state database" if new else "another state database"
            raise ConfigError(
                f"{outbox}: holds lines written under {marked or 'an unknown state database'}, "
                f"but {db_path} is {what}: restore inboxd.db, or start with "
                "--allow-redelivery to deliver every input line again"
            )
        try:
            if instance is None:
                instance = uuid.uuid4().hex
                store.set_meta(INSTANCE_KEY, instance)
            _write_marker(outbox, instance, db_path)
        except sqlite3.Error as exc:
            raise ConfigError(f"{db_path}: state database cannot be written: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{outbox}: outbox cannot be written: {exc.strerror}") from None
    finally:
        store.close()
