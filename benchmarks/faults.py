"""The figure for each of issue 8's eight fault cases, measured now against `confcall serve`.

Each case runs a real `confcall serve` process (tests/served.py) against the fake Bandwidth
(tests/fake_bandwidth.py) and brings the fault about by its real cause: a 2 MiB tmpfs
filled to the last byte, another process holding `BEGIN IMMEDIATE`, Bandwidth answering
302, HTML or an empty 202, a body that never ends, a lookup answering HTML and a completion
answering 400, damaged data pages and a database file deleted while serving, a second
serve through a symlink and a hard link, and callbacks replayed after their records were
pruned (the stopped server's stored times moved back, as if days had passed).

    python benchmarks/faults.py              # all eight, about a minute and a half
    python benchmarks/faults.py --case 2     # one of them

Prints one line per case with what was measured and, where the README promises a bound,
`(goal …: meets|misses)`. Exits 1 when a case breaks its promise. Case 1 mounts a tmpfs
and needs root; without it, it says so and is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from _harness import FakeBandwidth, Served, chaos, fake_bandwidth
from conftest import inbound_text, invitees, voice_event
from fake_bandwidth import Fault
from test_faults import a_database_with_pages, damage

from confcall.store.model import OutboxRow
from confcall.store.sqlite_reads import SqliteReads

LINE = "+12015550100"
ORGANIZERS = ["+12015550101", "+12015550102", "+12015550103"]
STRANGER = "+12015550199"
T0 = "2026-11-25T10:00:00.000Z"
DOUBTFUL = "Bandwidth took it, but the database could not record that"


@dataclass
class Outcome:
    line: str
    ok: bool = True
    skipped: bool = False


def goal(met: bool, what: str) -> str:
    return f"(goal {what}: {'meets' if met else 'misses'})"


# --- talking to the served process -------------------------------------------------------


class Client:
    """Callbacks to one served process, each answer's status and how long it took."""

    def __init__(self, session: aiohttp.ClientSession, served: Served) -> None:
        self.session = session
        self.served = served

    async def post(self, path: str, body: Any) -> tuple[int, float]:
        began = time.monotonic()
        async with self.session.post(self.served.url + path, json=body) as answer:
            await answer.read()
            return answer.status, time.monotonic() - began

    async def text(self, sender: str, text: str, message_id: str | None = None
                   ) -> tuple[int, float]:
        return await self.post("/callbacks/messaging",
                               inbound_text(sender, text, message_id=message_id))

    async def health(self) -> tuple[int, str, float]:
        began = time.monotonic()
        async with self.session.get(self.served.url + "/healthz") as answer:
            body = await answer.json()
            return answer.status, str(body.get("reason", "")), time.monotonic() - began

    async def conference(self, kind: str, name: str, bandwidth_id: str,
                         **fields: Any) -> int:
        body = voice_event(kind, conferenceId=bandwidth_id, name=name, tag=name,
                           eventTime=T0, **fields)
        return (await self.post("/callbacks/voice/conference", body))[0]

    async def join(self, name: str, caller: str, call_id: str, bandwidth_id: str) -> int:
        return await self.conference("conferenceMemberJoin", name, bandwidth_id,
                                     callId=call_id, **{"from": caller, "to": LINE})


@contextlib.asynccontextmanager
async def serving(workdir: Path, fake: FakeBandwidth, **settings: str
                  ) -> AsyncIterator[tuple[Served, Client]]:
    served = Served(workdir, fake, ORGANIZERS, LINE, **settings)
    await served.start()
    try:
        async with aiohttp.ClientSession() as session:
            yield served, Client(session, served)
    finally:
        await served.stop()


def database(served: Served) -> Path:
    return Path(served.env["CONFCALL_STORE_PATH"])


def outbox(path: Path) -> list[OutboxRow]:
    reads = SqliteReads.open(path)
    try:
        return reads.outbox()
    finally:
        reads.close()


def counts(path: Path) -> dict[str, int]:
    reads = SqliteReads.open(path)
    try:
        return reads.counts()
    finally:
        reads.close()


def active(path: Path, organizer: str) -> Any:
    reads = SqliteReads.open(path)
    try:
        return reads.active_conference(organizer)
    finally:
        reads.close()


