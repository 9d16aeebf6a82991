"""The PostgreSQL store, for several `confcall serve` replicas on one database: nothing in
one process is only right while it is the only writer.

- Each event runs whole (claim, read, decide, apply) in a transaction of its own, on a
  pooled connection in a worker thread (sql.py's statements are synchronous, shared with
  SQLite). The claim is an INSERT … ON CONFLICT DO NOTHING: the same callback on two
  replicas at once waits on the first's row and is acted on once.
- A decision reads its conference FOR UPDATE, so two events of one conference take turns
  as they do on SQLite; two start texts of one organizer at once are stopped by the
  partial unique index `one_active_per_organizer`, and the one that lost is run again,
  seeing the other's conference. Deadlocks and serialization failures are run again too.
- Outbox rows are leased FOR UPDATE SKIP LOCKED with an expiry: no two replicas send a
  row at once, and a dead replica's rows are taken over once its lease runs out (marked
  doubtful, as on SQLite). No lease is released at start: another replica may be sending.
- The active conferences, which answer every inbound call, are kept in memory and read
  again whenever any replica changes a conference (a trigger NOTIFYs on commit), and at
  least every REFRESH_EVERY seconds should a notification be lost."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from confcall.conference import Decision, Rules
from confcall.config import shown_url
from confcall.errors import StoreError, StoreUnavailable
from confcall.events import Event
from confcall.handle import Entry
from confcall.state import Conference
from confcall.store.model import OutboxRow, Settlement, StoredRecording
from confcall.store.postgres_reads import (
    CONNECT_TIMEOUT,
    KEEPALIVES,
    SESSION_OPTIONS,
    Database,
    driver,
    migrate,
    reason,
    rows,
)
from confcall.store.postgres_schema import CHANNEL
from confcall.store.sql import SqlWrites
from confcall.store.sql_reads import SqlReads

log = logging.getLogger("confcall.store")
T = TypeVar("T")

POOL_SIZE = 10  # connections, and the worker threads that use them
WRITE_WAIT = 2.0  # a webhook's transaction gets this long before it answers 503
ATTEMPTS = 5  # runs of one transaction that lost a race (see _retryable) before giving up
REFRESH_EVERY = 2.0  # seconds: the longest the active conferences go unread
LISTEN_RETRY = (0.5, 10.0)  # first and longest pause before listening again


class _Transaction(SqlWrites):
    """sql.py's writes on one connection, in one transaction; conference reads lock."""

    LEASE_LOCK = " FOR UPDATE OF outbox SKIP LOCKED"

    def __init__(self, db: Database, where: str) -> None:
        self.db = self.cursor = db
        self.reads = SqlReads(db, where)
        self.reads.lock = " FOR UPDATE"
        self.changed = False

    def _conferences_changed(self) -> None:
        self.changed = True


def _active_conferences(db: _Transaction) -> list[Conference]:
    """The active conferences without their members (which joining does not depend on),
    read without locking them."""
    return SqlReads(db.db, db.reads.where)._conferences("status = 'active'", (),
                                                        with_members=False)


def _retryable(exc: BaseException) -> bool:
    """A transaction that lost a race to another replica's, and is right when run again:
    a deadlock, a serialization failure, or a unique index (an organizer's second active
    conference) that another transaction filled first."""
    errors = driver().errors
    return isinstance(exc, (errors.SerializationFailure, errors.DeadlockDetected,
                            errors.UniqueViolation))


