"""`confcall migrate`: copy a SQLite database into an empty PostgreSQL one, for an operator
who outgrows one server. Row for row: the tables and columns are the same in both."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from confcall.config import shown_url
from confcall.errors import StoreError
from confcall.store.postgres_reads import Database, connect, driver, migrate, reason
from confcall.store.sqlite import lock_writer
from confcall.store.sqlite_reads import SqliteReads

# Parents before children (the foreign keys), each with the columns both schemas have.
TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("conferences", ("id", "organizer", "status", "created_at", "ended_at", "bandwidth_id",
                     "closing_text", "application_id", "recorded")),
    ("invitees", ("conference_id", "position", "number")),
    ("members", ("call_id", "conference_id", "number", "joined_at", "left_at")),
    ("outbox", ("id", "kind", "conference_id", "purpose", "recipients", "body",
                "application_id", "status", "attempts", "due_at", "created_at", "finished_at",
                "last_error", "message_id", "leased_until", "doubtful", "media")),
    ("deliveries", ("outbox_id", "recipient", "status", "detail", "at")),
    ("inbound", ("message_id", "sender", "line", "body", "received_at")),
    ("processed", ("key", "at")),
    ("opt_outs", ("number", "at")),
    ("recordings", ("recording_id", "conference_id", "bandwidth_id", "status", "media_url",
                    "duration", "link", "token", "expires_at", "created_at")),
)


@dataclass(frozen=True)
class Moved:
    source: Path
    target: str  # the URL, without its password
    rows: dict[str, int]


def _clean(value: object) -> object:
    # PostgreSQL's text cannot hold NUL: kept as U+FFFD, as the PostgreSQL store keeps it
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


def to_postgres(source: Path, url: str) -> Moved:
    """Copy the SQLite database at `source` into the PostgreSQL database at `url` (made
    ready with confcall's schema; it must hold no rows yet), in one transaction: all or
    nothing. Refused while a `confcall serve` uses `source`: what it wrote afterwards
    would be left behind."""
    shown = shown_url(url)
    reads = SqliteReads.open(source)
    try:
        held = lock_writer(source)
    except StoreError:
        reads.close()
        raise StoreError(f"a confcall serve is using {source}: stop it first, then "
                         "migrate") from None
    try:
        migrate(url)
        psycopg = driver()
        connection = connect(url)
        db = Database(connection)
        try:
            with connection.transaction():
                found = {table: int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
                         for table, _ in TABLES}
                if any(found.values()):
                    listed = ", ".join(f"{n} {t}" for t, n in found.items() if n)
                    raise StoreError(f"{shown} is not empty ({listed}): migrate copies into "
                                     "an empty database only")
                rows: dict[str, int] = {}
                for table, columns in TABLES:
                    names = ", ".join(columns)
                    copied = 0
                    with connection.cursor().copy(
                            f"COPY {table} ({names}) FROM STDIN") as copy:
                        for row in reads.db.execute(f"SELECT {names} FROM {table}"):
                            copy.write_row([_clean(value) for value in row])
                            copied += 1
                    rows[table] = copied
                # the next outbox row continues from the last copied, as in SQLite
                db.execute("SELECT setval(pg_get_serial_sequence('outbox', 'id'),"
                           " COALESCE(MAX(id), 0) + 1, false) FROM outbox")
        except psycopg.Error as exc:
            raise StoreError(f"cannot copy into {shown}: {reason(exc)}") from None
        finally:
            connection.close()
    finally:
        reads.close()
        if held is not None:
            os.close(held)
    return Moved(source, shown, rows)