async def until(predicate: Callable[[], Any], timeout: float, step: float = 0.02) -> float:
    """Seconds until `predicate` held; TimeoutError after `timeout`."""
    began = time.monotonic()
    while not predicate():
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"not within {timeout:g} s")
        await asyncio.sleep(step)
    return time.monotonic() - began


def copies(fake: FakeBandwidth) -> Counter[str]:
    """How many times Bandwidth accepted each outbox row (its id is the text's tag)."""
    return Counter(str(text["tag"]) for text in fake.texts)


def log_of(served: Served) -> str:
    path = served.workdir / f"{served.name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


async def command(served: Served, *args: str) -> tuple[int, str]:
    """A confcall command with the served process's settings: its exit code and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "confcall", *args, cwd=served.workdir, env=served.env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode(errors="replace")


async def sigterm(served: Served) -> tuple[int, float]:
    began = time.monotonic()
    code = await served.terminate()
    return code, time.monotonic() - began


# --- 1. disk full ------------------------------------------------------------------------


async def disk_full(fake: FakeBandwidth, workdir: Path) -> Outcome:
    disk = workdir / "disk"
    problem = chaos.mount_small_disk(disk, "2m")
    if problem is not None:
        return Outcome(f"1 disk full: skipped ({problem}; mounting a tmpfs needs root)",
                       skipped=True)
    try:
        async with serving(workdir, fake, CONFCALL_STORE_PATH=str(disk / "confcall.db")
                           ) as (served, client):
            fake.fail("messages", 3, 200, delay=0.5)  # in flight when the disk fills
            a, b = invitees(2)
            assert (await client.text(ORGANIZERS[0], f"{a} {b}"))[0] == 200
            await until(lambda: fake.requests >= 3, 5)
            filler = chaos.DiskFull(disk)
            await filler.apply()
            asked = fake.requests
            healths: list[tuple[int, str, float]] = []
            webhook: tuple[int, float] = (0, 0.0)
            began = time.monotonic()
            try:
                while time.monotonic() - began < 10:
                    healths.append(await client.health())
                    if len(healths) == 3:
                        webhook = await client.text(STRANGER, "hello")
                    await asyncio.sleep(0.5)
            finally:
                filler.release()
            asked = fake.requests - asked
            rows = [r for r in outbox(database(served)) if r.kind == "text"]
            recovered = await until(
                lambda: all(r.status == "sent" for r in outbox(database(served))), 60, 0.1)
            sent = copies(fake)
            log = log_of(served)
    finally:
        chaos.unmount(disk)
    most = max(sent.values(), default=0)
    tracebacks = log.count("Traceback")
    never = log.count("never retrieved")
    unhealthy = sum(status == 503 for status, _, _ in healths)
    reasons = sorted({reason for status, reason, _ in healths if status == 503})
    ok = most == 1 and len(sent) == len(rows) and tracebacks == 0 and never == 0 and (
        webhook[0] == 503 and webhook[1] <= 2.0)
    return Outcome(
        f"1 disk full 10 s: {len(rows)} texts queued, sends per text "
        f"{min(sent.values(), default=0)} (max {most}) {goal(most == 1, 'once')}, tracebacks "
        f"logged {tracebacks}, 'never retrieved' {never}, log {len(log.splitlines())} lines "
        f"({len(log.encode()) / 1024:.1f} KiB), Bandwidth asked {asked} times while full; "
        f"/healthz 503 {unhealthy} of {len(healths)} times ({'; '.join(reasons) or '-'}); "
        f"a webhook answered {webhook[0]} in {webhook[1]:.2f} s {goal(webhook[1] <= 2, '≤ 2 s')};"
        f" all recorded sent {recovered:.1f} s after the disk had room", ok)


# --- 2. the write lock held by another process ------------------------------------------


async def lock_held(fake: FakeBandwidth, workdir: Path) -> Outcome:
    async with serving(workdir, fake) as (served, client):
        holder = chaos.LockHeld(database(served))
        await holder.apply()
        healths: list[float] = []
        try:
            began = time.monotonic()

            async def poll() -> None:
                while time.monotonic() - began < 12:
                    healths.append((await client.health())[2])
                    await asyncio.sleep(0.2)

            poller = asyncio.create_task(poll())
            await asyncio.sleep(1)
            call, call_took = await client.post("/callbacks/voice/initiate", voice_event(
                "initiate", **{"from": ORGANIZERS[0], "to": LINE, "callId": "c-lock"}))
            written, write_took = await client.text(ORGANIZERS[0], invitees(1)[0])
            await poller
        finally:
            holder.release()

        fake.fail("messages", 3, 200, delay=1.0)  # Bandwidth accepts each after a second
        asked = fake.requests
        a, b = invitees(2, 120)
        assert (await client.text(ORGANIZERS[1], f"{a} {b}"))[0] == 200
        await until(lambda: fake.requests >= asked + 3, 5)
        holder = chaos.LockHeld(database(served))
        await holder.apply()
        try:
            code, took = await sigterm(served)
        finally:
            holder.release()
        accepted = len(fake.texts)
        named = log_of(served).count(DOUBTFUL)
    worst = max(healths)
    fast = worst < 0.5
    bounded = written == 503 and write_took <= 2.0
    in_time = code == 0 and took <= 5.0
    return Outcome(
        f"2 lock held 12 s: /healthz answered in {worst * 1000:.0f} ms (worst of "
        f"{len(healths)}) {goal(fast, 'at once, < 0.5 s')}, an inbound call (no write) "
        f"{call} in {call_took * 1000:.0f} ms, a webhook needing the lock answered {written} "
        f"in {write_took:.2f} s {goal(bounded, '503 ≤ 2 s')}; SIGTERM with the lock held: "
        f"exited {code} in {took:.2f} s {goal(in_time, '≤ 5 s')}, rows named as possible "
        f"duplicates: {named} of {accepted} Bandwidth accepted", fast and bounded and in_time
        and named == accepted)


# --- 3. answers that are not Bandwidth's acceptance --------------------------------------


ANSWERS: list[tuple[str, dict[str, Any]]] = [
    ("302", {"status": 302, "location": "/elsewhere/messages"}),
    ("200 with HTML", {"status": 200, "body": "<html>gateway</html>",
                       "content_type": "text/html"}),
    ("202 with an empty body", {"status": 202, "body": ""}),
]


async def not_bandwidths(fake: FakeBandwidth, workdir: Path) -> Outcome:
    parts: list[str] = []
    ok = True
    async with serving(workdir, fake) as (served, client):
        path = database(served)
        for index, (what, fault) in enumerate(ANSWERS):
            before = max((r.id for r in outbox(path)), default=0)
            redirected = fake.redirected
            fake.fail("messages", 3, **fault)
            a, b = invitees(2, 130 + 10 * index)
            assert (await client.text(ORGANIZERS[index], f"{a} {b}"))[0] == 200
            errors: set[str] = set()

            def done(before: int = before, errors: set[str] = errors) -> bool:
                rows = [r for r in outbox(path) if r.id > before]
                errors.update(r.last_error for r in rows if r.last_error)
                return len(rows) == 3 and all(r.status == "sent" for r in rows)

            took = await until(done, 15)
            rows = [r for r in outbox(path) if r.id > before]
            accepted = copies(fake)
            fake_sent = [r for r in rows if r.status == "sent" and str(r.id) not in accepted]
            doubtful = sum(r.doubtful > 0 for r in rows)
            followed = fake.redirected - redirected
            ok = ok and not fake_sent and followed == 0
            error = min(errors, key=len, default="-")
            parts.append(f"{what}: marked sent unaccepted {len(fake_sent)} of {len(rows)}"
                         f" (redirects followed {followed}, counted doubtful {doubtful}, "
                         f"{error[:40]!r}), all sent in {took:.1f} s")
    return Outcome("3 " + "; ".join(parts) + " " + goal(ok, "0 marked sent"), ok)


# --- 4. a body that never ends -----------------------------------------------------------


async def never_ends(fake: FakeBandwidth, workdir: Path) -> Outcome:
    async with serving(workdir, fake) as (served, client):
        path = database(served)
        fault = Fault("messages", 10**9, 202, hang=True)
        fake.faults.append(fault)
        a, b = invitees(2)
        assert (await client.text(ORGANIZERS[0], f"{a} {b}"))[0] == 200
        began = time.monotonic()
        await asyncio.sleep(9)
        fault.times = 0  # Bandwidth answers in full again
        held = time.monotonic() - began
        taken = fake.hung
        took = await until(lambda: all(r.status == "sent" for r in outbox(path)), 20, 0.1)
        rows = [r for r in outbox(path) if r.kind == "text"]
        counted = sum(r.doubtful for r in rows)
        code, shown = await command(served, "status")
    extra = taken  # each unfinished answer is a copy Bandwidth may have accepted
    attempts = sorted({r.attempts for r in rows})
    says = "may have gone out twice" in shown
    ok = counted >= extra and says and code == 0
    return Outcome(
        f"4 a body that never ends {held:.0f} s: {len(rows)} rows taken {taken} times "
        f"(attempts per row {', '.join(map(str, attempts))}; request_timeout 2 s, retry cap "
        f"1 s), copies counted as possible duplicates {counted} of {extra} "
        f"{goal(counted >= extra, 'every one')}, `status` says 'may have gone out twice': "
        f"{'yes' if says else 'no'}; all sent {took:.1f} s after Bandwidth answered again", ok)


# --- 5. a completion that fails ----------------------------------------------------------


async def completion(fake: FakeBandwidth, workdir: Path) -> Outcome:
    async with serving(workdir, fake) as (served, client):
        path = database(served)
        # the lookup of the conference's id answers 200 with HTML, once
        a, b = invitees(2)
        assert (await client.text(ORGANIZERS[0], f"{a} {b}"))[0] == 200
        name = active(path, ORGANIZERS[0]).id
        bandwidth_id = fake.running_conference(name)
        await client.join(name, a, "c-a", "conf-1")
        fake.fail("lookup", 1, 200, body="<html>maintenance</html>", content_type="text/html")
        assert (await client.text(ORGANIZERS[0], "bye"))[0] == 200
        try:
            looked = await until(lambda: bandwidth_id in fake.completed, 15)
        except TimeoutError:
            looked = -1.0
        [row] = [r for r in outbox(path) if r.kind == "complete" and r.conference_id == name]

        # the completion itself answers 400: a permanent failure
        fake.fail("conference", 1, 400)
        c, d = invitees(2, 140)
        assert (await client.text(ORGANIZERS[1], f"{c} {d}"))[0] == 200
        other = active(path, ORGANIZERS[1]).id
        await client.conference("conferenceCreated", other, "conf-9")
        await client.join(other, c, "c-c", "conf-9")
        assert (await client.text(ORGANIZERS[1], "bye"))[0] == 200

        def notices() -> list[dict[str, Any]]:
            return [t for t in fake.texts_to(ORGANIZERS[1]) if "could not be ended" in t["text"]]

        try:
            told_after = await until(notices, 10)
        except TimeoutError:
            told_after = -1.0
        await asyncio.sleep(2)  # time for a second notice, were one to go
        told = len(notices())
        code, shown = await command(served, "status")
    completed = looked >= 0
    in_status = code == 0 and (
        "could not end the call on Bandwidth: 400" in shown.replace("\n", " "))
    ok = completed and told == 1 and in_status
    return Outcome(
        f"5 completion lookup answering 200 non-JSON: retried, completion reached Bandwidth "
        f"{f'in {looked:.1f} s' if completed else 'never'} after {row.attempts} attempts "
        f"{goal(completed, 'reaches Bandwidth')}; completion answering 400: organizer told "
        f"{told} time(s){f' in {told_after:.1f} s' if told_after >= 0 else ''} "
        f"{goal(told == 1, 'once')}, `status` shows it: {'yes' if in_status else 'no'}", ok)


# --- 6. a damaged or deleted database ----------------------------------------------------


async def unhealthy(fake: FakeBandwidth, workdir: Path) -> Outcome:
    damaged = workdir / "damaged" / "confcall.db"
    damaged.parent.mkdir()
    a_database_with_pages(damaged)
    damage(damaged)
    refused = Served(damaged.parent, fake, ORGANIZERS, LINE, CONFCALL_STORE_PATH=str(damaged))
    began = time.monotonic()
    try:
        await refused.start(timeout=20)
        started = True
    except RuntimeError:
        started = False
    finally:
        await refused.stop()
    took = time.monotonic() - began
    said = [line for line in log_of(refused).splitlines() if line.strip()]
    reports = [await command(refused, name) for name in ("status", "history")]
    one_line = [code == 1 and len(out.strip().splitlines()) == 1 and "Traceback" not in out
                for code, out in reports]
    start_ok = not started and len(said) == 1 and "Traceback" not in said[0]

    async with serving(workdir, fake) as (served, client):
        path = database(served)
        a, b = invitees(2)
        assert (await client.text(ORGANIZERS[0], f"{a} {b}"))[0] == 200
        before = (await client.health())[0]
        os.unlink(path)
        deleted = await client.health()
        after_delete = [(await client.text(ORGANIZERS[1], invitees(1, 150 + i)[0]))[0]
                        for i in range(3)]
        other = workdir / "other" / "confcall.db"
        other.parent.mkdir()
        shutil.copy(damaged, other)  # any other database file put in its place
        shutil.copy(other, path)
        replaced = await client.health()
        after_replace = (await client.text(ORGANIZERS[1], invitees(1, 160)[0]))[0]
    told = deleted[0] == 503 and replaced[0] == 503
    answered_ok = sum(s == 200 for s in [*after_delete, after_replace])
    ok = start_ok and all(one_line) and told and answered_ok == 0 and before == 200
    excerpt = said[0][:70] if said else "-"
    return Outcome(
        f"6 damaged database (every 4th page random): serve "
        f"{'started' if started else 'refused to start'} in {took:.1f} s with {len(said)} "
        f"line(s) ({excerpt!r}) {goal(start_ok, 'refused, one line')}; status / history: exit "
        f"{reports[0][0]} / {reports[1][0]}, one line each: "
        f"{'yes' if all(one_line) else 'no'}; database file deleted while serving: /healthz "
        f"{deleted[0]} ({deleted[1]!r}), webhooks answered "
        f"{', '.join(map(str, after_delete))}; replaced: /healthz {replaced[0]} "
        f"({replaced[1]!r}), a webhook {after_replace} {goal(told and answered_ok == 0, '503')}",
        ok)


# --- 7. a second serve through another name ----------------------------------------------


async def aliases(fake: FakeBandwidth, workdir: Path) -> Outcome:
    parts: list[str] = []
    refusals = 0
    async with serving(workdir, fake) as (served, client):
        path = database(served)
        fake.fail("messages", 3, 200, delay=1.0)  # a slow Bandwidth, as the issue had it
        elsewhere = workdir / "elsewhere"
        elsewhere.mkdir()
        seconds: list[Served] = []
        for alias in ("symlink", "hard link"):
            other = elsewhere / f"{alias.replace(' ', '-')}.db"
            if alias == "symlink":
                other.symlink_to(path)
            else:
                os.link(path, other)
            second = Served(workdir, fake, ORGANIZERS, LINE, name=f"second-{other.stem}",
                            CONFCALL_STORE_PATH=str(other))
            began = time.monotonic()
            try:
                await second.start(timeout=10)
                seconds.append(second)
                parts.append(f"{alias}: second serve STARTED")
            except RuntimeError:
                refusals += 1
                said = log_of(second).strip().splitlines()
                parts.append(f"{alias}: second serve refused in {time.monotonic() - began:.1f}"
                             f" s ({said[-1][:60] if said else '-'!r})")
        a, b = invitees(2)
        body = inbound_text(ORGANIZERS[0], f"{a} {b}")
        assert (await client.post("/callbacks/messaging", body))[0] == 200
        for second in seconds:  # a balancer (or a retry) reaching the other one too
            async with client.session.post(second.url + "/callbacks/messaging",
                                           json=body) as answer:
                await answer.read()
        await until(lambda: all(r.status == "sent" for r in outbox(path)), 15)
        await asyncio.sleep(1.5)  # time for a second copy, were there a second sender
        for second in seconds:
            await second.stop()
    sent = copies(fake)
    most = max(sent.values(), default=0)
    ok = refusals == 2 and most == 1
    return Outcome(f"7 {'; '.join(parts)}; with a slow Bandwidth, sends per text "
                   f"{min(sent.values(), default=0)} (max {most}) {goal(ok, 'refused, once')}",
                   ok)


# --- 8. replays after the retention window -----------------------------------------------


def age(path: Path, seconds: float) -> None:
    """Move every time the stopped server's database holds `seconds` into the past: as
    the database would look had that much time passed since."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        tables = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        for table in tables:
            for column in db.execute(f"PRAGMA table_info({table})").fetchall():
                if str(column[2]).upper() == "REAL":
                    db.execute(f"UPDATE {table} SET {column[1]} = {column[1]} - ?"
                               f" WHERE {column[1]} IS NOT NULL", (seconds,))
        db.execute("COMMIT")
    finally:
        db.close()