def _unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached or written just now, rather than
    that one piece of work was wrong."""
    psycopg = driver()
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError,
                            psycopg.errors.ReadOnlySqlTransaction))


class PostgresStore:
    """One PostgreSQL database, shared by every replica that serves it."""

    def __init__(self, url: str, pool: Any) -> None:
        self.url = url
        self.where = shown_url(url)
        self.pool = pool
        self._threads = ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="confcall-pg")
        self.problem: str | None = None
        self._listen_problem: str | None = None
        self._active: list[Conference] = []
        self._stale = asyncio.Event()
        self._reachable = asyncio.Event()  # a write went through: listen again now
        self._changes = 0  # notifications seen: a read that began before one is stale
        self._tasks: list[asyncio.Task[None]] = []
        self._rng = random.Random()

    @classmethod
    async def open(cls, url: str) -> PostgresStore:
        """Set up (migrate) the database at `url`, fill the pool, read the active
        conferences and start listening for other replicas' changes; StoreError in one
        line when the database cannot be reached."""
        driver()
        from psycopg_pool import ConnectionPool

        # the pool logs each failed connection attempt; this store says once when the
        # database cannot be written and once when it can again
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
        await asyncio.to_thread(migrate, url)
        pool = ConnectionPool(
            url, min_size=2, max_size=POOL_SIZE, open=False, timeout=WRITE_WAIT,
            name="confcall",
            kwargs={"row_factory": rows, "connect_timeout": CONNECT_TIMEOUT,
                    "options": SESSION_OPTIONS, "application_name": "confcall", **KEEPALIVES})
        try:
            await asyncio.to_thread(pool.open, True, CONNECT_TIMEOUT)
        except Exception as exc:
            await asyncio.to_thread(pool.close)
            raise StoreError(f"cannot reach the database {shown_url(url)}: "
                             f"{reason(exc)}") from None
        store = cls(url, pool)
        store._active = await store._read(_active_conferences)
        store._tasks = [asyncio.create_task(store._listen(), name="confcall-pg-listen"),
                        asyncio.create_task(store._refresh(), name="confcall-pg-refresh")]
        return store

    # --- transactions -------------------------------------------------------------------

    def _in_transaction(self, work: Callable[[_Transaction], T],
                        deadline: float) -> tuple[T, bool]:
        """Run `work` in a transaction on a pooled connection (in a worker thread), again
        while it loses races; what it returned, and whether it changed a conference. Work
        whose caller gave up waiting (past `deadline`) before a thread took it is not run:
        its webhook answered 503, and Bandwidth delivers it again."""
        if time.monotonic() > deadline:
            raise StoreUnavailable("gave up before it began")
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self.pool.connection() as connection, connection.transaction():
                    session = _Transaction(Database(connection), self.where)
                    return work(session), session.changed
            except Exception as exc:
                if not _retryable(exc) or attempt == ATTEMPTS:
                    raise
                time.sleep(self._rng.uniform(0, 0.005 * attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _write(self, work: Callable[[_Transaction], T], *, writes: bool = True) -> T:
        """Run `work` in a transaction, committed before this returns; StoreUnavailable
        (a 503, and Bandwidth retries) when the database cannot be written within
        WRITE_WAIT. A transaction cut off by the wait may still commit: the claim makes
        its redelivery a replay. Only work that `writes` and succeeds says the database
        can be written again: a read may pass where writes are locked out."""
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + WRITE_WAIT
        try:
            async with asyncio.timeout(WRITE_WAIT):
                result, changed = await loop.run_in_executor(
                    self._threads, self._in_transaction, work, deadline)
        except TimeoutError:
            self._unwritable(f"the database {self.where} did not answer within "
                             f"{WRITE_WAIT:.0f} s")
            raise StoreUnavailable(self.problem or "") from None
        except Exception as exc:
            if not _unavailable(exc):
                raise
            if isinstance(exc, driver().errors.LockNotAvailable):
                self._unwritable(f"the database {self.where} is locked by another transaction")
            else:
                self._unwritable(f"cannot write the database {self.where}: {reason(exc)}")
            raise StoreUnavailable(self.problem or "") from None
        if writes:
            self._writable()
        if changed:
            self._changed()
        return result

    async def _read(self, work: Callable[[_Transaction], T]) -> T:
        """A transaction too, cut off alike; but it proves nothing of writing."""
        return await self._write(work, writes=False)

    def _unwritable(self, problem: str) -> None:
        if self.problem is None:  # once when writing stops, whatever each failure says
            log.warning("%s: writes answer 503 and sending pauses until it can be written",
                        problem)
        self.problem = problem

    def _writable(self) -> None:
        if self._listen_problem is not None:
            self._reachable.set()
        if self.problem is not None:
            log.info("the database %s can be written again", self.where)
        self.problem = None

    # --- what serving asks of a store (see confcall.store.Store) ------------------------

    async def handle(self, entry: Entry, event: Event, rules: Rules, now: float,
                     new_id: str = "") -> Decision | None:
        return await self._write(lambda db: db.run(entry, event, rules, now, new_id))

    async def settle(self, settled: Sequence[Settlement], rules: Rules,
                     now: float) -> list[str]:
        return await self._write(lambda db: db._settle(settled, rules, now))

    async def lease(self, now: float, limit: int, until: float,
                    skip: Sequence[int] = ()) -> list[OutboxRow]:
        return await self._write(lambda db: db.lease_rows(now, limit, until, skip))

    async def prune(self, before: float) -> int:
        return await self._write(lambda db: db.prune_claims(before))

    async def next_due(self, now: float, skip: Sequence[int] = ()) -> float | None:
        return await self._read(lambda db: db.reads.next_due(now, skip))

    async def backlog(self) -> int:
        return await self._read(lambda db: db.reads.backlog())

    def joinable(self, number: str) -> list[Conference]:
        """Active conferences `number` may join, from memory: read again whenever any
        replica changes a conference (see _listen), so stale for milliseconds after a
        change, and for at most REFRESH_EVERY seconds should a notification be lost."""
        return [c for c in self._active if c.may_join(number)]

    async def to_join(self, number: str) -> list[Conference]:
        """From memory; but before a caller is refused, from the database: another
        replica's start text may have committed an instant before its NOTIFY arrived."""
        found = self.joinable(number)
        if found:
            return found
        return await self._read(lambda db: [
            c for c in _active_conferences(db) if c.may_join(number)])

    def is_active(self, conference_id: str) -> bool:
        """Whether the conference is active, from the same memory as `joinable`."""
        return any(c.id == conference_id for c in self._active)

    async def recording(self, token: str) -> StoredRecording | None:
        return await self._read(lambda db: db.reads.recording(token))

    def file_problem(self) -> str | None:
        """Why the database cannot be reached, as far as the listening connection tells
        (no query): there is no file to look at."""
        return self._listen_problem

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._threads.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(self.pool.close, 2.0)

    # --- the active conferences, across replicas ----------------------------------------

    def _changed(self) -> None:
        self._changes += 1
        self._stale.set()

    async def _listen(self) -> None:
        """LISTEN for the trigger's notifications on a connection of its own; each one makes
        the active conferences stale. A lost connection is said once and made again."""
        psycopg = driver()
        pause = LISTEN_RETRY[0]
        while True:
            try:
                connection = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                    application_name="confcall-listen", **KEEPALIVES)
                async with connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    if self._listen_problem is not None:
                        log.info("listening to the database %s again", self.where)
                    self._listen_problem = None
                    pause = LISTEN_RETRY[0]
                    self._changed()  # whatever changed while nobody listened
                    async for _ in connection.notifies():
                        self._changed()
            except psycopg.Error as exc:
                problem = f"cannot reach the database {self.where}: {reason(exc)}"
                if self._listen_problem is None:
                    log.warning("%s; calls are answered from the conferences read last",
                                problem)
                self._listen_problem = problem
            self._changed()
            self._reachable.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._reachable.wait()
            pause = min(LISTEN_RETRY[1], pause * 2)

    async def _refresh(self) -> None:
        """Read the active conferences again when they are stale, and every REFRESH_EVERY
        seconds. A read that began before a change it did not see is read again."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(REFRESH_EVERY):
                    await self._stale.wait()
            self._stale.clear()
            began = self._changes
            try:
                active = await self._read(_active_conferences)
            except StoreUnavailable:
                await asyncio.sleep(LISTEN_RETRY[0])
                self._stale.set()
                continue
            except Exception:  # a bug must not stop calls from being answered
                log.exception("reading the active conferences failed")
                await asyncio.sleep(LISTEN_RETRY[0])
                continue
            self._active = active
            if self._changes != began:
                self._stale.set()
