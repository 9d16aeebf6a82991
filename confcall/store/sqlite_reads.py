"""Reading a SQLite store: every query that only reads (in sql.py), on a connection of
its own (the CLI's reports) or on the serving store's (inside its transactions). Imports
no asyncio: `status` and `history` start fast."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from confcall.errors import StoreError
from confcall.store.sql_reads import SqlReads
from confcall.store.sqlite_schema import SCHEMA_VERSION


def primary_code(exc: sqlite3.Error) -> int | None:
    """SQLite's primary result code of `exc` (its extended code's low byte), if it has one."""
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


RESTORE = "restore it from a backup, or move it aside to start with an empty one"


def cannot_open(where: Path | str, exc: sqlite3.DatabaseError) -> str:
    """One line on why the database at `where` cannot be used: a full disk, a disk that
    fails or will not be written, another process's lock, or a damaged file (the only one
    that points to a restore), by SQLite's result code (sqlite.org/rescode.html)."""
    primary = primary_code(exc)
    if primary == sqlite3.SQLITE_FULL:
        return f"cannot write {where}: the disk is full ({exc}); free some space, then start again"
    if primary == sqlite3.SQLITE_CORRUPT:
        return f"{where} is damaged ({exc}): {RESTORE}"
    if primary in (sqlite3.SQLITE_NOTADB, None):
        return f"{where} is not a confcall database, or is damaged: {exc}"
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return f"{where} is locked by another process ({exc}); try again when it lets go"
    return (f"cannot use {where}: {exc} (is its disk full, read-only or gone? `df` and "
            "`ls -l` on its folder say)")


def damage_found(rows: list[str]) -> str | None:
    """What `PRAGMA quick_check` found, as a few words on one line: its first problem and
    how many more; None when it found none."""
    problems = [line.strip() for row in rows for line in row.splitlines()
                if line.strip() and not line.startswith("*** in database")]
    if not problems or problems == ["ok"]:
        return None
    more = f", and {len(problems) - 1} more" if len(problems) > 1 else ""
    return f"{problems[0][:200]}{more}"


class SqliteReads(SqlReads):
    """The read queries of one SQLite database."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        super().__init__(db, str(path))
        self.db: sqlite3.Connection = db
        self.path = path

    @classmethod
    def open(cls, path: Path) -> SqliteReads:
        """Read the database at `path`, which `confcall serve` made, or StoreError."""
        if not path.exists():
            raise StoreError(f"no database at {path}: has `confcall serve` run here yet?")
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA busy_timeout = 5000")
            reads = cls(db, path)
            version = reads.version()
        except sqlite3.DatabaseError as exc:
            raise StoreError(cannot_open(path, exc)) from None
        if version > SCHEMA_VERSION:
            db.close()
            raise StoreError(
                f"{path} was written by a newer confcall (schema {version}, "
                f"this one knows {SCHEMA_VERSION}); upgrade confcall")
        if version < SCHEMA_VERSION:
            db.close()
            raise StoreError(f"{path} is from an older confcall: run `confcall serve` once")
        return reads

    def close(self) -> None:
        self.db.close()

    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])
