"""The SQLite store, the embedded default: one process writes it (a lock on the file
proves it), webhooks answered in one turn of the event loop share one transaction, and the
active conferences are kept in memory between writes. Its SQL is in sql.py, which the
PostgreSQL store shares."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from confcall.conference import Decision, Rules
from confcall.errors import StoreError, StoreUnavailable
from confcall.events import Event
from confcall.handle import Entry
from confcall.state import Conference
from confcall.store.model import (
    OutboxRow,
    Settlement,
    StoredRecording,
)
from confcall.store.sql import SqlWrites
from confcall.store.sqlite_reads import (
    RESTORE,
    SqliteReads,
    cannot_open,
    damage_found,
    primary_code,
)
from confcall.store.sqlite_schema import MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger("confcall.store")
T = TypeVar("T")

# How long a write waits for another process's lock before its webhook answers 503 (and
# Bandwidth retries it). The wait is asynchronous: the loop goes on answering meanwhile.
LOCK_WAIT = 1.5
_LOCK_RETRY = (0.005, 0.2)  # first and longest pause between tries for the lock
# Below this much free space on its disk, the database is as good as full.
MIN_FREE_BYTES = 256 * 1024
# A checkpoint copies the WAL into the database file and flushes both to disk: milliseconds.
# SQLite runs one inside a COMMIT each time the WAL passes 1,000 pages, which would hold up
# the event loop and every webhook in flight; a thread of its own does it (`Checkpointer`).
# How long the checkpointer lets writes gather after one before it starts: fewer, larger
# checkpoints (each flushes twice), and a quiet server's WAL copied out within this long.
CHECKPOINT_PAUSE = 0.1
# The WAL starts over from its beginning (reusing its file, not growing it) only after a
# checkpoint that copied all of it with no write in between, which steady writes never
# leave room for. Past this many pages, the checkpointer makes room: it holds the write lock
# while it copies the few pages written since its last pass (the loop's writes meanwhile
# wait without blocking the loop, as for any lock; see LOCK_WAIT).
WAL_RESTART_PAGES = 1000
# Past this many, should the checkpointer fall behind, a COMMIT checkpoints on the loop.
WAL_LIMIT_PAGES = 20_000


def _identity(found: os.stat_result) -> tuple[int, int]:
    return (found.st_dev, found.st_ino)


def lock_writer(path: Path) -> int | None:
    """Open the database file and hold the lock that makes this process the one that writes
    it, or StoreError: a second server on the same database would send every text twice,
    and the store keeps what it has read (the active conferences) between its own writes.

    The lock is on the file itself (flock on an open descriptor), so a symlink or a hard
    link to the same database meets the same lock. SQLite locks with fcntl, which flock
    does not touch. The kernel lets go of the lock when the process ends, however it ends;
    the descriptor also tells whether the path still names this file (`file_problem`)."""
    # Created private: it holds phone numbers and message texts.
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        import fcntl
    except ImportError:  # no flock on this system (Windows): run without the guard
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise StoreError(f"another confcall serve is using {path}: stop it first, or give "
                         "this one a database of its own (store.path)") from None
    return fd


def _storage_problem(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be written (locked, full, read-only, damaged,
    gone) rather than that one piece of work was wrong (a constraint, a bad value)."""
    return isinstance(exc, StoreUnavailable) or (
        isinstance(exc, sqlite3.DatabaseError) and not isinstance(
            exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.DataError,
                  sqlite3.InterfaceError)))


