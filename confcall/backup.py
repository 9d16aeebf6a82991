"""`confcall backup` and `confcall restore`: a consistent copy of the live SQLite database,
and putting one back where no server is using it."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from confcall.errors import StoreError
from confcall.store.sqlite import lock_writer
from confcall.store.sqlite_reads import SqliteReads, damage_found
from confcall.store.sqlite_schema import SCHEMA_VERSION

Progress = Callable[[int, int], None]  # (pages copied, pages in all)
PAGES_PER_STEP = 256  # the live database is locked for writing only while one step copies


@dataclass(frozen=True)
class Copied:
    source: Path
    target: Path
    size: int  # bytes
    conferences: int


def _count(path: Path) -> int:
    reads = SqliteReads.open(path)
    try:
        return reads.counts()["conferences"]
    finally:
        reads.close()


def _check(path: Path, what: str) -> None:
    """One line unless `path` is a whole confcall database of a schema this one knows."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            found = damage_found([row[0] for row in db.execute("PRAGMA quick_check(5)")])
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{what} {path} is not a confcall database: {exc}") from None
    if found is not None:
        raise StoreError(f"{what} {path} is damaged: {found}")
    if not 1 <= version <= SCHEMA_VERSION:
        raise StoreError(f"{what} {path} is not a database this confcall knows "
                         f"(schema {version}, this one knows 1 to {SCHEMA_VERSION})")


def _copy(source: Path, partial: Path, progress: Progress | None = None) -> None:
    """SQLite's online backup of `source` into a new file `partial`, private to its owner
    and self-contained (no WAL beside it). Safe while a server writes `source`: the copy is
    the database as of one moment, and the source is locked only while one step copies."""
    os.close(os.open(partial, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600))
    live = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    copy = sqlite3.connect(partial)
    try:
        live.execute("PRAGMA busy_timeout = 5000")
        live.backup(copy, pages=PAGES_PER_STEP,
                    progress=(lambda _, left, total: progress(total - left, total))
                    if progress else None)
        copy.execute("PRAGMA journal_mode = DELETE")
    finally:
        copy.close()
        live.close()


def backup(source: Path, target: Path, *, overwrite: bool = False,
           progress: Progress | None = None) -> Copied:
    """Copy the database at `source` to `target` with SQLite's online backup, which is safe
    while `confcall serve` writes it: the copy is the database as of one moment. Written to
    a temporary file first and renamed, so `target` is never half a database."""
    if not source.exists():
        raise StoreError(f"no database at {source}: has `confcall serve` run here yet?")
    if target.exists() and not overwrite:
        raise StoreError(f"{target} exists: choose another name, or --force to replace it")
    if target.resolve() == source.resolve():
        raise StoreError(f"{target} is the database itself")
    partial = target.with_name(f".{target.name}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy(source, partial, progress)
        _check(partial, "the copy")
        os.replace(partial, target)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot back up {source}: {exc}") from None
    except OSError as exc:
        raise StoreError(f"cannot write {target}: {exc.strerror}") from None
    finally:
        partial.unlink(missing_ok=True)
    return Copied(source, target, target.stat().st_size, _count(target))


def restore(backup_file: Path, target: Path) -> Copied:
    """Put `backup_file` in place of the database at `target`, or StoreError: while a server
    is using `target` (it holds the writer lock, which this takes for as long as it works,
    so no server starts half-way), or when the backup is not a whole confcall database."""
    if not backup_file.is_file():
        raise StoreError(f"no backup at {backup_file}")
    _check(backup_file, "the backup")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        held = lock_writer(target)
    except StoreError:
        raise StoreError(f"a confcall serve is using {target}: stop it first, then "
                         "restore") from None
    partial = target.with_name(f".{target.name}.restoring")
    try:
        _copy(backup_file, partial)
        for stale in (Path(f"{target}-wal"), Path(f"{target}-shm")):  # the old database's
            stale.unlink(missing_ok=True)
        os.replace(partial, target)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot restore {backup_file}: {exc}") from None
    except OSError as exc:
        raise StoreError(f"cannot write {target}: {exc.strerror}") from None
    finally:
        partial.unlink(missing_ok=True)
        if held is not None:
            os.close(held)
    return Copied(backup_file, target, target.stat().st_size, _count(target))
