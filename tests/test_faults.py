"""When the disk, the database or Bandwidth misbehaves: nothing is sent twice because the
database failed, nothing counts as sent that Bandwidth did not accept, the loop never waits
on another process's lock, and /healthz tells the truth. Every fault has a real cause: a
full tmpfs, an immutable file, a lock held by another connection, a misbehaving fake
Bandwidth."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    LINE,
    ORGANIZER,
    Clock,
    Line,
    StartLine,
    inbound_text,
    invitees,
    voice_event,
    wait_for,
)
from test_cli import invoke, write_config

from confcall import conference
from confcall.conference import Rules
from confcall.errors import StoreError
from confcall.events import TextReceived
from confcall.store.sqlite import SqliteStore as Store
from confcall.store.sqlite_reads import SqliteReads

pytestmark = pytest.mark.both_stores

T0 = "2026-11-25T10:00:00.000Z"


# --- the causes -----------------------------------------------------------------------------


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of `size` mounted at `folder` (root only)."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                              str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Fill the disk holding `folder` to the last byte."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return filler


class Cause:
    """Something real that stops the database from being written, and its undoing. On
    PostgreSQL (`url`): another transaction holding the tables locked against writes, or
    the database refusing connections and its sessions cut (as when it is down)."""

    def __init__(self, kind: str, path: Path | None = None, url: str | None = None) -> None:
        self.kind = kind
        self.path = path or Path()
        self.url = url
        self.holder: Any = None
        self.filler: Path | None = None

    def apply(self) -> None:
        if self.url is not None:
            self._apply_postgres(self.url)
        elif self.kind == "disk full":
            self.filler = fill(self.path.parent)
        elif self.kind == "immutable":
            for name in (self.path, Path(f"{self.path}-wal")):
                done = subprocess.run(["chattr", "+i", str(name)], capture_output=True)
                if done.returncode != 0:
                    pytest.skip(f"chattr +i does not work here: {done.stderr.decode().strip()}")
        else:  # another process holds the write lock
            self.holder = sqlite3.connect(self.path, timeout=0, isolation_level=None)
            self.holder.execute("BEGIN IMMEDIATE")

    def _apply_postgres(self, url: str) -> None:
        import psycopg

        if self.kind == "locked":
            self.holder = psycopg.connect(url)
            self.holder.execute("LOCK TABLE conferences, invitees, members, outbox, deliveries,"
                                " inbound, processed IN EXCLUSIVE MODE")  # reads go on
            return
        assert self.kind == "unreachable"
        base, name = url.rsplit("/", 1)
        with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE datname = %s", (name,))

    def release(self) -> None:
        if self.url is not None and self.kind == "unreachable":
            import psycopg

            base, name = self.url.rsplit("/", 1)
            with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
                admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        if self.filler is not None:
            self.filler.unlink()
            self.filler = None
        if self.kind == "immutable":
            for name in (self.path, Path(f"{self.path}-wal")):
                subprocess.run(["chattr", "-i", str(name)], check=False, capture_output=True)
        if self.holder is not None:
            self.holder.rollback()
            self.holder.close()
            self.holder = None


@pytest.fixture(params=["disk full", "immutable", "locked", "postgresql: locked",
                        "postgresql: unreachable"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """Where the database is (a folder for SQLite, a URL for PostgreSQL) and how it will
    fail to be written."""
    kind = str(request.param)
    if kind.startswith("postgresql: "):
        yield kind, request.getfixturevalue("postgres_cluster").database()
    elif kind == "disk full":
        with small_disk(tmp_path / "disk") as folder:
            yield kind, folder
    else:
        folder = tmp_path / "db"
        folder.mkdir()
        yield kind, folder


def sends_per_text(line: Line) -> dict[str, int]:
    counts: dict[str, int] = {}
    for text in line.fake.texts:
        counts[text["tag"]] = counts.get(text["tag"], 0) + 1
    return counts


async def health(line: Line) -> tuple[int, dict[str, Any]]:
    answer = await line.client.get("/healthz")
    return answer.status, await answer.json()


# --- 1. a send Bandwidth accepted is sent once, whatever the database does after ----------


@pytest.mark.sqlite_only  # parametrized by `where` over both stores' causes
async def test_accepted_sends_go_once_while_the_database_cannot_be_written(
        where: tuple[str, Any], start_line: StartLine,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    kind, place = where
    if kind.startswith("postgresql: "):
        line = await start_line(store__url=place)
        cause = Cause(kind.removeprefix("postgresql: "), url=place)
    else:
        line = await start_line(store__path=str(place / "confcall.db"))
        cause = Cause(kind, place / "confcall.db")
    line.fake.fail("messages", 3, 200, delay=0.5)  # Bandwidth takes half a second to accept
    a, b = invitees(2)
    await line.text(ORGANIZER, f"{a} {b}")
    await wait_for(lambda: line.fake.requests >= 3)  # all three are on their way
    cause.apply()
    try:
        await asyncio.sleep(3)  # Bandwidth accepts them; recording that fails meanwhile
        assert sorted(sends_per_text(line).values()) == [1, 1, 1]

        status, body = await health(line)
        assert status == 503, body
        assert body["status"] == "unavailable" and body["reason"]

        began = time.monotonic()
        answer = await line.post("/callbacks/messaging", inbound_text(ORGANIZER, "bye"))
        assert answer.status == 503  # Bandwidth delivers it again later
        assert time.monotonic() - began < 3.0  # bounded (1.5 s for a lock), never the loop's
    finally:
        cause.release()

    await wait_for(lambda: all(r.status == "sent" for r in line.store.outbox()), timeout=40)
    assert sorted(sends_per_text(line).values()) == [1, 1, 1]
    assert (await health(line))[0] == 200
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in logged if "never retrieved" in r.getMessage()]
    # the store and the outbox say when writing stops and starts, not once per attempt
    assert len([r for r in logged if r.name == "confcall.store"]) <= 2, [
        r.getMessage() for r in logged]
    assert len([r for r in logged if "outbox paused" in r.getMessage()]) <= 2


def held(line: Line) -> Cause:
    """Another process (SQLite) or transaction (PostgreSQL) holding the line's database
    locked against writes."""
    if line.config.store_url is not None:
        return Cause("locked", url=line.config.store_url)
    return Cause("locked", line.config.store_path)


async def test_nothing_is_sent_that_could_not_be_leased(start_line: StartLine) -> None:
    clock = Clock()
    line = await start_line(clock=clock)
    line.fake.fail("*", 10_000, 503)
    a, b = invitees(2)
    await line.text(ORGANIZER, f"{a} {b}")
    await wait_for(lambda: all(r.attempts == 1 for r in line.store.outbox()))
    line.fake.faults.clear()
    cause = held(line)
    cause.apply()
    try:
        clock.advance(600)  # due again; but the lease cannot be written
        line.wake()
        await asyncio.sleep(2)
        assert line.fake.texts == []
    finally:
        cause.release()
    await wait_for(lambda: len(line.fake.texts) == 3, timeout=40)


# --- 2. the loop never waits on SQLite's lock ----------------------------------------------


async def test_healthz_answers_at_once_while_another_process_holds_the_lock(
        start_line: StartLine, tmp_path: Path) -> None:
    line = await start_line()
    cause = held(line)
    cause.apply()
    try:
        for _ in range(3):
            began = time.monotonic()
            answer = await line.client.get("/healthz")
            assert time.monotonic() - began < 0.5
            assert answer.status in (200, 503)
        # an inbound call needs no write: answered at once
        began = time.monotonic()
        await line.call(ORGANIZER, "c-org")
        assert time.monotonic() - began < 0.5
        began = time.monotonic()
        answer = await line.post("/callbacks/messaging", inbound_text(ORGANIZER, invitees(1)[0]))
        assert answer.status == 503
        assert 1.0 < time.monotonic() - began < 3.0  # waited for the lock, boundedly
        assert "locked" in (await answer.json())["error"]
        assert (await health(line))[0] == 503
    finally:
        cause.release()
    await line.text(ORGANIZER, invitees(1)[0])  # the retry goes through
    assert (await health(line))[0] == 200


# --- 3. only Bandwidth's acceptance counts -------------------------------------------------


@pytest.mark.parametrize(("fault", "reason", "doubtful"), [
    ({"status": 302, "location": "/elsewhere/messages"}, "302: redirected to", False),
    ({"status": 301, "location": "/elsewhere/messages"}, "301: redirected to", False),
    ({"status": 200, "body": "<html>gateway</html>", "content_type": "text/html"},
     "<html>gateway</html>", True),
    ({"status": 202, "body": ""}, "not shaped like Bandwidth's", True),
])
async def test_only_bandwidths_own_acceptance_marks_a_text_sent(
        start_line: StartLine, fault: dict[str, Any], reason: str, doubtful: bool) -> None:
    clock = Clock()
    line = await start_line(clock=clock)
    line.fake.fail("messages", 3, **fault)
    a, b = invitees(2)
    await line.text(ORGANIZER, f"{a} {b}")
    await wait_for(lambda: all(r.attempts == 1 for r in line.store.outbox()))
    rows = line.store.outbox()
    assert {r.status for r in rows} == {"pending"}
    assert all(reason in (r.last_error or "") for r in rows), [r.last_error for r in rows]
    assert line.fake.redirected == 0  # a redirected POST is not followed as a GET
    assert all((r.doubtful > 0) == doubtful for r in rows)

    clock.advance(400)
    line.wake()
    await wait_for(lambda: all(r.status == "sent" for r in line.store.outbox()))
    assert all(r.message_id and not r.message_id.startswith("elsewhere")
               for r in line.store.outbox())


async def test_a_body_that_never_ends_is_retried_once_per_backoff_and_counted(
        start_line: StartLine, tmp_path: Path) -> None:
    clock = Clock()
    line = await start_line(clock=clock, outbox__request_timeout=1)
    line.fake.fail("messages", 3, 202, hang=True)
    a, b = invitees(2)
    await line.text(ORGANIZER, f"{a} {b}")
    await wait_for(lambda: all(r.attempts == 1 for r in line.store.outbox()), timeout=5)
    await asyncio.sleep(1.5)  # the clock stands still: nothing is due again
    assert line.fake.hung == 3 and line.fake.texts == []

    clock.advance(400)
    line.wake()
    await wait_for(lambda: all(r.status == "sent" for r in line.store.outbox()))
    assert line.fake.hung + len(line.fake.texts) == 6  # each twice: once unanswered
    assert all(r.doubtful == 1 for r in line.store.outbox())

    config = str(write_config(tmp_path / "c.toml", line))
    shown = (await invoke("status", "--config", config, "--json")).output
    import json
    texts = json.loads(shown)["active"][0]["texts"]
    assert {t["possible_duplicate"] for t in texts} == {True}
    table = (await invoke("status", "--config", config)).output
    assert "may have gone out twice" in table


# --- retries: Retry-After, the cap, the jitter -----------------------------------------------


async def test_retry_after_is_honoured(start_line: StartLine) -> None:
    clock = Clock()
    line = await start_line(clock=clock, outbox__max_retry_delay=300)
    line.fake.fail("messages", 1, 429, retry_after="30")
    await line.text(ORGANIZER, "hello")  # one text back: the refusal
    [throttled] = await wait_for(lambda: [r for r in line.store.outbox() if r.attempts == 1])
    assert throttled.due_at == pytest.approx(clock.now + 30)
    clock.advance(29)
    line.wake()
    await asyncio.sleep(0.3)
    assert [r.status for r in line.store.outbox() if r.id == throttled.id] == ["pending"]
    clock.advance(1)
    line.wake()
    await wait_for(lambda: all(r.status == "sent" for r in line.store.outbox()))


async def test_retry_delays_are_capped(start_line: StartLine) -> None:
    clock = Clock()
    line = await start_line(clock=clock, outbox__max_retry_delay=2)
    line.fake.fail("messages", 1, 429, retry_after="3600")
    await line.text(ORGANIZER, "hello")
    [throttled] = await wait_for(lambda: [r for r in line.store.outbox() if r.attempts == 1])
    assert throttled.due_at == pytest.approx(clock.now + 2)


async def test_retries_back_off_with_the_injected_jitter(start_line: StartLine) -> None:
    clock = Clock()
    line = await start_line(clock=clock, rng=random.Random(7), outbox__max_retry_delay=300)
    line.fake.fail("messages", 2, 503)
    await line.text(ORGANIZER, "hello")
    expected = random.Random(7)
    first = await wait_for(lambda: [r for r in line.store.outbox() if r.attempts == 1])
    assert first[0].due_at - clock.now == pytest.approx(expected.uniform(0.5, 1.0))
    clock.advance(1)
    line.wake()
    second = await wait_for(lambda: [r for r in line.store.outbox()
                                     if r.id == first[0].id and r.attempts == 2])
    assert second[0].due_at - clock.now == pytest.approx(expected.uniform(1.0, 2.0))


# --- 5. a conference that cannot be completed is not forgotten ------------------------------


async def ending(line: Line, bandwidth_id: str | None = None) -> str:
    """A conference someone joined, ended by its organizer; known to Bandwidth by
    `bandwidth_id` when given (else looked up by name)."""
    a, b = invitees(2)
    await line.text(ORGANIZER, f"{a} {b}")
    name = line.active().id
    if bandwidth_id:
        await line.conference("conferenceCreated", name, bandwidth_id, T0)
    await line.join(name, a, "c-a", T0)
    await line.text(ORGANIZER, "bye")
    return str(name)


async def test_a_lookup_that_is_not_json_is_retried(start_line: StartLine) -> None:
    clock = Clock()
    line = await start_line(clock=clock)
    line.fake.fail("lookup", 1, 200, body="<html>maintenance</html>", content_type="text/html")
    a, b = invitees(2)
    await line.text(ORGANIZER, f"{a} {b}")
    name = line.active().id
    bandwidth_id = line.fake.running_conference(name)
    await line.join(name, a, "c-a", T0)
    await line.text(ORGANIZER, "bye")
    [row] = await wait_for(lambda: [r for r in line.store.outbox(name)
                                    if r.kind == "complete" and r.attempts == 1])
    assert row.status == "pending" and "maintenance" in (row.last_error or "")
    clock.advance(5)
    line.wake()
    await wait_for(lambda: line.fake.completed == [bandwidth_id])


async def test_a_completion_refused_for_good_tells_the_organizer_once(
        start_line: StartLine, tmp_path: Path) -> None:
    clock = Clock()
    line = await start_line(clock=clock)
    line.fake.fail("conference", 1, 400)
    await ending(line, "conf-9")
    notices = await wait_for(lambda: [t for t in line.fake.texts_to(ORGANIZER)
                                      if "could not be ended" in t["text"]])
    await line.settle()
    assert len(notices) == 1
    assert notices[0]["text"].startswith("The call could not be ended on Bandwidth: 400")
    config = str(write_config(tmp_path / "c.toml", line))
    shown = (await invoke("status", "--config", config)).output
    assert "could not end the call on Bandwidth: 400" in shown


async def test_a_conference_already_gone_on_bandwidth_is_closed_at_once(
        start_line: StartLine) -> None:
    clock = Clock()  # never advanced: the recap must not wait for the minute
    line = await start_line(clock=clock)
    a, b = invitees(2)
    await line.text(ORGANIZER, f"{a} {b}")
    name = line.active().id
    bandwidth_id = line.fake.running_conference(name)
    line.fake.conferences[-1]["completedTime"] = "2026-11-25T10:09:00.000Z"
    await line.conference("conferenceCreated", name, bandwidth_id, T0)
    await line.join(name, a, "c-a", T0, bandwidth_id)
    await line.text(ORGANIZER, "bye")
    await wait_for(lambda: [t for t in line.fake.texts_to(ORGANIZER)
                            if t["text"].startswith("Conference ended")])
    [row] = [r for r in line.store.outbox(name) if r.kind == "complete"]
    assert (row.status, row.last_error) == ("done", "already gone on Bandwidth")
    assert not [t for t in line.fake.texts if "could not be ended" in t["text"]]


# --- delivery receipts out of order ---------------------------------------------------------


async def test_a_late_sending_receipt_does_not_undo_delivered(line: Line, examples: Any) -> None:
    [a] = invitees(1)
    await line.text(ORGANIZER, a)
    await line.settle()
    [invite] = line.fake.texts_to(a)
    receipts = []
    for kind in ("smsMessageDelivered", "messageSending"):
        body = examples(f"messaging-callback.{kind}.json")
        body[0]["to"] = a
        body[0]["message"].update(id="m-a", to=[a], tag=invite["tag"])
        receipts.append(body)
    for body in receipts:
        assert (await line.post("/callbacks/messaging", body)).status == 200
    [state] = [d.state for d in line.store.deliveries(line.active().id) if d.recipient == a]
    assert state == "delivered"


# --- 6. /healthz tells the truth; a damaged database stops start-up --------------------------


@pytest.mark.sqlite_only
async def test_a_database_deleted_or_replaced_while_serving_is_unhealthy_and_not_written(
        start_line: StartLine, tmp_path: Path) -> None:
    line = await start_line()
    assert (await health(line))[0] == 200
    path = line.config.store_path
    os.unlink(path)
    status, body = await health(line)
    assert status == 503 and "deleted" in body["reason"]
    answer = await line.post("/callbacks/messaging", inbound_text(ORGANIZER, invitees(1)[0]))
    assert answer.status == 503  # not written to a file nobody will open again

    other = tmp_path / "other.db"
    Store.open(other).close()
    shutil.copy(other, path)
    status, body = await health(line)
    assert status == 503 and "replaced" in body["reason"]
    answer = await line.post("/callbacks/messaging", inbound_text(ORGANIZER, invitees(1)[0]))
    assert answer.status == 503


def damage(path: Path) -> None:
    """Overwrite every 4th page after the first with random bytes."""
    data = bytearray(path.read_bytes())
    chance = random.Random(4)
    for start in range(4096, len(data), 4 * 4096):
        data[start:start + 4096] = bytes(chance.getrandbits(8) for _ in range(4096))
    path.write_bytes(bytes(data))


def a_database_with_pages(path: Path) -> None:
    """A database of 300 ended conferences, filling many pages of every table."""
    rules = Rules(line=LINE, organizers=frozenset({ORGANIZER}), max_invites=10, region="US")
    store = Store.open(path)
    with store.transaction():
        for i in range(300):
            text = TextReceived(key=f"m:{i}", time=0.0, message_id=str(i), sender=ORGANIZER,
                                line=LINE, text=" ".join(invitees(10)), application_id="app")
            started = conference.on_text(rules, text, conference.Sender(), float(i),
                                         f"conf-{i}").effects
            store.apply(started, float(i), "app")
            active = store.reads.active_conference(ORGANIZER)
            assert active is not None
            store.apply(conference.end(active, "bye " * 50, float(i)).effects, float(i), None)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()


@pytest.mark.sqlite_only
async def test_a_damaged_database_stops_start_up_and_reports_in_one_line(
        tmp_path: Path) -> None:
    path = tmp_path / "confcall.db"
    a_database_with_pages(path)
    damage(path)
    with pytest.raises(StoreError, match="is damaged") as refused:
        Store.open(path, writer=True)
    said = str(refused.value)  # quick_check's first problem and a count, on one line
    assert "\n" not in said and "\\x0a" not in said and "more)" in said, said
    (tmp_path / "c.toml").write_text(f'[store]\npath = "{path}"\n')
    for command in ("status", "history"):  # said alike: the way back is a restore
        result = await invoke(command, "--config", str(tmp_path / "c.toml"))
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert str(path) in result.output.replace("\n", "")
        assert "restore it from a backup" in result.output, result.output


# --- 7. one serve per database, whatever name it is opened by ------------------------------


@pytest.mark.sqlite_only
@pytest.mark.parametrize("alias", ["symlink", "hard link", "relative path"])
def test_a_second_writer_through_another_name_is_refused(tmp_path: Path, alias: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "confcall.db"
    first = Store.open(path, writer=True)
    other = tmp_path / "elsewhere" / "alias.db"
    other.parent.mkdir()
    if alias == "symlink":
        other.symlink_to(path)
    elif alias == "hard link":
        os.link(path, other)
    else:
        monkeypatch.chdir(other.parent)
        other = Path("..") / "confcall.db"
    with pytest.raises(StoreError, match="another confcall serve is using"):
        Store.open(other, writer=True)
    first.close()
    Store.open(other, writer=True).close()  # the first let go: the alias may serve now


# --- 8. replays are refused for as long as Bandwidth may send them ---------------------------


async def test_replays_after_the_retention_window_change_nothing(start_line: StartLine) -> None:
    clock = Clock()
    line = await start_line(clock=clock, store__retain_days=1)
    a, b = invitees(2)
    start = inbound_text(ORGANIZER, a, message_id="m-start-old")
    end = inbound_text(ORGANIZER, "bye", message_id="m-bye-old")
    assert (await line.post("/callbacks/messaging", start)).status == 200
    assert (await line.post("/callbacks/messaging", end)).status == 200
    # a claim for the pruning to forget (a text's claim is its inbound row, kept longer)
    await line.post("/callbacks/voice/status", voice_event("disconnect", callId="c-1"))
    await line.settle()
    sent = len(line.fake.texts)
    assert line.store.counts()["processed"] == 1

    clock.advance(3 * 86400)  # the pruning runs: yesterday's claims are forgotten
    line.wake()
    await wait_for(lambda: line.store.counts()["processed"] == 0)
    await line.text(ORGANIZER, b)  # a new conference
    await line.settle()
    assert line.active().invitees == (b,)

    for body in (start, end):  # Bandwidth delivers the old texts once more
        assert (await line.post("/callbacks/messaging", body)).status == 200
    await line.settle()
    assert line.active() is not None and line.active().invitees == (b,)
    assert len(line.fake.texts) == sent + 2  # the new invitation and confirmation only


async def test_callback_identities_are_kept_two_days_at_least(start_line: StartLine) -> None:
    clock = Clock()
    line = await start_line(clock=clock, store__retain_days=1)
    # one claim: a disconnect (a text's claim is its inbound row, which is not pruned)
    answer = await line.post("/callbacks/voice/status", voice_event("disconnect", callId="c-1"))
    assert answer.status == 204
    assert line.store.counts()["processed"] == 1
    clock.advance(36 * 3600)  # past the retention, within Bandwidth's redelivery and margin
    line.wake()
    await asyncio.sleep(0.3)
    assert line.store.counts()["processed"] == 1


# --- SIGTERM drains within its bound whatever the database does ------------------------------


@pytest.mark.sqlite_only
async def test_sigterm_with_the_lock_held_exits_in_time_and_names_possible_duplicates(
        fake: Any, tmp_path: Path) -> None:
    import aiohttp
    from served import Served

    served = Served(tmp_path, fake, [ORGANIZER])
    await served.start()
    fake.fail("messages", 3, 200, delay=1.0)  # Bandwidth accepts each after a second
    a, b = invitees(2)
    async with aiohttp.ClientSession() as session, session.post(
            served.url + "/callbacks/messaging", json=inbound_text(ORGANIZER, f"{a} {b}")) as ok:
        assert ok.status == 200
    await wait_for(lambda: fake.requests >= 3)
    cause = Cause("locked", tmp_path / "confcall.db")
    cause.apply()
    try:
        began = time.monotonic()
        assert await served.terminate() == 0
        assert time.monotonic() - began < 5
    finally:
        cause.release()
    assert len(fake.texts) == 3
    log = (tmp_path / "serve.log").read_text()
    for row in (1, 2, 3):
        assert (f"outbox row {row}: Bandwidth took it, but the database could not record "
                "that") in log
    assert "Traceback" not in log

    await served.start()  # they go again, and status says they may have gone twice
    store = SqliteReads.open(tmp_path / "confcall.db")
    try:
        await wait_for(lambda: all(r.status == "sent" for r in store.outbox()), timeout=10)
    finally:
        await served.stop()
    assert len(fake.texts) == 6
    assert all(r.doubtful == 1 for r in store.outbox())


async def test_reports_survive_any_time_already_stored(start_line: StartLine,
                                                       tmp_path: Path) -> None:
    """An older confcall stored whatever times Bandwidth's callbacks said: status and
    history show them as unknown rather than fail for good."""
    line = await start_line()
    a, b = invitees(2)
    await line.text(ORGANIZER, f"{a} {b}")
    name = line.active().id
    await line.join(name, a, "c-a", T0)
    await line.join(name, b, "c-b", T0)
    line.store.db.execute("UPDATE members SET joined_at = -62135596800 - 50400"
                          " WHERE call_id = 'c-a'")  # 0001-01-01T00:00:00+14:00
    line.store.db.execute("UPDATE members SET joined_at = 4e11 WHERE call_id = 'c-b'")
    config = str(write_config(tmp_path / "c.toml", line))
    for command in ("status", "history"):
        shown = await invoke(command, "--config", config)
        assert shown.exit_code == 0, shown.output
    assert (await invoke("status", "--config", config, "--json")).exit_code == 0
    await line.text(ORGANIZER, "bye")
    await line.conference("conferenceCompleted", name, "conf-1", T0)
    for command in ("history", "status"):
        shown = await invoke(command, "--config", config)
        assert shown.exit_code == 0 and "Traceback" not in shown.output, shown.output
