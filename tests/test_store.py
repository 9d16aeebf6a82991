"""The SQLite store: creation, migrations, replays."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from confcall import conference
from confcall.conference import Rules
from confcall.errors import StoreError
from confcall.events import TextReceived
from confcall.store import SCHEMA_VERSION, Store


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
    assert store.prune(before=1.5) == 1
    with store.transaction():
        assert store.claim("k", 3.0)


def test_a_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "c.db")
    with pytest.raises(RuntimeError), store.transaction():
        store.claim("k", 1.0)
        raise RuntimeError("crash halfway")
    assert store.counts()["processed"] == 0


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
        store.apply(conference.on_text(rules, start, None, "conf-a", 1.0), 1.0, "app")
        assert [c.id for c in store.joinable("+12015550123")] == ["conf-a"]
        raise RuntimeError("crash halfway")
    assert store.joinable("+12015550123") == []  # the undone start is not remembered

    with store.transaction():
        store.apply(conference.on_text(rules, start, None, "conf-b", 2.0), 2.0, "app")
    assert [c.id for c in store.joinable("+12015550123")] == ["conf-b"]
    assert [c.id for c in store.joinable("+12015550101")] == ["conf-b"]  # the organizer
    assert store.joinable("+12015550199") == []

    active = store.active_conference("+12015550101")
    assert active is not None
    with store.transaction():
        store.apply(conference.end(active, "bye", 3.0), 3.0, None)
    assert store.joinable("+12015550123") == []
