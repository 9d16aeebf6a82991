"""The PostgreSQL store's own promises, with two stores on one database standing for two
replicas: a race between them ends as if they had taken turns (the claim, the partial
unique index, the conference's row lock), no row is sent by both (SKIP LOCKED), a dead
replica's rows are taken over after its lease, and a change made by one is seen by the
other's calls within milliseconds (NOTIFY). Also `confcall migrate` and `backup`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import LINE, ORGANIZER, STORES, StartLine, check_invariants, invitees, wait_for
from test_cli import invoke, write_config
from test_flow import T0, at, start

from confcall.conference import Rules
from confcall.events import CallDisconnected, TextReceived
from confcall.handle import entry
from confcall.store import open_reader
from confcall.store.postgres import PostgresStore
from confcall.store.postgres_reads import PostgresReads

RULES = Rules(line=LINE, organizers=frozenset({ORGANIZER}), max_invites=10, region="US")


def text(message_id: str, body: str, sender: str = ORGANIZER) -> TextReceived:
    return TextReceived(key=f"message-received:{message_id}", time=time.time(),
                        message_id=message_id, sender=sender, line=LINE, text=body,
                        application_id="app")


@pytest.fixture
async def replicas(postgres_cluster: Any) -> AsyncIterator[tuple[PostgresStore, ...]]:
    """Two stores on one new database, as two replicas would have."""
    url = postgres_cluster.database()
    stores = (await PostgresStore.open(url), await PostgresStore.open(url))
    yield stores
    for store in stores:
        await store.aclose()
    reader = PostgresReads.open(url)
    try:
        check_invariants(reader)
    finally:
        reader.close()


def reader_of(store: PostgresStore) -> PostgresReads:
    return PostgresReads.open(store.url)


async def handle(store: PostgresStore, event: TextReceived, new_id: str) -> Any:
    found = entry(event)
    assert found is not None
    return await store.handle(found, event, RULES, time.time(), new_id)


async def test_two_start_texts_at_once_on_two_replicas_start_one_conference(
        replicas: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = replicas
    reads = reader_of(a)
    try:
        for round_ in range(15):
            first, second = await asyncio.gather(
                handle(a, text(f"s1-{round_}", invitees(1)[0]), f"conf-{round_}-a"),
                handle(b, text(f"s2-{round_}", invitees(1, 130)[0]), f"conf-{round_}-b"))
            # one started it; the other, run again after the index stopped it, saw it and
            # ended it: as if they had taken turns
            kinds = sorted(type(e).__name__ for d in (first, second) for e in d.effects)
            assert kinds.count("StartConference") == 1, kinds
            assert kinds.count("BeginEnding") == 1, kinds
            actives = [c for c in reads.active_conferences() if c.status == "active"]
            assert actives == []
            for c in reads.active_conferences():  # let it end, for the next round
                await handle(a, text(f"x-{round_}-{c.id}", "bye"), "")
            reads.db.execute("UPDATE conferences SET status = 'ended', ended_at = 1")
    finally:
        reads.close()


async def test_two_end_texts_at_once_on_two_replicas_end_the_conference_once(
        replicas: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = replicas
    reads = reader_of(a)
    try:
        for round_ in range(10):
            await handle(a, text(f"start-{round_}", invitees(1)[0]), f"conf-{round_}")
            # each reads the conference FOR UPDATE: the second waits for the first, which
            # ended it (nobody joined: at once), and so starts nothing of its own
            await asyncio.gather(handle(a, text(f"end-a-{round_}", "bye"), ""),
                                 handle(b, text(f"end-b-{round_}", "bye too"), ""))
            purposes = [r.purpose for r in reads.outbox(f"conf-{round_}")]
            assert purposes.count("recap") == 1, purposes  # ended once, recapped once
            reads.db.execute("UPDATE conferences SET status = 'ended', ended_at = 1")
    finally:
        reads.close()


async def test_the_same_callback_at_once_on_two_replicas_is_acted_on_once(
        replicas: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = replicas
    for round_ in range(10):  # a call's end: nothing but its claim makes it happen once
        event = CallDisconnected(key=f"disconnect:c-{round_}", time=time.time(),
                                 call_id=f"c-{round_}", cause="hangup")
        found = entry(event)
        assert found is not None
        decisions = await asyncio.gather(*(store.handle(found, event, RULES, time.time())
                                           for store in (a, b)))
        assert sum(d is not None for d in decisions) == 1
    reads = reader_of(a)
    try:
        assert reads.counts()["processed"] == 10
    finally:
        reads.close()


async def test_two_replicas_never_lease_the_same_row(
        replicas: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = replicas
    numbers = invitees(10)
    for i in range(6):  # 6 conferences of 10 invitations and a confirmation: 66 rows
        organizer = f"+1201555{200 + i:04d}"
        rules = Rules(LINE, frozenset({organizer}), 10, "US")
        event = text(f"start-{i}", " ".join(numbers), sender=organizer)
        found = entry(event)
        assert found is not None
        await a.handle(found, event, rules, time.time(), f"conf-{i}")
    now = time.time()
    leased: list[list[int]] = [[], []]
    for _ in range(40):
        got = await asyncio.gather(*(store.lease(now, 3, now + 60) for store in (a, b)))
        for mine, rows in zip(leased, got, strict=True):
            mine += [row.id for row in rows]
        if not any(got):
            break
    assert len(leased[0]) + len(leased[1]) == 66
    assert not set(leased[0]) & set(leased[1]), "a row leased by both replicas"
    assert leased[0] and leased[1]  # both took a share


async def test_a_dead_replicas_rows_are_taken_over_after_its_lease_and_marked_doubtful(
        replicas: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = replicas
    found = entry(text("m", invitees(1)[0]))
    assert found is not None
    await a.handle(found, text("m", invitees(1)[0]), RULES, time.time(), "conf-1")
    now = time.time()
    taken = await a.lease(now, 10, now + 30)  # then `a` dies: nobody settles them
    assert len(taken) == 2
    assert await b.lease(now + 29, 10, now + 90) == []  # still held
    again = await b.lease(now + 31, 10, now + 90)  # the lease ran out
    assert sorted(r.id for r in again) == sorted(r.id for r in taken)
    reads = reader_of(b)
    try:
        assert {row.doubtful for row in reads.outbox()} == {1}
    finally:
        reads.close()


async def test_a_conference_started_on_one_replica_is_joinable_on_the_other_at_once(
        replicas: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = replicas
    [number] = invitees(1)
    assert b.joinable(number) == []
    found = entry(text("m", number))
    assert found is not None
    await a.handle(found, text("m", number), RULES, time.time(), "conf-1")
    began = time.monotonic()
    # far sooner than the REFRESH_EVERY backstop: told by NOTIFY
    await wait_for(lambda: b.joinable(number), timeout=0.5)
    assert time.monotonic() - began < 0.5
    reads = reader_of(a)
    try:
        active = reads.active_conference(ORGANIZER)
        assert active is not None
    finally:
        reads.close()
    ending = entry(text("m2", "bye"))
    assert ending is not None
    await a.handle(ending, text("m2", "bye"), RULES, time.time(), "")
    await wait_for(lambda: not b.joinable(number), timeout=0.5)


# --- the command line --------------------------------------------------------------------


async def test_migrate_copies_a_sqlite_database_and_history_reads_the_same(
        start_line: StartLine, tmp_path: Path, postgres_cluster: Any) -> None:
    line = await start_line()
    for organizer in (ORGANIZER, "+12015550102"):
        a, b = invitees(2, 110 if organizer == ORGANIZER else 140)
        name = await start(line, [a, b], organizer)
        await line.conference("conferenceCreated", name, f"bw-{name}", T0)
        await line.join(name, a, f"c-{name}", at(0, 1), f"bw-{name}")
        await line.text(organizer, "thanks 🎉 all")
        await line.leave(name, a, f"c-{name}", at(3, 0), f"bw-{name}")
        await line.conference("conferenceCompleted", name, f"bw-{name}", at(3, 1))
    await line.text(ORGANIZER, " ".join(invitees(3, 160)))  # one still active
    await line.settle()
    sqlite_config = str(write_config(tmp_path / "sqlite.toml", line))
    before = {command: json.loads((await invoke(command, "--config", sqlite_config,
                                                "--json")).output)
              for command in ("history", "status")}
    assert len(before["history"]) == 2
    await line.client.close()  # migrate is refused while a serve uses the database

    url = postgres_cluster.database()
    moved = await invoke("migrate", "--from", str(line.config.store_path), "--to", url,
                         "--json")
    assert moved.exit_code == 0, moved.output
    assert json.loads(moved.output)["rows"]["conferences"] == 3
    postgres_config = tmp_path / "postgres.toml"
    postgres_config.write_text(f'[store]\nurl = "{url}"\n')
    after = {command: json.loads((await invoke(command, "--config", str(postgres_config),
                                               "--json")).output)
             for command in ("history", "status")}
    assert after["history"] == before["history"]
    assert after["status"]["active"] == before["status"]["active"]  # its times: now

    again = await invoke("migrate", "--from", str(line.config.store_path), "--to", url)
    assert again.exit_code == 1 and "is not empty" in again.output

    copied = max(t["id"] for t in before["status"]["active"][0]["texts"])
    store = await PostgresStore.open(url)  # and serving goes on from it: new rows follow
    try:
        await handle(store, text("after-migrate", "bye"), "")
    finally:
        await store.aclose()
    reads = PostgresReads.open(url)
    try:
        assert min(r.id for r in reads.outbox() if r.body == "bye") > copied
    finally:
        reads.close()


async def test_migrate_is_refused_while_a_server_uses_the_database(
        start_line: StartLine, postgres_cluster: Any) -> None:
    line = await start_line()
    result = await invoke("migrate", "--from", str(line.config.store_path), "--to",
                          postgres_cluster.database())
    assert result.exit_code == 1
    assert "confcall serve is using" in result.output


@pytest.mark.parametrize("command", ["backup", "restore"])
async def test_backup_and_restore_on_postgresql_point_to_its_own_tools(
        command: str, tmp_path: Path, postgres_cluster: Any) -> None:
    url = postgres_cluster.database()
    config = tmp_path / "c.toml"
    config.write_text(f'[store]\nurl = "{url}"\n')
    result = await invoke(command, str(tmp_path / "x.db"), "--config", str(config))
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert ("pg_dump" if command == "backup" else "pg_restore") in result.output


@pytest.mark.parametrize("store", STORES)
async def test_status_and_history_with_no_database_say_so_in_one_line(
        store: str, tmp_path: Path, postgres_cluster: Any) -> None:
    config = tmp_path / "c.toml"
    if store == "postgresql":  # a database confcall never set up
        base = postgres_cluster.url("postgres")
        config.write_text(f'[store]\nurl = "{base}"\n')
    else:
        config.write_text('[store]\npath = "nowhere.db"\n')
    for command in ("status", "history"):
        result = await invoke(command, "--config", str(config))
        assert result.exit_code == 1
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert "no confcall database at" in result.output or "no database at" in result.output


def test_a_url_with_a_password_never_shows_it(postgres_cluster: Any) -> None:
    from confcall.errors import StoreError

    url = f"postgresql://confcall:s3cret-pw@127.0.0.1:{postgres_cluster.port}/no_such_db"
    with pytest.raises(StoreError) as caught:
        open_reader(__import__("confcall.config", fromlist=["load_config"]).load_config(
            None, {"CONFCALL_STORE_URL": url}))
    assert "s3cret-pw" not in str(caught.value)
    assert "no_such_db" in str(caught.value)


def test_serve_on_a_database_it_cannot_reach_is_one_line_and_no_banner(tmp_path: Path) -> None:
    from aiohttp.test_utils import unused_port
    from test_serve import clean_env, confcall

    closed = unused_port()  # nothing listens there
    url = f"postgresql://confcall:s3cret-pw@127.0.0.1:{closed}/confcall"
    result = confcall("serve", "--port", str(unused_port()), cwd=tmp_path,
                      env={**clean_env(), "CONFCALL_STORE_URL": url})
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: cannot reach the database postgresql://confcall:***@"), line
    assert "s3cret-pw" not in result.stderr


async def test_the_banner_and_the_logs_name_the_database_without_its_password(
        postgres_cluster: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from rich.console import Console

    from confcall.config import load_config
    from confcall.render import banner

    url = postgres_cluster.database().replace("confcall@", "confcall:s3cret-pw@")
    config = load_config(None, {"CONFCALL_STORE_URL": url})
    console = Console(record=True, width=200)
    console.print(banner(config))
    shown = console.export_text()
    assert "confcall:***@127.0.0.1" in shown and "s3cret-pw" not in shown
    store = await PostgresStore.open(url)
    store._unwritable(f"cannot write the database {store.where}: test")
    await store.aclose()
    assert "s3cret-pw" not in caplog.text and "confcall:***@" in caplog.text
