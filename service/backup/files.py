"""The backup file and the restored one: made private, flushed to disk, and given their name
only when whole (a backup's name must be new)."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from service.backup.outcome import BackupError


def check_new_file(destination: Path) -> None:
    if destination.exists() or destination.is_symlink():
        raise BackupError(f"{destination} exists already: a backup never overwrites a file.")
    if not destination.parent.is_dir():
        raise BackupError(f"The folder {destination.parent} does not exist.")


def new_private_file(beside: Path) -> Path:
    """An empty file, readable by its owner only (a backup holds health data), in the folder
    of ``beside``: renaming it there is atomic."""
    path = beside.with_name(f".{beside.name}.partial-{secrets.token_hex(4)}")
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return path


def fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_folder(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be synced
        fsync(path)


def publish(temporary: Path, destination: Path) -> None:
    """Give the finished file its name, which must still be free (a hard link never replaces
    a file; where hard links are not supported, a check and a rename)."""
    try:
        os.link(temporary, destination)
    except FileExistsError:
        raise BackupError(
            f"{destination} appeared while the backup ran: not overwritten."
        ) from None
    except OSError:
        if destination.exists():
            raise BackupError(f"{destination} exists already: not overwritten.") from None
        os.rename(temporary, destination)
    fsync_folder(destination.parent)
