"""The store: the conferences, the callbacks seen and the outbox. Two databases behind one
interface: SQLite (`store.path`), the embedded default for one process, and PostgreSQL
(`store.url`), for several replicas.

Serving uses a `Store`: each of its writes is one transaction (an event run whole through
its registry entry; the outbox's leases and settlements), committed before it returns.
`status`, `history` and the tests read through a `Reader`, synchronous, which imports
neither asyncio nor an async driver, so the CLI starts fast."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from confcall.store.model import (
    CALL,
    COMPLETE,
    DONE,
    FAILED,
    PENDING,
    RECAP,
    RETRY,
    SENT,
    TEXT,
    Delivery,
    OutboxRow,
    Settlement,
    StoredRecording,
)

if TYPE_CHECKING:
    from confcall.conference import Decision, Rules
    from confcall.config import Config
    from confcall.events import Event
    from confcall.handle import Entry
    from confcall.state import Conference

__all__ = ["CALL", "COMPLETE", "DONE", "FAILED", "PENDING", "RECAP", "RETRY", "SENT", "TEXT",
           "Delivery", "OutboxRow", "Reader", "Settlement", "Store", "StoredRecording",
           "open_reader", "open_store"]


class Store(Protocol):
    """What `confcall serve` asks of its database."""

    problem: str | None  # why the last write failed, until one succeeds

    async def handle(self, entry: Entry, event: Event, rules: Rules, now: float,
                     new_id: str = "") -> Decision | None:
        """Run `event` whole in one transaction: claim its identity (None if seen before),
        read what its decision needs, decide, apply the effects."""

    async def settle(self, settled: Sequence[Settlement], rules: Rules,
                     now: float) -> list[str]:
        """Write what became of outbox rows, with what each tells the state machine; the
        log lines of what that did."""

    async def lease(self, now: float, limit: int, until: float,
                    skip: Sequence[int] = ()) -> list[OutboxRow]:
        """Lease up to `limit` due rows until `until`; no other sender takes them meanwhile."""

    async def next_due(self, now: float, skip: Sequence[int] = ()) -> float | None:
        """When the next pending row can be leased."""

    async def prune(self, before: float) -> int:
        """Forget callback identities older than `before`."""

    async def backlog(self) -> int:
        """Texts and completions waiting to be sent."""

    async def to_join(self, number: str) -> list[Conference]:
        """Active conferences `number` may join. From memory, as it answers every call; a
        store whose memory may lag behind another process's writes checks the database
        before it lets a caller be refused."""

    def is_active(self, conference_id: str) -> bool:
        """Whether the conference is active, from memory."""

    async def recording(self, token: str) -> StoredRecording | None:
        """The recording a link's token names."""

    def file_problem(self) -> str | None:
        """Why the database cannot be written, as far as looking tells, without a query."""

    async def aclose(self) -> None:
        """Let go of the database."""


class Reader(Protocol):
    """Synchronous reads, for reports and tests."""

    def conference(self, conference_id: str) -> Conference | None: ...

    def active_conference(self, organizer: str) -> Conference | None: ...

    def active_conferences(self) -> list[Conference]: ...

    def ended_conferences(self, limit: int) -> list[Conference]: ...

    def outbox(self, conference_id: str | None = None) -> list[OutboxRow]: ...

    def due(self, now: float, limit: int) -> list[OutboxRow]: ...

    def deliveries(self, conference_id: str) -> list[Delivery]: ...

    def completion(self, conference_id: str) -> OutboxRow | None: ...

    def backlog(self) -> int: ...

    def counts(self) -> dict[str, int]: ...

    def recordings(self, limit: int) -> list[StoredRecording]: ...

    def close(self) -> None: ...

    @property
    def where(self) -> str:
        """The database, as a person would name it in a message."""


async def open_store(config: Config) -> Store:
    """The store `config` names, opened to serve: migrated, checked, and held by this
    process where only one may write it (SQLite)."""
    if config.store_url:
        from confcall.store.postgres import PostgresStore

        return await PostgresStore.open(config.store_url)
    from confcall.store.sqlite import SqliteStore

    return SqliteStore.open(config.store_path, synchronous=config.synchronous, writer=True)


def open_reader(config: Config) -> Reader:
    """The store `config` names, to read; StoreError when there is none to read."""
    if config.store_url:
        from confcall.store.postgres_reads import PostgresReads

        return PostgresReads.open(config.store_url)
    from confcall.store.sqlite_reads import SqliteReads

    return SqliteReads.open(config.store_path)