async def replays(fake: FakeBandwidth, workdir: Path) -> Outcome:
    settings = {"CONFCALL_STORE_RETAIN_DAYS": "1"}
    served = Served(workdir, fake, ORGANIZERS, LINE, **settings)
    path = database(served)
    await served.start()
    a, b = invitees(2)
    start = inbound_text(ORGANIZERS[0], a, message_id="m-start-old")
    end = inbound_text(ORGANIZERS[0], "bye", message_id="m-bye-old")
    disconnect = voice_event("disconnect", callId="c-old")
    async with aiohttp.ClientSession() as session:
        client = Client(session, served)
        assert (await client.post("/callbacks/messaging", start))[0] == 200
        assert (await client.post("/callbacks/messaging", end))[0] == 200
        await client.post("/callbacks/voice/status", disconnect)  # a claim to be pruned
        await until(lambda: all(r.status != "pending" for r in outbox(path)), 10)
        claims = counts(path)["processed"]
        await sigterm(served)

        age(path, 36 * 3600)  # past retain_days, within Bandwidth's redelivery and margin
        await served.start()
        await asyncio.sleep(1.5)  # the pruning runs at the outbox's first turn
        kept = counts(path)["processed"]
        await sigterm(served)

        age(path, 2 * 86400)  # three days on: the claims are pruned
        await served.start()
        await until(lambda: counts(path)["processed"] == 0, 10)
        assert (await client.text(ORGANIZERS[0], b))[0] == 200  # a new conference
        await until(lambda: all(r.status != "pending" for r in outbox(path)), 10)
        sent = len(fake.texts)
        live = active(path, ORGANIZERS[0]).id
        answers = [(await client.post("/callbacks/messaging", body))[0]
                   for body in (start, end)]
        await client.post("/callbacks/voice/status", disconnect)
        await asyncio.sleep(1.5)  # time for anything they set off to go out
        again = len(fake.texts) - sent
        still = active(path, ORGANIZERS[0])
        await served.stop()
    pruned = sum(int(n) for n in re.findall(r"pruned (\d+) processed-callback", log_of(served)))
    resent = sum(a in t["to"] for t in fake.texts[sent:])
    ended = still is None or still.id != live
    ok = kept == claims and pruned >= 1 and again == 0 and not ended
    return Outcome(
        f"8 replay after retention (retain_days 1): claims kept after 36 h {kept} of {claims} "
        f"{goal(kept == claims, 'kept ≥ 2 days')}; after 3 days ({pruned} pruned at start) "
        f"the old start text and 'bye' delivered again: answered {answers[0]}, {answers[1]}; "
        f"invitations re-sent {resent}, texts sent {again}, live conference ended: "
        f"{'yes' if ended else 'no'} {goal(again == 0 and not ended, 'nothing')}", ok)


# --- the run -----------------------------------------------------------------------------

CASES: dict[int, Callable[[FakeBandwidth, Path], Awaitable[Outcome]]] = {
    1: disk_full, 2: lock_held, 3: not_bandwidths, 4: never_ends, 5: completion,
    6: unhealthy, 7: aliases, 8: replays,
}


async def run(case: int) -> Outcome:
    async with fake_bandwidth() as fake:
        with tempfile.TemporaryDirectory(prefix="faults-") as folder:
            try:
                return await CASES[case](fake, Path(folder))
            except (AssertionError, TimeoutError, RuntimeError, OSError, sqlite3.Error,
                    aiohttp.ClientError) as exc:
                return Outcome(f"{case} did not finish: {type(exc).__name__} {exc}", False)


async def main(cases: list[int]) -> int:
    broken = 0
    for case in cases:
        began = time.monotonic()
        outcome = await run(case)
        print(f"{outcome.line}  [{time.monotonic() - began:.0f} s]", flush=True)
        broken += not outcome.ok
    return 1 if broken else 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--case", type=int, choices=sorted(CASES), action="append",
                        help="run only this case (1-8; may be given more than once)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse()
    sys.exit(asyncio.run(main(args.case or sorted(CASES))))
