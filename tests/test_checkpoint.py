"""The SQLite WAL's checkpoints, made by a thread of the serving process rather than inside
a COMMIT on the event loop: the database file itself keeps up with the writes, the WAL
stays bounded under writes that never pause, and a clean stop leaves no WAL behind."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from pathlib import Path

import aiohttp
import pytest
from conftest import inbound_text, wait_for
from fake_bandwidth import FakeBandwidth
from served import Served

from confcall.store.sqlite import WAL_RESTART_PAGES
from confcall.store.sqlite import SqliteStore as Store

pytestmark = pytest.mark.sqlite_only
STRANGER = "+12015550199"
ORGANIZER = "+12015550101"


def texts_in_file_alone(path: Path, folder: Path) -> int:
    """The texts the database file holds by itself, as of its last checkpoint: a copy of
    it without its WAL, opened read-only."""
    copy = folder / "alone.db"
    shutil.copyfile(path, copy)
    with sqlite3.connect(f"file:{copy}?mode=ro", uri=True) as db:
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'inbound'").fetchone() is None:
            return 0  # its tables are still only in the WAL
        return int(db.execute("SELECT COUNT(*) FROM inbound").fetchone()[0])


async def test_the_database_file_keeps_up_with_the_writes_while_serving(
        fake: FakeBandwidth, tmp_path: Path) -> None:
    served = Served(tmp_path, fake, [ORGANIZER])
    await served.start()
    try:
        async with aiohttp.ClientSession() as session:
            for i in range(20):
                async with session.post(served.url + "/callbacks/messaging",
                                        json=inbound_text(STRANGER, f"hello {i}")) as answer:
                    assert answer.status == 200
        spare = tmp_path / "spare"
        spare.mkdir()
        # far fewer pages than SQLite's own checkpoint waits for: a checkpoint that came,
        # came from the checkpointer, while the server goes on serving
        await wait_for(lambda: texts_in_file_alone(served.workdir / "confcall.db",
                                                   spare) == 20)
        assert await served.terminate() == 0
    finally:
        await served.stop()
    # a clean stop checkpoints what is left and removes the WAL
    assert not (tmp_path / "confcall.db-wal").exists()


async def test_the_wal_stays_bounded_under_writes_that_never_pause(tmp_path: Path) -> None:
    """Steady writes never leave a checkpoint the moment without a write that lets the WAL
    start over: the checkpointer makes one, and the WAL file stops growing."""
    path = tmp_path / "c.db"
    wal = Path(f"{path}-wal")
    store = Store.open(path, writer=True)
    page = store.db.execute("PRAGMA page_size").fetchone()[0]
    largest = 0
    written = 0
    began = time.monotonic()
    try:
        for i in range(6000):
            await store.committed(lambda i=i: store.claim(f"k{i}", 0.0))
            largest = max(largest, wal.stat().st_size if wal.exists() else 0)
            if i % 4 == 3:  # about the pace of the heaviest load measured
                await asyncio.sleep(0.001)
        written = int(store.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    finally:
        store.close()
    took = time.monotonic() - began
    # without a restart, every frame of the run would be in the WAL at its end
    assert largest < 4 * WAL_RESTART_PAGES * page, (largest, written, took)


async def test_a_reader_holding_an_old_snapshot_never_makes_the_writes_wait(
        tmp_path: Path) -> None:
    """A RESTART cannot finish while another process reads an old snapshot (the sqlite3
    shell, a replication tool): the checkpointer does not try one, which would hold the
    write lock for its whole busy timeout, again and again, while the webhooks wait."""
    path = tmp_path / "c.db"
    store = Store.open(path, writer=True)
    begins: list[str] = []
    try:
        for i in range(3000):  # past WAL_RESTART_PAGES before the reader comes
            await store.committed(lambda i=i: store.claim(f"a{i}", 0.0))
        await asyncio.sleep(0.5)  # the checkpointer done with them: the reader comes after
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM processed").fetchone()
        store.db.set_trace_callback(
            lambda sql: begins.append(sql) if sql.startswith("BEGIN") else None)
        commits = 0
        for i in range(3000):
            await store.committed(lambda i=i: store.claim(f"b{i}", 0.0))
            commits += 1
            if i % 4 == 3:
                await asyncio.sleep(0.001)  # room for the checkpointer's passes
        store.db.set_trace_callback(None)
        reader.execute("COMMIT")
        reader.close()
    finally:
        store.close()
    # every BEGIN IMMEDIATE found the lock free: none was tried again
    assert len(begins) == commits, (len(begins), commits)
