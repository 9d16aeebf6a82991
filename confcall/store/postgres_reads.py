"""Reading a PostgreSQL store, and what its serving side shares with it: a connection that
runs sql.py's `?` statements, the schema's migrations, and one-line errors. Synchronous
psycopg only, no asyncio: `status` and `history` start fast. Needs the optional extra
`pip install 'confcall[postgres]'`."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from confcall.config import shown_url
from confcall.errors import StoreError
from confcall.store.postgres_schema import MIGRATIONS, SCHEMA_VERSION
from confcall.store.sql_reads import SqlReads

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT = 5  # seconds to reach the server before saying it cannot be reached
MIGRATION_LOCK = 0x636F6E6663616C6C  # "confcall": replicas starting at once migrate in turn
# Each connection's limits, so that no webhook waits long: a row lock held longer than
# LOCK_TIMEOUT (another replica's transaction, a person's psql) fails the write (503, and
# Bandwidth delivers it again); TCP keepalives notice a server that vanished.
SESSION_OPTIONS = ("-c lock_timeout=1500 -c statement_timeout=10000"
                   " -c idle_in_transaction_session_timeout=60000")
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
              "keepalives_count": 3, "tcp_user_timeout": 10000}


def driver() -> Any:
    """psycopg, or StoreError saying how to install it."""
    try:
        import psycopg
    except ImportError:
        raise StoreError("store.url names a PostgreSQL database, which needs the optional "
                         "driver: pip install 'confcall[postgres]'") from None
    return psycopg


@functools.lru_cache(maxsize=1024)
def dialect(sql: str) -> str:
    """A statement of sql.py's, with psycopg's placeholders."""
    return sql.replace("%", "%%").replace("?", "%s")


def _clean(value: Any) -> Any:
    # PostgreSQL's text cannot hold NUL, which JSON can spell ("\u0000"): kept as U+FFFD,
    # as a half character is (webhooks.read_json), rather than refusing the callback
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


class Row:
    """A result row read by position or by column name, as sqlite3.Row is."""

    __slots__ = ("_names", "_values")

    def __init__(self, values: Sequence[Any], names: dict[str, int]) -> None:
        self._values = values
        self._names = names

    def __getitem__(self, key: int | str) -> Any:
        return self._values[self._names[key] if isinstance(key, str) else key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def keys(self) -> list[str]:
        return list(self._names)


def rows(cursor: Any) -> Any:
    """psycopg's row factory for Row."""
    names = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: Row(values, names)


class Database:
    """A psycopg connection that takes sql.py's statements, as sqlite3's does."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.connection = connection

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        return self.connection.execute(dialect(sql), [_clean(p) for p in parameters])

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> Any:
        cursor = self.connection.cursor()
        cursor.executemany(dialect(sql), [[_clean(p) for p in row] for row in parameters])
        return cursor

    def close(self) -> None:
        self.connection.close()


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection[Any]:
    """A connection to `url` with confcall's session limits, or StoreError in one line."""
    pg = driver()
    try:
        connection: psycopg.Connection[Any] = pg.connect(
            url, autocommit=autocommit, row_factory=rows, connect_timeout=CONNECT_TIMEOUT,
            options=SESSION_OPTIONS, application_name="confcall", **KEEPALIVES)
        return connection
    except pg.Error as exc:
        raise StoreError(f"cannot reach the database {shown_url(url)}: {reason(exc)}") from None


def reason(exc: BaseException) -> str:
    """What went wrong, in one line (psycopg's messages may run to several)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def version(db: Database) -> int | None:
    """The schema's version; None for a database confcall never used."""
    found = db.execute("SELECT to_regclass('confcall_schema') IS NOT NULL").fetchone()
    if not found[0]:
        return None
    row = db.execute("SELECT version FROM confcall_schema").fetchone()
    return int(row[0]) if row else 0


def migrate(url: str) -> int:
    """Create or bring the schema at `url` up to this confcall's; the version found. Several
    replicas may start at once: an advisory lock makes them take turns."""
    psycopg = driver()
    connection = connect(url)
    db = Database(connection)
    shown = shown_url(url)
    try:
        with connection.transaction():
            db.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            found = version(db)
            if found is None:
                db.execute("CREATE TABLE confcall_schema (version INTEGER NOT NULL)")
                db.execute("INSERT INTO confcall_schema VALUES (0)")
                found = 0
            if found > SCHEMA_VERSION:
                raise StoreError(f"{shown} was written by a newer confcall (schema {found}, "
                                 f"this one knows {SCHEMA_VERSION}); upgrade confcall")
            for step in range(found, SCHEMA_VERSION):
                connection.execute(MIGRATIONS[step])  # no parameters: one script
                db.execute("UPDATE confcall_schema SET version = ?", (step + 1,))
        return found
    except psycopg.Error as exc:
        raise StoreError(f"cannot set up the database {shown}: {reason(exc)}") from None
    finally:
        connection.close()


class PostgresReads(SqlReads):
    """The read queries of one PostgreSQL database, each on its own (autocommit): a report
    sees what the replicas have committed."""

    def __init__(self, db: Database, url: str) -> None:
        super().__init__(db, shown_url(url))
        self.db: Database = db
        self.url = url

    @classmethod
    def open(cls, url: str) -> PostgresReads:
        """Read the database at `url`, which `confcall serve` set up, or StoreError."""
        psycopg = driver()
        db = Database(connect(url, autocommit=True))
        try:
            found = version(db)
        except psycopg.Error as exc:
            db.close()
            raise StoreError(f"cannot read {shown_url(url)}: {reason(exc)}") from None
        if found is None:
            db.close()
            raise StoreError(f"no confcall database at {shown_url(url)}: has `confcall serve` "
                             "run with it yet?")
        if found > SCHEMA_VERSION:
            db.close()
            raise StoreError(f"{shown_url(url)} was written by a newer confcall (schema "
                             f"{found}, this one knows {SCHEMA_VERSION}); upgrade confcall")
        if found < SCHEMA_VERSION:
            db.close()
            raise StoreError(f"{shown_url(url)} is from an older confcall: run `confcall "
                             "serve` once")
        return cls(db, url)

    def close(self) -> None:
        self.db.close()
