"""The SQLite store: creation, migrations, replays."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from pathlib import Path

import pytest

from confcall import conference
from confcall.conference import Rules
from confcall.errors import StoreError
from confcall.events import TextReceived
from confcall.store.sqlite import SqliteStore as Store
from confcall.store.sqlite_schema import SCHEMA_VERSION


def test_created_private_and_migrated(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "c.db"
    store = Store.open(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.version() == SCHEMA_VERSION
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    assert Store.open(path).version() == SCHEMA_VERSION  # reopening changes nothing


def test_claim_is_once_per_key(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "c.db")
    with store.transaction():
        assert store.claim("k", 1.0)
        assert not store.claim("k", 2.0)
    assert store.prune_claims(before=1.5) == 1
    with store.transaction():
        assert store.claim("k", 3.0)


def test_a_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "c.db")
    with pytest.raises(RuntimeError), store.transaction():
        store.claim("k", 1.0)
        raise RuntimeError("crash halfway")
    assert store.reads.counts()["processed"] == 0


def test_reading_without_creating(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no database"):
        Store.open(tmp_path / "missing.db", create=False)
    (tmp_path / "junk.db").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a confcall database"):
        Store.open(tmp_path / "junk.db")


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    Store.open(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer confcall"):
        Store.open(path)


def test_joinable_follows_every_change_to_a_conference(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "c.db")
    rules = Rules(line="+12015550100", organizers=frozenset({"+12015550101"}),
                  max_invites=10, region="US")
    start = TextReceived(key="m:1", time=0.0, message_id="1", sender="+12015550101",
                         line="+12015550100", text="+12015550123", application_id="app")
    assert store.joinable("+12015550123") == []

    with pytest.raises(RuntimeError), store.transaction():
        started = conference.on_text(rules, start, conference.Sender(), 1.0, "conf-a")
        store.apply(started.effects, 1.0, "app")
        assert [c.id for c in store.joinable("+12015550123")] == ["conf-a"]
        raise RuntimeError("crash halfway")
    assert store.joinable("+12015550123") == []  # the undone start is not remembered

    with store.transaction():
        started = conference.on_text(rules, start, conference.Sender(), 2.0, "conf-b")
        store.apply(started.effects, 2.0, "app")
    assert [c.id for c in store.joinable("+12015550123")] == ["conf-b"]
    assert [c.id for c in store.joinable("+12015550101")] == ["conf-b"]  # the organizer
    assert store.joinable("+12015550199") == []

    active = store.reads.active_conference("+12015550101")
    assert active is not None
    with store.transaction():
        store.apply(conference.end(active, "bye", 3.0).effects, 3.0, None)
    assert store.joinable("+12015550123") == []


def test_an_organizers_ending_conference_comes_before_one_just_ended(tmp_path: Path) -> None:
    """What an organizer's next text reads: the conference still ending, not the one that
    ended a moment before it (whose follow-up window is still open)."""
    store = Store.open(tmp_path / "c.db")
    rules = Rules(line="+12015550100", organizers=frozenset({"+12015550101"}),
                  max_invites=10, region="US")
    start = TextReceived(key="m:1", time=0.0, message_id="1", sender="+12015550101",
                         line="+12015550100", text="+12015550123", application_id="app")
    for number, name in enumerate(("conf-a", "conf-b")):
        at = 10.0 * number
        with store.transaction():
            store.apply(conference.on_text(rules, start, conference.Sender(), at, name).effects,
                        at, "app")
            if name == "conf-b":  # Bandwidth has it: ending waits for its completion
                store.apply([conference.RecordBandwidthId(name, "bw-b")], at, None)
            ending = store.reads.conference(name)
            assert ending is not None
            store.apply(conference.end(ending, "bye", at + 1).effects, at + 1, None)
    assert [store.reads.conference(n).status for n in ("conf-a", "conf-b")] == [
        "ended", "ending"]
    current = store.reads.current_conference("+12015550101", 0.0)
    assert current is not None and current.id == "conf-b"
    store.close()


async def test_work_queued_together_commits_together_and_fails_alone(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "c.db")
    commits: list[str] = []
    store.db.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)

    def claim(key: str) -> bool:
        return store.claim(key, 1.0)

    def claim_then_fail() -> bool:
        store.claim("undone", 1.0)
        raise RuntimeError("crash halfway")

    results = await asyncio.gather(
        store.committed(lambda: claim("a")), store.committed(claim_then_fail),
        store.committed(lambda: claim("b")), store.committed(lambda: claim("a")),
        return_exceptions=True)

    assert results[0] is True and results[2] is True
    assert isinstance(results[1], RuntimeError)
    assert results[3] is False  # the same key in the same transaction is still a replay
    assert commits == ["COMMIT"]
    assert {r[0] for r in store.db.execute("SELECT key FROM processed")} == {"a", "b"}
    assert not store.db.in_transaction


async def test_a_batch_takes_savepoints_only_when_a_piece_fails(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "c.db")
    statements: list[str] = []
    store.db.set_trace_callback(statements.append)

    def claim(key: str) -> bool:
        return store.claim(key, 1.0)

    assert await asyncio.gather(*(store.committed(lambda k=k: claim(k)) for k in "abc")) == [
        True, True, True]
    assert [s for s in statements if not s.startswith("INSERT")] == ["BEGIN IMMEDIATE",
                                                                     "COMMIT"]
    statements.clear()

    def fail() -> bool:
        claim("undone")
        raise RuntimeError("crash halfway")

    with pytest.raises(RuntimeError):  # a batch of one: undone, and not run again
        await store.committed(fail)
    assert [s for s in statements if not s.startswith("INSERT")] == ["BEGIN IMMEDIATE",
                                                                     "ROLLBACK"]
    assert {r[0] for r in store.db.execute("SELECT key FROM processed")} == {"a", "b", "c"}


async def test_a_transaction_that_cannot_begin_fails_every_piece(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    store = Store.open(path)
    other = sqlite3.connect(path, timeout=0)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    store.db.execute("PRAGMA busy_timeout = 0")

    results = await asyncio.gather(*(store.committed(lambda k=k: store.claim(k, 1.0))
                                     for k in "xyz"), return_exceptions=True)

    assert all(isinstance(r, StoreError) and "locked" in str(r) for r in results)
    other.rollback()
    assert store.reads.counts()["processed"] == 0
    assert await store.committed(lambda: store.claim("x", 2.0)) is True  # usable again


async def test_a_failed_commit_fails_every_piece_and_leaves_nothing(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "c.db")

    def orphan() -> None:  # a check deferred to COMMIT, which then fails
        store.db.execute("PRAGMA defer_foreign_keys = ON")
        store.db.execute("INSERT INTO invitees VALUES ('no-such-conference', 0, '+1')")

    results = await asyncio.gather(store.committed(lambda: store.claim("k", 1.0)),
                                   store.committed(orphan), return_exceptions=True)

    assert all(isinstance(r, StoreError) and "FOREIGN KEY" in str(r) for r in results)
    assert not store.db.in_transaction  # rolled back, not left open
    assert store.reads.counts()["processed"] == 0
    assert await store.committed(lambda: store.claim("k", 2.0)) is True


async def test_work_whose_caller_is_gone_is_not_run(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "c.db")
    gone = asyncio.ensure_future(store.committed(lambda: store.claim("gone", 1.0)))
    await asyncio.sleep(0)  # queued
    kept = asyncio.ensure_future(store.committed(lambda: store.claim("kept", 1.0)))
    gone.cancel()
    assert await kept is True
    assert gone.cancelled()
    assert {r[0] for r in store.db.execute("SELECT key FROM processed")} == {"kept"}


def test_migrate_copies_every_table_and_column_sqlite_has(tmp_path: Path) -> None:
    """`confcall migrate` copies what TABLES names: a table or column added to the schema
    and forgotten there would be lost in the move to PostgreSQL."""
    from confcall.store.transfer import TABLES

    store = Store.open(tmp_path / "c.db")
    schema = {
        table: {row[1] for row in store.db.execute(f"PRAGMA table_info({table})")}
        for (table,) in store.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            " AND name NOT LIKE 'sqlite_%'")}
    assert {table: set(columns) for table, columns in TABLES} == schema
