"""The folders inboxd works in, made at start-up: one line when that cannot be done."""

from __future__ import annotations

from pathlib import Path

from store.errors import ConfigError


def make_folder(folder: Path, what: str) -> None:
    """Make `folder` (the `what`: inbox, outbox, state folder) and its parents if missing.

    ConfigError, in one line naming the path, when it or a folder above it exists as
    something else (a regular file, a dangling link), or when it cannot be made.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = _not_a_folder(folder)
        if blocker is None:
            raise ConfigError(f"{folder}: {what} cannot be made") from None
        if blocker == folder:
            raise ConfigError(f"{folder}: not a folder, so it cannot be the {what}") from None
        raise ConfigError(f"{folder}: {what} cannot be made: {blocker} is not a folder") from None
    except OSError as exc:
        raise ConfigError(f"{folder}: {what} cannot be made: {exc.strerror}") from None


def _not_a_folder(folder: Path) -> Path | None:
    """The first of `folder` and the folders above it (outermost first) that exists and is
    not a folder."""
    for path in (*reversed(folder.parents), folder):
        if path.is_symlink() and not path.exists():
            return path
        if path.exists() and not path.is_dir():
            return path
    return None
