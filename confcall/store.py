"""The SQLite store: schema, migrations and every query. The only module that speaks SQL."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from confcall.conference import (
    ENDED,
    ENDING,
    BeginEnding,
    Conference,
    Effect,
    FinishConference,
    Member,
    QueueCompletion,
    QueueRecapTimer,
    QueueText,
    RecordBandwidthId,
    RecordDelivery,
    RecordJoin,
    RecordLeave,
    StartConference,
)
from confcall.errors import StoreError

TEXT, COMPLETE, RECAP = "text", "complete", "recap"
PENDING, SENT, FAILED, DONE = "pending", "sent", "failed", "done"
T = TypeVar("T")

# Each entry moves the schema from version N to N+1; never edit a released entry, add one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE conferences (
        id TEXT PRIMARY KEY,
        organizer TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('active', 'ending', 'ended')),
        created_at REAL NOT NULL,
        ended_at REAL,
        bandwidth_id TEXT,
        closing_text TEXT,
        application_id TEXT NOT NULL
    );
    CREATE INDEX conferences_by_status ON conferences (status, organizer);
    CREATE INDEX conferences_by_end ON conferences (ended_at);
    CREATE TABLE invitees (
        conference_id TEXT NOT NULL REFERENCES conferences (id),
        position INTEGER NOT NULL,
        number TEXT NOT NULL,
        PRIMARY KEY (conference_id, number)
    );
    CREATE INDEX invitees_by_number ON invitees (number);
    CREATE TABLE members (
        call_id TEXT PRIMARY KEY,
        conference_id TEXT NOT NULL REFERENCES conferences (id),
        number TEXT NOT NULL,
        joined_at REAL NOT NULL,
        left_at REAL
    );
    CREATE INDEX members_by_conference ON members (conference_id);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('text', 'complete', 'recap')),
        conference_id TEXT,
        purpose TEXT,
        recipients TEXT,
        body TEXT,
        application_id TEXT,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'sent', 'failed', 'done')),
        attempts INTEGER NOT NULL DEFAULT 0,
        due_at REAL NOT NULL,
        created_at REAL NOT NULL,
        finished_at REAL,
        last_error TEXT,
        message_id TEXT
    );
    CREATE INDEX outbox_by_due ON outbox (status, due_at);
    CREATE INDEX outbox_by_conference ON outbox (conference_id);
    CREATE INDEX outbox_by_message ON outbox (message_id);
    CREATE TABLE deliveries (
        outbox_id INTEGER NOT NULL REFERENCES outbox (id),
        recipient TEXT NOT NULL,
        status TEXT NOT NULL,
        detail TEXT NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (outbox_id, recipient)
    );
    CREATE TABLE inbound (
        message_id TEXT PRIMARY KEY,
        sender TEXT NOT NULL,
        line TEXT NOT NULL,
        body TEXT NOT NULL,
        received_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE processed (
        key TEXT PRIMARY KEY,
        at REAL NOT NULL
    ) WITHOUT ROWID;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class OutboxRow:
    id: int
    kind: str
    conference_id: str | None
    purpose: str | None
    recipients: tuple[str, ...]
    body: str | None
    application_id: str | None
    status: str
    attempts: int
    due_at: float
    created_at: float
    last_error: str | None
    message_id: str | None


@dataclass(frozen=True)
class Delivery:
    """What became of one text to one recipient: queued, sent, delivered, failed…"""

    outbox_id: int
    purpose: str
    recipient: str
    state: str
    detail: str


def _outbox_row(row: sqlite3.Row) -> OutboxRow:
    return OutboxRow(
        id=row["id"],
        kind=row["kind"],
        conference_id=row["conference_id"],
        purpose=row["purpose"],
        recipients=tuple(json.loads(row["recipients"])) if row["recipients"] else (),
        body=row["body"],
        application_id=row["application_id"],
        status=row["status"],
        attempts=row["attempts"],
        due_at=row["due_at"],
        created_at=row["created_at"],
        last_error=row["last_error"],
        message_id=row["message_id"],
    )


def _not_in(ids: Sequence[int]) -> str:
    return f" AND id NOT IN ({','.join('?' * len(ids))})" if ids else ""


def _lock_writer(path: Path) -> IO[bytes] | None:
    """Hold the lock that makes this process the one that writes the database at `path`,
    or StoreError: a second server on the same database would send every text twice, and
    the store keeps what it has read (the active conferences) between its own writes. The
    kernel lets go of the lock when the process ends, however it ends."""
    try:
        import fcntl
    except ImportError:  # no flock on this system (Windows): run without the guard
        return None
    lock = os.fdopen(os.open(f"{path}.lock", os.O_CREAT | os.O_RDWR, 0o600), "r+b")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise StoreError(f"another confcall serve is using {path}: stop it first, or give "
                         "this one a database of its own (store.path)") from None
    return lock


class Store:
    """One SQLite database. Writes happen inside `transaction()`; reads may happen anywhere."""

    def __init__(self, connection: sqlite3.Connection, path: Path,
                 writer_lock: IO[bytes] | None = None) -> None:
        self.db = connection
        self.path = path
        self._writer_lock = writer_lock
        # The active conferences without their members, read once and kept until a write
        # changes a conference: every inbound call asks for them (see `joinable`). Sound
        # because one process writes the database (the one serving).
        self._active: list[Conference] | None = None
        self._queued: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []

    @classmethod
    def open(cls, path: Path, *, create: bool = True, synchronous: str = "normal",
             writer: bool = False) -> Store:
        """Open (and, with `create`, make and migrate) the database at `path`. With
        `writer`, as the one process that writes it (see `_lock_writer`).

        In WAL mode, synchronous=normal makes every commit durable against a crash of the
        process (the WAL is written before COMMIT returns) and fsyncs at checkpoints;
        synchronous=full also fsyncs every commit, surviving power loss at a cost of
        one disk flush per webhook."""
        exists = path.exists()
        if not exists and not create:
            raise StoreError(f"no database at {path}: has `confcall serve` run here yet?")
        if not exists:
            path.parent.mkdir(parents=True, exist_ok=True)
        writer_lock = _lock_writer(path) if writer else None
        if not exists:
            # Created private: it holds phone numbers and message texts.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        try:
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA busy_timeout = 5000")
            connection.execute("PRAGMA foreign_keys = ON")
            if create:
                connection.execute("PRAGMA journal_mode = WAL")
                level = "FULL" if synchronous == "full" else "NORMAL"
                connection.execute(f"PRAGMA synchronous = {level}")
            store = cls(connection, path, writer_lock)
            version = store.version()
        except sqlite3.DatabaseError as exc:
            if writer_lock is not None:
                writer_lock.close()
            raise StoreError(f"{path} is not a confcall database: {exc}") from None
        if version > SCHEMA_VERSION:
            store.close()
            raise StoreError(
                f"{path} was written by a newer confcall (schema {version}, "
                f"this one knows {SCHEMA_VERSION}); upgrade confcall"
            )
        if version < SCHEMA_VERSION:
            if not create:
                store.close()
                raise StoreError(f"{path} is from an older confcall: run `confcall serve` once")
            store.migrate()
        return store

    def close(self) -> None:
        self.db.close()
        if self._writer_lock is not None:
            self._writer_lock.close()

    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        with self.transaction():
            for version in range(self.version(), SCHEMA_VERSION):
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {version + 1}")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: BEGIN IMMEDIATE takes the write lock up front, so two writers
        never interleave their reads and writes."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:  # a failed COMMIT may leave it open
                self.db.execute("ROLLBACK")
            self._active = None  # it may have been read from what was just undone
            raise

    async def committed(self, work: Callable[[], T]) -> T:
        """Run `work` (which writes, and does no I/O of its own) in a transaction, and
        return what it returned once that transaction is committed.

        The work queued in one turn of the event loop shares a transaction, each piece in
        a savepoint of its own: a piece that raises is undone alone, and its caller gets
        the exception. Under load a turn answers many webhooks, and one commit for all of
        them costs little more than one for each (a commit writes every page it changed).
        The transaction opens and commits within one callback, so no other code on the
        loop ever reads what is not yet committed."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._commit_queued)
        self._queued.append((work, done))
        return await done

    def _commit_queued(self) -> None:
        queued, self._queued = self._queued, []
        outcomes: list[tuple[asyncio.Future[Any], BaseException | None, Any]] = []
        try:
            with self.transaction():
                for work, done in queued:
                    if done.cancelled():  # its caller is gone: it will be delivered again
                        continue
                    self.db.execute("SAVEPOINT work")
                    try:
                        outcomes.append((done, None, work()))
                    except Exception as exc:
                        self.db.execute("ROLLBACK TO work")
                        self._active = None  # it may have been read from what was undone
                        outcomes.append((done, exc, None))
                    self.db.execute("RELEASE work")
        except sqlite3.Error as exc:  # BEGIN or COMMIT failed: nothing was written
            outcomes = [(done, StoreError(f"could not commit: {exc}"), None)
                        for _, done in queued]
        for done, error, result in outcomes:
            if done.cancelled():
                continue
            if error is None:
                done.set_result(result)
            else:
                done.set_exception(error)

    # --- callbacks seen -------------------------------------------------------------

    def claim(self, key: str, now: float) -> bool:
        """Record a callback's identity; False when it was seen before (a replay)."""
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO processed (key, at) VALUES (?, ?)", (key, now)
        )
        return cursor.rowcount == 1

    def record_inbound(self, message_id: str, sender: str, line: str, body: str,
                       at: float) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO inbound (message_id, sender, line, body, received_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (message_id, sender, line, body, at),
        )

    def prune(self, before: float) -> int:
        """Forget callback identities older than `before`; returns how many. (A scan, once
        an hour: an index on `at` would cost every webhook a page write.)"""
        with self.transaction():
            return self.db.execute("DELETE FROM processed WHERE at < ?", (before,)).rowcount

    # --- conferences -----------------------------------------------------------------

    def _conferences(self, where: str, params: Sequence[Any], *,
                     with_members: bool = True) -> list[Conference]:
        rows = self.db.execute(f"SELECT * FROM conferences WHERE {where}", params).fetchall()
        result = []
        for row in rows:
            invitees = tuple(r[0] for r in self.db.execute(
                "SELECT number FROM invitees WHERE conference_id = ? ORDER BY position",
                (row["id"],)))
            members = tuple(
                Member(r["call_id"], r["number"], r["joined_at"], r["left_at"])
                for r in self.db.execute(
                    "SELECT * FROM members WHERE conference_id = ? ORDER BY joined_at, call_id",
                    (row["id"],))
            ) if with_members else ()
            result.append(Conference(
                id=row["id"], organizer=row["organizer"], status=row["status"],
                invitees=invitees, created_at=row["created_at"], ended_at=row["ended_at"],
                bandwidth_id=row["bandwidth_id"], closing_text=row["closing_text"],
                members=members,
            ))
        return result

    def conference(self, conference_id: str) -> Conference | None:
        found = self._conferences("id = ?", (conference_id,))
        return found[0] if found else None

    def application_id(self, conference_id: str) -> str | None:
        row = self.db.execute("SELECT application_id FROM conferences WHERE id = ?",
                              (conference_id,)).fetchone()
        return row[0] if row else None

    def active_conference(self, organizer: str) -> Conference | None:
        found = self._conferences("organizer = ? AND status = 'active'", (organizer,))
        return found[0] if found else None

    def active_conferences(self) -> list[Conference]:
        return self._conferences("status != 'ended' ORDER BY created_at DESC", ())

    def joinable(self, number: str) -> list[Conference]:
        """Active conferences `number` may join: invited to, or organizing. Without their
        members, which joining does not depend on. This answers every inbound call, so it
        reads from memory: there is at most one active conference per organizer."""
        if self._active is None:
            self._active = self._conferences("status = 'active'", (), with_members=False)
        return [c for c in self._active if c.may_join(number)]

    def ended_conferences(self, limit: int) -> list[Conference]:
        return self._conferences("status = 'ended' ORDER BY ended_at DESC LIMIT ?", (limit,))

    # --- applying the state machine's effects ---------------------------------------

    def apply(self, effects: Sequence[Effect], now: float, application_id: str | None) -> None:
        """Write what the state machine decided. Call inside `transaction()`."""
        db = self.db
        for effect in effects:
            if isinstance(effect, (StartConference, BeginEnding, RecordBandwidthId,
                                   FinishConference)):
                self._active = None  # these change a row of conferences
            if isinstance(effect, StartConference):
                c = effect.conference
                db.execute(
                    "INSERT INTO conferences (id, organizer, status, created_at, application_id)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (c.id, c.organizer, c.status, c.created_at, application_id or ""),
                )
                db.executemany(
                    "INSERT INTO invitees (conference_id, position, number) VALUES (?, ?, ?)",
                    [(c.id, i, n) for i, n in enumerate(c.invitees)],
                )
            elif isinstance(effect, QueueText):
                app = (self.application_id(effect.conference_id)
                       if effect.conference_id else None) or application_id
                db.execute(
                    "INSERT INTO outbox (kind, conference_id, purpose, recipients, body,"
                    " application_id, due_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (TEXT, effect.conference_id, effect.purpose, json.dumps(list(effect.to)),
                     effect.text, app, now, now),
                )
            elif isinstance(effect, BeginEnding):
                db.execute(
                    "UPDATE conferences SET status = ?, closing_text = ? WHERE id = ?",
                    (ENDING, effect.closing_text, effect.conference_id),
                )
            elif isinstance(effect, QueueCompletion):
                db.execute(
                    "INSERT INTO outbox (kind, conference_id, due_at, created_at)"
                    " VALUES (?, ?, ?, ?)", (COMPLETE, effect.conference_id, now, now))
            elif isinstance(effect, QueueRecapTimer):
                db.execute(
                    "INSERT INTO outbox (kind, conference_id, due_at, created_at)"
                    " VALUES (?, ?, ?, ?)", (RECAP, effect.conference_id, effect.due, now))
            elif isinstance(effect, RecordBandwidthId):
                db.execute("UPDATE conferences SET bandwidth_id = ? WHERE id = ?",
                           (effect.bandwidth_id, effect.conference_id))
            elif isinstance(effect, RecordJoin):
                # a leave delivered before its join left a row: the join only dates it
                db.execute(
                    "INSERT INTO members (call_id, conference_id, number, joined_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (call_id) DO UPDATE SET"
                    " joined_at = MIN(joined_at, excluded.joined_at)",
                    (effect.call_id, effect.conference_id, effect.number, effect.at),
                )
            elif isinstance(effect, RecordLeave) and effect.conference_id is not None:
                db.execute(
                    "INSERT INTO members (call_id, conference_id, number, joined_at, left_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (call_id) DO UPDATE SET"
                    " left_at = COALESCE(left_at, MAX(joined_at, excluded.left_at))",
                    (effect.call_id, effect.conference_id, effect.number or "", effect.at,
                     effect.at),
                )
            elif isinstance(effect, RecordLeave):
                db.execute(
                    "UPDATE members SET left_at = MAX(joined_at, ?)"
                    " WHERE call_id = ? AND left_at IS NULL",
                    (effect.at, effect.call_id),
                )
            elif isinstance(effect, FinishConference):
                db.execute("UPDATE conferences SET status = ?, ended_at = ? WHERE id = ?",
                           (ENDED, effect.at, effect.conference_id))
                db.execute(
                    "UPDATE members SET left_at = MAX(joined_at, ?)"
                    " WHERE conference_id = ? AND left_at IS NULL",
                    (effect.at, effect.conference_id),
                )
            elif isinstance(effect, RecordDelivery):
                self._record_delivery(effect, now)
            else:  # pragma: no cover
                raise AssertionError(effect)

    def _record_delivery(self, effect: RecordDelivery, now: float) -> None:
        row = None
        if effect.tag and effect.tag.isdigit():
            row = self.db.execute("SELECT id FROM outbox WHERE id = ? AND kind = 'text'",
                                  (int(effect.tag),)).fetchone()
        if row is None:
            row = self.db.execute("SELECT id FROM outbox WHERE message_id = ?",
                                  (effect.message_id,)).fetchone()
        if row is None:
            return
        state = effect.status.removeprefix("message-")
        self.db.execute(
            "INSERT INTO deliveries (outbox_id, recipient, status, detail, at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (outbox_id, recipient) DO UPDATE SET"
            " status = excluded.status, detail = excluded.detail, at = excluded.at"
            " WHERE deliveries.status NOT IN ('delivered', 'failed', 'read')"
            " OR excluded.status IN ('failed', 'read')",
            (row[0], effect.recipient, state, effect.detail, now),
        )

    # --- the outbox -------------------------------------------------------------------

    def due(self, now: float, limit: int, skip: Sequence[int] = ()) -> list[OutboxRow]:
        """Pending rows due by `now`, oldest first, leaving out `skip` (being sent)."""
        rows = self.db.execute(
            f"SELECT * FROM outbox WHERE status = 'pending' AND due_at <= ?{_not_in(skip)}"
            " ORDER BY due_at, id LIMIT ?",
            (now, *skip, limit),
        ).fetchall()
        return [_outbox_row(row) for row in rows]

    def next_due(self, skip: Sequence[int] = ()) -> float | None:
        """When the next pending row (other than `skip`) falls due."""
        row = self.db.execute(
            f"SELECT MIN(due_at) FROM outbox WHERE status = 'pending'{_not_in(skip)}", skip
        ).fetchone()
        return row[0] if row and row[0] is not None else None

    def outbox(self, conference_id: str | None = None) -> list[OutboxRow]:
        if conference_id is None:
            rows = self.db.execute("SELECT * FROM outbox ORDER BY id").fetchall()
        else:
            rows = self.db.execute("SELECT * FROM outbox WHERE conference_id = ? ORDER BY id",
                                   (conference_id,)).fetchall()
        return [_outbox_row(row) for row in rows]

    def finish_row(self, row_id: int, status: str, now: float, *, message_id: str | None = None,
                   error: str | None = None) -> None:
        self.db.execute(
            "UPDATE outbox SET status = ?, finished_at = ?, message_id = COALESCE(?, message_id),"
            " last_error = COALESCE(?, last_error), attempts = attempts + 1"
            " WHERE id = ? AND status = 'pending'",
            (status, now, message_id, error, row_id),
        )

    def retry_row(self, row_id: int, due_at: float, error: str) -> None:
        self.db.execute(
            "UPDATE outbox SET attempts = attempts + 1, due_at = ?, last_error = ?"
            " WHERE id = ? AND status = 'pending'",
            (due_at, error, row_id),
        )

    def backlog(self) -> int:
        return int(self.db.execute(
            "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND kind != 'recap'"
        ).fetchone()[0])

    def deliveries(self, conference_id: str) -> list[Delivery]:
        """Each recipient of each text of a conference, with what became of it."""
        result = []
        for row in self.outbox(conference_id):
            if row.kind != TEXT:
                continue
            seen = {
                r["recipient"]: (r["status"], r["detail"])
                for r in self.db.execute(
                    "SELECT recipient, status, detail FROM deliveries WHERE outbox_id = ?",
                    (row.id,))
            }
            for recipient in row.recipients:
                base = {PENDING: "queued", SENT: "sent", FAILED: "failed"}.get(row.status, "sent")
                state, detail = seen.get(recipient, (base, row.last_error or ""))
                result.append(Delivery(row.id, row.purpose or "", recipient, state, detail))
        return result

    def counts(self) -> dict[str, int]:
        """Rows per table: a health and growth figure."""
        tables = ("conferences", "members", "outbox", "deliveries", "inbound", "processed")
        return {t: int(self.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
                for t in tables}