def _locked(exc: sqlite3.Error) -> bool:
    return primary_code(exc) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class Checkpointer:
    """Checkpoints the WAL of the database at `path` from a thread and a connection of its
    own, some moments after each write: SQLite lets a PASSIVE checkpoint run while another
    connection writes, so the event loop never waits for one. Its connection flushes to
    disk as the writer's would (`synchronous`): a commit is as durable as before."""

    def __init__(self, path: Path, synchronous: str) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute(f"PRAGMA synchronous = {synchronous}")
        # how long a RESTART waits for the loop's transaction under way (well under 1 ms)
        self._db.execute("PRAGMA busy_timeout = 100")
        self._wrote = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="confcall-checkpoint",
                                        daemon=True)
        self._thread.start()

    def wrote(self) -> None:
        """Called after each commit, on the loop: cheap once the thread has been told."""
        if not self._wrote.is_set():
            self._wrote.set()

    def _run(self) -> None:
        while True:
            self._wrote.wait()
            if self._stopping.wait(CHECKPOINT_PAUSE):
                return
            # cleared before the checkpoint: a write committed during it calls for another
            self._wrote.clear()
            if self._stopping.is_set():  # `stop` may have set both just before the clear
                return
            try:
                _, pages, copied = self._db.execute(
                    "PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                # Not while a reader (another process: the sqlite3 shell, a replication
                # tool) holds a snapshot older than the WAL's end, which is what leaves
                # pages uncopied: the RESTART would hold the write lock through its whole
                # busy_timeout waiting for that reader, and then fail.
                if pages >= WAL_RESTART_PAGES and copied == pages:
                    self._db.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
            except sqlite3.Error as exc:  # disk full, file gone: the writes report it
                log.debug("checkpoint failed: %s", exc)

    def stop(self) -> None:
        """Stop the thread and close its connection (the writer's own close then
        checkpoints what is left, as the last connection to the database)."""
        self._stopping.set()
        self._wrote.set()
        self._thread.join()
        self._db.close()


_Outcome = tuple["asyncio.Future[Any]", BaseException | None, Any]  # (future, error, result)


class _Queued(NamedTuple):  # a tuple: made for every webhook that writes
    work: Callable[[], Any]
    done: asyncio.Future[Any]
    since: float  # loop time it was queued: it waits for a lock at most LOCK_WAIT from then


class SqliteStore(SqlWrites):
    """One SQLite database. Writes happen inside `transaction()`; reads may happen anywhere."""

    def __init__(self, connection: sqlite3.Connection, path: Path,
                 writer_file: int | None = None) -> None:
        self.db = connection
        # one cursor for the writes, reused: Connection.execute makes a new one each time
        self.cursor = connection.cursor()
        self.path = path
        self.reads: SqliteReads = SqliteReads(connection, path)
        self._writer_file = writer_file
        self._identity = _identity(os.fstat(writer_file)) if writer_file is not None else None
        # The active conferences without their members, read once and kept until a write
        # changes a conference: every inbound call asks for them (see `joinable`). Sound
        # because one process writes the database (the one serving).
        self._active: list[Conference] | None = None
        self._queued: list[_Queued] = []
        self._scheduled = False
        self._lock_pause = _LOCK_RETRY[0]
        # Why the last write failed, until one succeeds: /healthz reports it, and the log
        # says it once when it starts and once when it ends, however many writes fail.
        self.problem: str | None = None
        self._checkpointer: Checkpointer | None = None

    @classmethod
    def open(cls, path: Path, *, create: bool = True, synchronous: str = "normal",
             writer: bool = False) -> SqliteStore:
        """Open (and, with `create`, make and migrate) the database at `path`. With
        `writer`, as the one process that writes it (see `lock_writer`), after checking
        that its pages are sound: a damaged database stops start-up with one line.

        In WAL mode, synchronous=normal makes every commit durable against a crash of the
        process (the WAL is written before COMMIT returns) and fsyncs at checkpoints;
        synchronous=full also fsyncs every commit, surviving power loss at a cost of
        one disk flush per webhook."""
        exists = path.exists()
        if not exists and not create:
            raise StoreError(f"no database at {path}: has `confcall serve` run here yet?")
        if not exists:
            path.parent.mkdir(parents=True, exist_ok=True)
        writer_file = lock_writer(path) if writer else None
        if not exists and writer_file is None:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))  # private, as above
        try:
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA busy_timeout = 5000")
            connection.execute("PRAGMA foreign_keys = ON")
            level = "FULL" if synchronous == "full" else "NORMAL"
            if create:
                connection.execute("PRAGMA journal_mode = WAL")
                connection.execute(f"PRAGMA synchronous = {level}")
            store = cls(connection, path, writer_file)
            version = store.version()
            if writer:
                store._check_integrity()
        except sqlite3.DatabaseError as exc:
            if writer_file is not None:
                os.close(writer_file)
            raise StoreError(cannot_open(path, exc)) from None
        except StoreError:
            store.close()
            raise
        if version > SCHEMA_VERSION:
            store.close()
            raise StoreError(
                f"{path} was written by a newer confcall (schema {version}, "
                f"this one knows {SCHEMA_VERSION}); upgrade confcall"
            )
        if version < SCHEMA_VERSION and not create:
            store.close()
            raise StoreError(f"{path} is from an older confcall: run `confcall serve` once")
        try:
            if version < SCHEMA_VERSION:
                store.migrate()
            if writer:
                store._release_leases()
                # from here on the loop never waits for another process's lock:
                # `committed` tries again later instead (see LOCK_WAIT)
                connection.execute("PRAGMA busy_timeout = 0")
                # nor for a checkpoint, but where the WAL grows too long (see Checkpointer)
                connection.execute(f"PRAGMA wal_autocheckpoint = {WAL_LIMIT_PAGES}")
                store._checkpointer = Checkpointer(path, level)
        except sqlite3.DatabaseError as exc:
            store.close()
            raise StoreError(cannot_open(path, exc)) from None
        return store

    def _check_integrity(self) -> None:
        found = damage_found([row[0] for row in self.db.execute("PRAGMA quick_check(5)")])
        if found is not None:
            raise StoreError(f"{self.path} is damaged ({found}): {RESTORE}")

    def _release_leases(self) -> None:
        """Take back what a sender that died had leased: only this process sends (it holds
        the writer lock), so those leases will never be settled. Their rows may have gone
        out before it died: they are doubtful."""
        with self.transaction():
            self.db.execute("UPDATE outbox SET leased_until = NULL, doubtful = doubtful + 1"
                            " WHERE status = 'pending' AND leased_until IS NOT NULL")

    def close(self) -> None:
        for queued in self._queued:  # nothing will commit them now
            if not queued.done.done():
                queued.done.set_exception(StoreUnavailable("the database was closed"))
        self._queued = []
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self.db.close()
        if self._writer_file is not None:  # after the connection: closing it frees the lock
            os.close(self._writer_file)
            self._writer_file = None

    def file_problem(self) -> str | None:
        """Why the database file cannot be written, as far as looking at it tells: gone,
        replaced by another file, read-only or immutable, or its disk full. Cheap: a few
        system calls, no SQLite."""
        moved = self.file_identity_problem()
        if moved is not None:
            return moved
        if not os.path.exists(self.path):
            return f"the database file {self.path} was deleted"
        if not os.access(self.path, os.W_OK):
            return f"the database file {self.path} is not writable"
        try:
            disk = os.statvfs(self.path)
        except OSError:  # pragma: no cover - statvfs on a file that exists
            return None
        if disk.f_bavail * disk.f_frsize < MIN_FREE_BYTES:
            return f"the disk holding {self.path} is full"
        return None

    def version(self) -> int:
        return self.reads.version()

    def migrate(self) -> None:
        """Bring the schema to SCHEMA_VERSION, in one transaction. Foreign keys are off
        meanwhile (SQLite's way to rebuild a table others refer to) and checked before
        the commit."""
        self.db.execute("PRAGMA foreign_keys = OFF")  # no effect inside a transaction
        try:
            with self.transaction():
                for version in range(self.version(), SCHEMA_VERSION):
                    for statement in MIGRATIONS[version].split(";"):
                        if statement.strip():
                            self.db.execute(statement)
                    self.db.execute(f"PRAGMA user_version = {version + 1}")
                broken = self.db.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise StoreError(f"{self.path}: migrating broke {len(broken)} references")
        finally:
            self.db.execute("PRAGMA foreign_keys = ON")

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
        loop ever reads what is not yet committed.

        When the database cannot be written (locked by another process, disk full,
        read-only, deleted), every piece fails with StoreUnavailable; a lock is waited for
        without blocking the loop, for at most LOCK_WAIT from when the piece was queued."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        self._queued.append(_Queued(work, done, loop.time()))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._commit_queued)
        return await done

    def _commit_queued(self) -> None:
        self._scheduled = False
        queued = [q for q in self._queued if not q.done.done()]  # a caller gone: redelivered
        self._queued = []
        if not queued:
            return
        try:
            problem = self.file_identity_problem()
            if problem is not None:
                raise StoreUnavailable(problem)
            self.cursor.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _locked(exc):
                self._wait_for_lock(queued)
                return
            self._fail(queued, exc)
            return
        except StoreUnavailable as exc:
            self._fail(queued, exc)
            return
        self._lock_pause = _LOCK_RETRY[0]
        try:
            outcomes = self._run_together(queued)
            if outcomes is None:  # a piece failed and the batch was undone: once more,
                self.cursor.execute("BEGIN IMMEDIATE")  # each piece in a savepoint of its own
                outcomes = self._run_one_by_one(queued)
            if self.db.in_transaction:
                self.cursor.execute("COMMIT")
                if self._checkpointer is not None:
                    self._checkpointer.wrote()
        except Exception as exc:
            if self.db.in_transaction:  # a failed COMMIT may leave it open
                self.cursor.execute("ROLLBACK")
            self._active = None
            self._fail(queued, exc)
            return
        self._writable()
        for done, error, result in outcomes:
            if done.done():
                continue
            if error is None:
                done.set_result(result)
            else:
                done.set_exception(error)

    def _run_together(self, queued: list[_Queued]) -> list[_Outcome] | None:
        """Each piece's outcome, run in the transaction under way with no savepoint, as
        nearly every batch can be (two statements less per piece). When a piece raises
        anything but a storage problem, the transaction is undone and None returned, so
        that the batch runs again piece by piece; a batch of one is then done: its piece
        fails alone."""
        outcomes: list[_Outcome] = []
        for piece in queued:
            try:
                outcomes.append((piece.done, None, piece.work()))
            except Exception as exc:
                if _storage_problem(exc):
                    raise  # the whole transaction may be gone with it
                self.cursor.execute("ROLLBACK")
                self._active = None  # it may have been read from what was undone
                return [(piece.done, exc, None)] if len(queued) == 1 else None
        return outcomes

    def _run_one_by_one(self, queued: list[_Queued]) -> list[_Outcome]:
        """Each piece's outcome, each in a savepoint of its own: a piece that raises is
        undone alone, and its caller gets the exception."""
        outcomes: list[_Outcome] = []
        for piece in queued:
            self.cursor.execute("SAVEPOINT work")
            try:
                outcomes.append((piece.done, None, piece.work()))
            except Exception as exc:
                if _storage_problem(exc):
                    raise
                self.cursor.execute("ROLLBACK TO work")
                self._active = None
                outcomes.append((piece.done, exc, None))
            self.cursor.execute("RELEASE work")
        return outcomes

    def _wait_for_lock(self, queued: list[_Queued]) -> None:
        """Another process holds the write lock: try again shortly, and fail the pieces that
        have waited LOCK_WAIT already (their webhooks answer 503; Bandwidth retries)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        waiting = [q for q in queued if now - q.since < LOCK_WAIT]
        expired = [q for q in queued if now - q.since >= LOCK_WAIT]
        if expired:
            self._fail(expired, StoreUnavailable(
                f"the database {self.path} is locked by another process"))
        if waiting:
            self._queued = waiting + self._queued
            if not self._scheduled:
                self._scheduled = True
                loop.call_later(self._lock_pause, self._commit_queued)
            self._lock_pause = min(_LOCK_RETRY[1], self._lock_pause * 2)

    def _fail(self, queued: list[_Queued], exc: BaseException) -> None:
        error = exc if isinstance(exc, StoreUnavailable) else StoreUnavailable(
            f"cannot write {self.path}: {exc}")
        if not _storage_problem(exc):
            log.error("database write failed unexpectedly", exc_info=exc)
        self._unwritable(str(error))
        for piece in queued:
            if not piece.done.done():
                piece.done.set_exception(error)

    def _unwritable(self, reason: str) -> None:
        if reason != self.problem:
            log.warning("%s: writes answer 503 and sending pauses until it can be written",
                        reason)
        self.problem = reason

    def _writable(self) -> None:
        if self.problem is not None:
            log.info("the database %s can be written again", self.path)
        self.problem = None

    def file_identity_problem(self) -> str | None:
        """Whether the path no longer names the file this process opened: deleted, or
        replaced. Writing on would write to a file nobody will ever open again."""
        if self._identity is None:
            return None
        try:
            found = _identity(os.stat(self.path))
        except OSError:
            return f"the database file {self.path} was deleted"
        if found != self._identity:
            return f"the database file {self.path} was replaced by another file"
        return None

    # --- conferences -----------------------------------------------------------------

    def joinable(self, number: str) -> list[Conference]:
        """Active conferences `number` may join: invited to, or organizing. Without their
        members, which joining does not depend on. This answers every inbound call, so it
        reads from memory: there is at most one active conference per organizer."""
        return [c for c in self._active_conferences() if c.may_join(number)]

    def _active_conferences(self) -> list[Conference]:
        if self._active is None:
            self._active = self.reads._conferences("status = 'active'", (), with_members=False)
        return self._active

    def _conferences_changed(self) -> None:
        self._active = None

    # --- what serving asks of a store (see confcall.store.Store) -----------------------

    async def handle(self, entry: Entry, event: Event, rules: Rules, now: float,
                     new_id: str = "") -> Decision | None:
        return await self.committed(lambda: self.run(entry, event, rules, now, new_id))

    async def settle(self, settled: Sequence[Settlement], rules: Rules,
                     now: float) -> list[str]:
        return await self.committed(lambda: self._settle(settled, rules, now))

    async def lease(self, now: float, limit: int, until: float,
                    skip: Sequence[int] = ()) -> list[OutboxRow]:
        return await self.committed(lambda: self.lease_rows(now, limit, until, skip))

    async def prune(self, before: float) -> int:
        return await self.committed(lambda: self.prune_claims(before))

    async def next_due(self, now: float, skip: Sequence[int] = ()) -> float | None:
        return self.reads.next_due(now, skip)

    async def backlog(self) -> int:
        return self.reads.backlog()

    async def recording(self, token: str) -> StoredRecording | None:
        return self.reads.recording(token)

    async def to_join(self, number: str) -> list[Conference]:
        return self.joinable(number)  # exact: this process is the only writer

    def is_active(self, conference_id: str) -> bool:
        """Whether `conference_id` is an active conference, from memory."""
        return any(c.id == conference_id for c in self._active_conferences())

    async def aclose(self) -> None:
        self.close()
