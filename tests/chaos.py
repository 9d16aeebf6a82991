"""Crash and fault safety: full conference flows against `confcall serve` while it is
SIGKILLed at random moments and restarted, its disk fills up, another process holds its
database's write lock, and Bandwidth answers slowly, hangs or redirects; every callback is
re-delivered until it gets a 2xx, as Bandwidth does. Afterwards: which texts reached the
fake Bandwidth, how many were lost, and where each duplicate came from."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import phonenumbers
from conftest import inbound_text, voice_event
from fake_bandwidth import FakeBandwidth, Fault
from served import Served

from confcall.conference import invitation
from confcall.store import Reader
from confcall.store.model import OutboxRow
from confcall.store.sqlite_reads import SqliteReads

LINE = "+12015550100"
ORGANIZERS = ["+12015550101", "+12015550102", "+12015550103"]

# What can go wrong, each by a real cause: `kill` SIGKILLs the server (and starts it again);
# `disk-full` fills the small disk the database is on; `lock` holds the database's write
# lock from another process; `slow`, `hang` and `redirect` make Bandwidth answer late,
# never finish its answer, or answer 302.
FAULTS = ("kill", "disk-full", "lock", "slow", "hang", "redirect")
DISK_SIZE = "32m"  # the tmpfs the database lives on with `disk-full`
HOLD = (0.5, 4.0)  # seconds a fault other than `kill` lasts, at random
SLOW = (0.3, 3.0)  # seconds a slow Bandwidth takes to answer: at times past the time-out


def _valid_numbers() -> Iterator[str]:
    """Valid, distinct numbers for invitees: +1201555xxxx, then the next area codes."""
    for area in range(201, 1000):
        for suffix in range(1000, 10000):
            number = f"+1{area}555{suffix:04d}"
            if phonenumbers.is_valid_number(phonenumbers.parse(number)):
                yield number


_SUPPLY = _valid_numbers()
NUMBERS: list[str] = []  # those handed out so far, ten per flow


def invitees_of(index: int) -> list[str]:
    """The ten invitees of flow `index`, shared with no other flow however long the run."""
    while len(NUMBERS) < index * 10 + 10:
        NUMBERS.append(next(_SUPPLY))
    return NUMBERS[index * 10:index * 10 + 10]


def parse_faults(text: str) -> tuple[str, ...]:
    """`kill,lock` -> ("kill", "lock"); ValueError naming what is not a fault mode."""
    modes = tuple(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    unknown = [m for m in modes if m not in FAULTS]
    if unknown or not modes:
        what = f"unknown fault mode {', '.join(unknown)}" if unknown else "no fault mode"
        raise ValueError(f"{what}: choose from {', '.join(FAULTS)}")
    return modes


@dataclass
class Report:
    kills: int = 0
    flows: int = 0
    expected: int = 0
    delivered: int = 0
    lost: int = 0
    duplicates: int = 0  # extra copies of a text, all with the same outbox tag
    doubtful: int = 0  # of those, copies of a row marked doubtful: the documented window
    unexplained: int = 0  # of those, copies beyond what the row's doubtful count explains
    replay_duplicates: int = 0  # extra copies with different tags: a callback acted on twice
    faults: Counter[str] = field(default_factory=Counter)  # how often each was applied
    met: Counter[str] = field(default_factory=Counter)  # requests to Bandwidth that met each
    skipped: dict[str, str] = field(default_factory=dict)  # fault modes not applied, and why
    answered_503: int = 0  # webhooks the server answered 503 (and were delivered again)
    failed_starts: int = 0  # starts that exited (the database could not be written)
    tracebacks: int = 0  # in the server's log: a person must never see one
    errors: int = 0  # one-line errors in the server's log (`error: …`, as a failed start says)
    missing: list[str] = field(default_factory=list)
    unexplained_rows: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)  # flows unfinished, texts still pending

    def line(self) -> str:
        return (f"kills: {self.kills} | flows: {self.flows} | texts expected: {self.expected}"
                f" | delivered: {self.delivered} | lost: {self.lost} | duplicates: "
                f"{self.duplicates} (rows marked doubtful: {self.doubtful}, unexplained: "
                f"{self.unexplained}, from replayed callbacks: {self.replay_duplicates})")

    def fault_line(self) -> str:
        applied = ", ".join(
            f"{mode} {self.faults[mode]}"
            + (f" ({self.met[mode]} requests)" if mode in ("slow", "hang", "redirect") else "")
            for mode in FAULTS if mode in self.faults) or "none"
        return (f"faults applied: {applied} | webhooks answered 503: {self.answered_503}"
                f" | failed starts: {self.failed_starts} (error lines logged: {self.errors},"
                f" tracebacks: {self.tracebacks})")

    @property
    def ok(self) -> bool:
        return not (self.lost or self.unexplained or self.replay_duplicates or self.stuck)


@dataclass
class Flow:
    index: int
    organizer: str
    invitees: list[str]
    name: str | None = None
    done: bool = False
    stage: str = "not started"

    @property
    def closing(self) -> str:
        return f"flow {self.index} is over, thanks"

    def expected(self) -> list[tuple[tuple[str, ...], str, str]]:
        """The texts this flow must cause: (recipients, opening, something it contains).
        The confirmation and the recap are matched by their opening and the first invitee:
        every flow of an organizer sends one, and the recap's durations vary."""
        first = self.invitees[0]
        texts = [((n,), invitation(self.organizer, LINE), "") for n in self.invitees]
        texts.append(((self.organizer,), "Conference started.", first))
        texts.append((tuple(self.invitees), self.closing, ""))
        texts.append(((self.organizer,), "Conference ended", first))
        return texts


