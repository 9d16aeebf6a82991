"""Reading a SQLite store: every query that only reads (in sql.py), on a connection of
its own (the CLI's reports) or on the serving store's (inside its transactions). Imports
no asyncio: `status` and `history` start fast."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from confcall.errors import StoreError
from confcall.store.sql import SqlReads
from confcall.store.sqlite_schema import SCHEMA_VERSION


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
            raise StoreError(f"{path} is not a confcall database, or is damaged: {exc}") from None
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