class Driver:
    """Plays Bandwidth's side of the flows: every callback is posted until it gets a 2xx.
    With several replicas it plays a load balancer too: each post goes to one at random,
    some are delivered again to another (a replay), and some to all at the same moment."""

    def __init__(self, served: Served, fake: FakeBandwidth, session: aiohttp.ClientSession,
                 replicas: list[Served] | None = None, seed: int = 0,
                 report: Report | None = None) -> None:
        self.served = served
        self.fake = fake
        self.session = session
        self.replicas = replicas or [served]
        self.chance = random.Random(seed)
        self.report = report or Report()

    async def deliver(self, path: str, body: Any) -> str:
        if len(self.replicas) > 1 and self.chance.random() < 0.15:
            answers = await asyncio.gather(*(self._post(r, path, body) for r in self.replicas))
            if any(a is not None for a in answers):
                return next(a for a in answers if a is not None)
        while True:
            answer = await self._post(self.chance.choice(self.replicas), path, body)
            if answer is not None:
                if len(self.replicas) > 1 and self.chance.random() < 0.15:
                    await self._post(self.chance.choice(self.replicas), path, body)  # a replay
                return answer
            await asyncio.sleep(0.05)

    async def _post(self, served: Served, path: str, body: Any) -> str | None:
        """The answer, or None when there was none or a 5xx (Bandwidth delivers it again)."""
        try:
            async with self.session.post(served.url + path, json=body,
                                         timeout=aiohttp.ClientTimeout(total=5)) as answer:
                if answer.status < 300:
                    return await answer.text()
                if answer.status < 500:
                    raise AssertionError(f"{path} answered {answer.status}")
                self.report.answered_503 += answer.status == 503
        except (TimeoutError, aiohttp.ClientError):
            pass  # not answered: Bandwidth delivers it again
        return None

    async def wait(self, predicate: Any, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("the flow did not progress")
            await asyncio.sleep(0.05)

    async def run(self, flow: Flow) -> None:
        flow.stage = "organizer's first text"
        start = inbound_text(flow.organizer, ", ".join(flow.invitees),
                             message_id=f"start-{flow.index}")
        await self.deliver("/callbacks/messaging", start)
        first = flow.invitees[0]
        if len(self.replicas) > 1:  # invitees call once invited, as people do
            await self.wait(lambda: any(t["to"] == [first] for t in self.fake.texts))
        calls = [f"c-{flow.index}-{k}" for k in range(3)]
        flow.stage = "inbound call"
        bxml = await self.deliver("/callbacks/voice/initiate", voice_event(
            "initiate", **{"from": first, "to": LINE, "callId": calls[0]}))
        flow.name = bxml.split('tag="', 1)[1].split('"', 1)[0]
        bandwidth_id = f"conf-{flow.index}"
        when = "2026-11-25T10:00:00.000Z"
        created = voice_event("conferenceCreated", conferenceId=bandwidth_id, name=flow.name,
                              tag=flow.name, eventTime=when)
        flow.stage = "conferenceCreated"
        await self.deliver("/callbacks/voice/conference", created)
        members = list(zip(calls, flow.invitees[:3], strict=True))
        flow.stage = "joins"
        for k, (call, number) in enumerate(members):
            join = voice_event("conferenceMemberJoin", conferenceId=bandwidth_id,
                               name=flow.name, tag=flow.name, callId=call,
                               eventTime=f"2026-11-25T10:00:0{k}.000Z",
                               **{"from": number, "to": LINE})
            await self.deliver("/callbacks/voice/conference", join)
        flow.stage = "organizer's closing text"
        end = inbound_text(flow.organizer, flow.closing, message_id=f"end-{flow.index}")
        await self.deliver("/callbacks/messaging", end)
        flow.stage = "waiting for the conference to be completed on Bandwidth"
        await self.wait(lambda: bandwidth_id in self.fake.completed)
        flow.stage = "leaves"
        for k, (call, number) in enumerate(members):
            leave = voice_event("conferenceMemberExit", conferenceId=bandwidth_id,
                                name=flow.name, tag=flow.name, callId=call,
                                eventTime=f"2026-11-25T10:05:0{k}.000Z",
                                **{"from": number, "to": LINE})
            await self.deliver("/callbacks/voice/conference", leave)
        completed = voice_event("conferenceCompleted", conferenceId=bandwidth_id,
                                name=flow.name, tag=flow.name,
                                eventTime="2026-11-25T10:05:09.000Z")
        flow.stage = "conferenceCompleted"
        await self.deliver("/callbacks/voice/conference", completed)
        flow.stage = "waiting for the recap"
        await self.wait(lambda: any(
            t["to"] == [flow.organizer] and t["text"].startswith("Conference ended")
            and first in t["text"] for t in self.fake.texts))
        flow.stage = "done"
        flow.done = True


def tally(flows: list[Flow], texts: list[dict[str, Any]], doubtful: dict[str, int],
          report: Report) -> None:
    """Count each expected text's copies. Extra copies with one tag (one outbox row) are
    the documented window when the row is marked doubtful at least once per extra copy,
    and unexplained otherwise; copies with different tags are a callback acted on twice.
    `doubtful` is the outbox's `doubtful` column by row id, as text (the tag)."""
    for flow in flows:
        for recipients, text, within in flow.expected():
            copies = [t for t in texts if tuple(t["to"]) == recipients
                      and t["text"].startswith(text) and within in t["text"]]
            report.expected += 1
            if not copies:
                report.lost += 1
                report.missing.append(f"flow {flow.index}: {text[:30]} to {recipients[0]}")
                continue
            report.delivered += 1
            tags = Counter(t["tag"] for t in copies)
            for tag, count in tags.items():
                extra = count - 1
                explained = min(extra, doubtful.get(tag, 0))
                report.duplicates += extra
                report.doubtful += explained
                report.unexplained += extra - explained
                if extra > explained:
                    report.unexplained_rows.append(
                        f"outbox row {tag} ({text[:30]} to {recipients[0]}): {count} copies,"
                        f" doubtful {doubtful.get(tag, 0)}")
            report.replay_duplicates += len(tags) - 1


def outbox_of(where: Path | str) -> list[OutboxRow]:
    """The outbox of the SQLite database at `where`, or of the PostgreSQL one it names."""
    if isinstance(where, str):
        from confcall.store.postgres_reads import PostgresReads

        reads: Reader = PostgresReads.open(where)
    else:
        reads = SqliteReads.open(where)
    try:
        return reads.outbox()
    finally:
        reads.close()


def doubtful_rows(where: Path | str) -> dict[str, int]:
    """The outbox's `doubtful` count of every text row, by its id as a tag carries it."""
    return {str(row.id): row.doubtful for row in outbox_of(where) if row.kind == "text"}


def pending_texts(where: Path | str) -> list[str]:
    """The text rows the outbox has yet to send: how often tried, when due, whether
    leased, and why the last attempt failed."""
    now = time.time()
    return [f"outbox row {row.id} pending: {row.attempts} attempts, due "
            f"{row.due_at - now:+.1f} s, leased "
            f"{'no' if row.leased_until is None else f'{row.leased_until - now:+.1f} s'}, "
            f"last error: {row.last_error}"
            for row in outbox_of(where) if row.kind == "text" and row.status == "pending"]


# --- the causes -------------------------------------------------------------------------


def mount_small_disk(folder: Path, size: str = DISK_SIZE) -> str | None:
    """Mount a tmpfs of `size` at `folder`; why not, if it cannot be (not root, no mount)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                                  str(folder)], capture_output=True, text=True)
    except OSError as exc:
        return f"cannot run mount: {exc}"
    if mounted.returncode != 0:
        return f"cannot mount a tmpfs: {mounted.stderr.strip() or mounted.returncode}"
    return None


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)


class Cause:
    """One fault mode other than `kill`: applied, then released a random while later."""

    async def apply(self) -> None:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError


class DiskFull(Cause):
    """The disk holding the database filled to the last byte by a file, then the file
    deleted."""

    def __init__(self, folder: Path) -> None:
        self.filler = folder / "filler"

    async def apply(self) -> None:
        fd = os.open(self.filler, os.O_CREAT | os.O_WRONLY, 0o600)
        try:
            for size in (1 << 20, 65536, 4096, 512, 1):
                with contextlib.suppress(OSError):
                    while os.write(fd, b"\0" * size):
                        pass
        finally:
            os.close(fd)

    def release(self) -> None:
        self.filler.unlink(missing_ok=True)


class LockHeld(Cause):
    """Another process (this one, not the server) holds the database's write lock:
    BEGIN IMMEDIATE on a connection of its own."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.holder: sqlite3.Connection | None = None

    async def apply(self) -> None:
        self.holder = sqlite3.connect(self.database, timeout=0, isolation_level=None)
        while True:  # the server may be in the middle of a write: take the lock after it
            try:
                self.holder.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError:
                await asyncio.sleep(0.005)

    def release(self) -> None:
        if self.holder is not None:
            if self.holder.in_transaction:
                self.holder.execute("ROLLBACK")
            self.holder.close()
            self.holder = None


class Misbehaving(Cause):
    """Every request to the fake Bandwidth meets `fault` until released."""

    ENOUGH = 10**9

    def __init__(self, fake: FakeBandwidth, fault: Fault) -> None:
        self.fake = fake
        self.fault = fault
        self.met = 0  # requests that met it

    async def apply(self) -> None:
        self.fault.times = self.ENOUGH
        self.fake.faults.append(self.fault)

    def release(self) -> None:
        if self.fault.times:
            self.met = self.ENOUGH - self.fault.times
        self.fault.times = 0
        with contextlib.suppress(ValueError):
            self.fake.faults.remove(self.fault)


def cause_of(mode: str, fake: FakeBandwidth, database: Path,
             chance: random.Random) -> Cause:
    if mode == "disk-full":
        return DiskFull(database.parent)
    if mode == "lock":
        return LockHeld(database)
    if mode == "slow":  # a request goes through, late (at times later than the time-out)
        return Misbehaving(fake, Fault("*", 0, 200, delay=chance.uniform(*SLOW)))
    if mode == "hang":  # the status line, then a body that never ends
        return Misbehaving(fake, Fault("*", 0, 202, hang=True))
    if mode == "redirect":
        return Misbehaving(fake, Fault("*", 0, 302, location="/elsewhere/x"))
    raise ValueError(mode)


# --- the run ----------------------------------------------------------------------------


class Faults:
    """Applies the fault modes other than `kill` in turn (a random order each round) at
    random moments `gap` seconds apart, each for `hold` seconds at random; a mode still
    applied when its turn comes round again is left to run."""

    def __init__(self, modes: list[str], fake: FakeBandwidth, database: Path,
                 chance: random.Random, report: Report, gap: tuple[float, float],
                 hold: tuple[float, float]) -> None:
        self.modes = modes
        self.fake = fake
        self.database = database
        self.chance = chance
        self.report = report
        self.gap = gap
        self.hold = hold
        self.running: dict[str, asyncio.Task[None]] = {}
        self.going = True
        self.each_once = asyncio.Event()  # every mode has been applied
        if not modes:
            self.each_once.set()

    async def loop(self) -> None:
        order: list[str] = []
        try:
            while self.going:
                await asyncio.sleep(self.chance.uniform(*self.gap))
                if not order:
                    order = self.chance.sample(self.modes, len(self.modes))
                mode = order.pop()
                if self.going and (mode not in self.running or self.running[mode].done()):
                    self.running[mode] = asyncio.create_task(self.apply(mode))
        finally:
            await self.release()

    async def release(self) -> None:
        """End every fault now."""
        self.going = False
        for task in self.running.values():
            task.cancel()
        await asyncio.gather(*self.running.values(), return_exceptions=True)

    async def apply(self, mode: str) -> None:
        cause = cause_of(mode, self.fake, self.database, self.chance)
        try:
            await cause.apply()
            self.report.faults[mode] += 1
            if all(self.report.faults[m] for m in self.modes):
                self.each_once.set()
            await asyncio.sleep(self.chance.uniform(*self.hold))
        finally:
            cause.release()
            if isinstance(cause, Misbehaving):
                self.report.met[mode] += cause.met


async def restart(served: Served, report: Report) -> None:
    """Start the server again, as systemd does (Restart=on-failure): a start may exit
    while the database cannot be written. Serving counts as started even while /healthz
    answers 503: the faults may go on for a while yet."""
    while True:
        try:
            await served.start(timeout=120, ready=(200, 503))
            return
        except RuntimeError:
            report.failed_starts += 1
            await asyncio.sleep(0.5)


async def run(fake: FakeBandwidth, workdir: Path, *, kills: int, flows: int = 3,
              seed: int = 0, parallel: int = 3, gap: tuple[float, float] = (0.05, 0.5),
              faults: tuple[str, ...] = ("kill",), seconds: float = 0.0,
              fault_gap: tuple[float, float] = (0.2, 1.5), hold: tuple[float, float] = HOLD,
              settle: float = 120.0, store_url: str | None = None, replicas: int = 1,
              **settings: str) -> Report:
    """Run at least `flows` flows, `parallel` at a time, while faults happen: with `kill`
    in `faults`, the server is SIGKILLed `kills` times at random moments `gap` seconds
    apart; the other modes are applied in turn at random moments `fault_gap` apart, each
    for `hold` seconds at random, overlapping one another and the kills. Faults go on
    until the kills are done, at least `seconds` have passed and every mode has been
    applied; then the flows under way and the texts still pending get `settle` seconds
    each to finish. With `store_url` (PostgreSQL), `replicas` servers share it and each
    kill takes one at random while the others serve; `disk-full` and `lock`, faults of
    SQLite's file, are skipped."""
    chance = random.Random(seed)
    report = Report()
    database = workdir / "confcall.db"
    disk: Path | None = None
    if store_url is not None:
        for mode in ("disk-full", "lock"):
            if mode in faults:
                report.skipped[mode] = "a fault of SQLite's file, and this run is on PostgreSQL"
    elif "disk-full" in faults:
        disk = workdir / "disk"
        problem = mount_small_disk(disk)
        if problem is None:
            database = disk / "confcall.db"
        else:
            report.skipped["disk-full"] = problem
            disk = None
    modes = [m for m in faults if m != "kill" and m not in report.skipped]
    if store_url is None:
        settings = {"CONFCALL_STORE_PATH": str(database), **settings}
    servers = [Served(workdir, fake, ORGANIZERS[:parallel], store_url=store_url,
                      name="serve" if replicas == 1 else f"replica-{i}", **settings)
               for i in range(replicas)]
    served = servers[0]
    where: Path | str = database if store_url is None else store_url
    all_flows: list[Flow] = []
    applying = Faults(modes, fake, database, chance, report, fault_gap, hold)
    tasks: list[asyncio.Task[None]] = []
    try:
        await asyncio.gather(*(s.start() for s in servers))
        async with aiohttp.ClientSession() as session:
            driver = Driver(served, fake, session, servers, seed, report)

            async def organizer_loop(organizer: str) -> None:
                while applying.going or sum(f.organizer == organizer for f in all_flows) < (
                        flows + parallel - 1) // parallel:
                    index = len(all_flows)
                    flow = Flow(index, organizer, invitees_of(index))
                    all_flows.append(flow)
                    await driver.run(flow)

            loops = [asyncio.create_task(organizer_loop(o)) for o in ORGANIZERS[:parallel]]
            tasks += loops
            if modes:
                tasks.append(asyncio.create_task(applying.loop()))
            began = time.monotonic()
            if "kill" in faults:
                for _ in range(kills):
                    await asyncio.sleep(chance.uniform(*gap))
                    victim = chance.choice(servers)
                    await victim.kill()
                    report.kills += 1
                    report.faults["kill"] += 1
                    await restart(victim, report)
            await asyncio.sleep(max(0.0, seconds - (time.monotonic() - began)))
            await applying.each_once.wait()
            await applying.release()
            await settle_flows(loops, settle)
            report.stuck = [f"flow {f.index} ({f.organizer}): {f.stage}"
                            for f in all_flows if not f.done]
            report.stuck += await settle_outbox(served, fake, session, where, settle)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await applying.release()
        for each in servers:
            await each.stop()
        try:
            rows = doubtful_rows(where) if store_url or database.exists() else {}
        finally:
            if disk is not None:
                unmount(disk)
    report.flows = len(all_flows)
    tally(all_flows, fake.texts, rows, report)
    for each in servers:
        log = workdir / f"{each.name}.log"
        said = log.read_text(errors="replace").splitlines() if log.exists() else []
        report.tracebacks += sum(line.startswith("Traceback") for line in said)
        report.errors += sum(line.startswith("error: ") for line in said)
    return report


async def settle_flows(loops: list[asyncio.Task[None]], settle: float) -> None:
    """Give the flows under way `settle` seconds to finish; a flow that broke (a callback
    answered 4xx) says so."""
    _, late = await asyncio.wait(loops, timeout=settle)
    for task in late:
        task.cancel()
    for outcome in await asyncio.gather(*loops, return_exceptions=True):
        if isinstance(outcome, Exception) and not isinstance(outcome, TimeoutError):
            raise outcome


async def settle_outbox(served: Served, fake: FakeBandwidth, session: aiohttp.ClientSession,
                        where: Path | str, settle: float) -> list[str]:
    """Give the texts still pending `settle` seconds to go out (a flow ends with its recap,
    which may overtake a text being retried: what is pending is not lost yet); what is
    still pending then, and what the server and Bandwidth are doing meanwhile."""
    deadline = time.monotonic() + settle
    while (pending := pending_texts(where)) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    if pending:
        async with session.get(served.url + "/healthz") as answer:
            pending.append(f"/healthz: {answer.status} {await answer.text()}")
        asked = fake.requests
        await asyncio.sleep(2)
        pending.append(f"Bandwidth was asked {fake.requests - asked} times in 2 s; its faults:"
                       f" {[f for f in fake.faults if f.times] or 'none'}")
    return pending
