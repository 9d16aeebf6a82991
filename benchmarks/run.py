"""Every benchmark figure, one line each: `name: value unit | peer: value | ratio`.

    python benchmarks/run.py                  # the full run (several minutes)
    python benchmarks/run.py --quick          # shorter runs, a few minutes
    python benchmarks/run.py --instructions   # only the instruction counts (callgrind)

- webhook throughput and p99 latency at 100 connections, for an `initiate` from an invited
  number (the read path: BXML) and for inbound texts with unique ids (the write path: each
  stored and committed before its answer). The contenders: `confcall serve` on asyncio's
  own event loop, `confcall serve` on uvloop (its default where uvloop is installed), and,
  with the same load generator, a bare aiohttp app on asyncio's loop answering fixed BXML at
  the same plain routes. With two cores or more the servers run on one core and wrk on
  another (taskset). After a warm-up the contenders take turns, in a rotating order, for
  at least 3 rounds; every round is printed and each figure is the median: the machine may
  be shared, and one run alone can be off by a fifth. Goals: throughput >= 0.85x the bare
  app on the same loop for the read path and >= 0.7x for the write path; on uvloop >= 1.0x
  and >= 0.8x; p99 below the bare app's p99 x 1.5.
- instructions per request under callgrind (when valgrind is installed): the same paths
  and the bare app, a fixed window of requests; see benchmarks/instructions.py.
- low load: initiate's p99 at 10 connections, each pausing 10 ms after an answer (so at
  most 1,000 requests a second; goal < 1 ms); a start text's 10 invitations,
  and an end text's group message and conference completion, from the webhook's 2xx until
  they reached the fake Bandwidth (goal < 5 ms).
- fan-out under a slow Bandwidth: a start text with 10 numbers while the fake Bandwidth
  takes 200 ms to answer each request: from the start text's 2xx until all 10 invitations
  reached it. Goal < 1 s.
- memory: RSS of `confcall serve` after 100,000 webhooks (quick: 10,000), sampled on the
  way to show whether it stays flat; and the database size per 1,000 conferences.
  Goal: RSS < 100 MB and flat after warm-up.
- the write path on PostgreSQL, with one replica and with two sharing the load, next to
  SQLite's (benchmarks/replicas.py; --store URL, else a throwaway PostgreSQL server).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import instructions
import replicas
from _harness import Served, fake_bandwidth
from aiohttp.test_utils import unused_port
from conftest import inbound_text, voice_event
from load import UNIQUE, BareApp, LoadResult, run_load, tool

LINE = "+12015550100"
ORGANIZER = "+12015550101"
INVITED = "+12015550123"
STRANGER = "+12015550199"
RUNS = 3


def figure(name: str, value: float, unit: str, peer: float | None, peer_text: str = "",
           goal: str = "") -> None:
    ratio = f"{value / peer:.2f}" if peer else "–"
    shown_peer = peer_text or (f"{peer:.1f} {unit}" if peer is not None else "–")
    print(f"{name}: {value:.1f} {unit} | peer: {shown_peer} | ratio {ratio}"
          f"{f' ({goal})' if goal else ''}", flush=True)


def verdict(met: bool, goal: str) -> str:
    return f"goal {goal}: {'meets' if met else 'misses'}"


def rss_mb(pid: int) -> float:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    return 0.0


async def post(session: aiohttp.ClientSession, url: str, body: Any) -> int:
    async with session.post(url, json=body) as answer:
        await answer.read()
        return answer.status


def pins() -> tuple[list[str], list[str]]:
    """taskset prefixes that put the servers on one core and the load generator on
    another; none with fewer than two cores or no taskset."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2 or shutil.which("taskset") is None:
        return [], []
    return ["taskset", "-c", str(cores[0])], ["taskset", "-c", str(cores[1])]


def has_uvloop() -> bool:
    return importlib.util.find_spec("uvloop") is not None


WITHOUT_UVLOOP = instructions.WITHOUT_UVLOOP
ASYNCIO, UVLOOP, BARE = "confcall (asyncio)", "confcall (uvloop)", "bare aiohttp (asyncio)"


@asynccontextmanager
async def contenders(fake: Any, folder: Path, pin: list[str]) -> AsyncIterator[dict[str, str]]:
    """{name: base URL} of confcall on each loop and of the bare app, all started, and the
    organizer's start text posted to each confcall (so that INVITED is invited)."""
    python = sys.executable
    commands = {ASYNCIO: [*pin, python, "-c", WITHOUT_UVLOOP]}
    if has_uvloop():
        commands[UVLOOP] = [*pin, python, "-m", "confcall"]
    servers = []
    try:
        urls = {}
        for name, command in commands.items():
            workdir = folder / name.split()[1].strip("()")
            workdir.mkdir()
            served = Served(workdir, fake, [ORGANIZER], command=command)
            servers.append(served)
            await served.start()
            async with aiohttp.ClientSession() as session:
                await post(session, served.url + "/callbacks/messaging",
                           inbound_text(ORGANIZER, INVITED, line=LINE))
            urls[name] = served.url
        async with BareApp(unused_port(), command=pin) as bare:
            urls[BARE] = bare.url
            yield urls
    finally:
        for served in servers:
            await served.stop()


async def rounds(urls: dict[str, str], path: str, body: Any, *, seconds: float,
                 warm_up: float, connections: int, pin: list[str],
                 label: str, pause_ms: int = 0) -> dict[str, list[LoadResult]]:
    """A warm-up for each contender, then RUNS rounds in which each runs once, the order
    rotating; every round printed."""
    names = list(urls)
    for name in names:  # a server's first seconds are not its steady state
        await run_load(urls[name] + path, body, seconds=warm_up, connections=connections,
                       pin=pin, pause_ms=pause_ms)
    results: dict[str, list[LoadResult]] = {name: [] for name in names}
    for number in range(RUNS):
        order = names[number % len(names):] + names[:number % len(names)]
        for name in order:
            results[name].append(await run_load(urls[name] + path, body, seconds=seconds,
                                                connections=connections, pin=pin,
                                                pause_ms=pause_ms))
        print(f"  {label}, round {number + 1} (req/s, p99 ms): " + "; ".join(
            f"{name} {results[name][-1].rps:.0f}/{results[name][-1].p99_ms:.2f}"
            for name in names), flush=True)
    return results


GOALS = {  # path: (throughput ratio on the same loop, on uvloop against asyncio's)
    "read": (0.85, 1.0),
    "write": (0.70, 0.80),
}


async def webhooks(quick: bool) -> None:
    seconds, warm_up = (3.0, 1.0) if quick else (10.0, 3.0)
    server_pin, load_pin = pins()
    print(f"load generator: {tool()}; servers {' '.join(server_pin) or 'unpinned'}, load "
          f"{' '.join(load_pin) or 'unpinned'}; for each path a {warm_up:.0f} s warm-up per "
          f"contender, then {RUNS} rounds of {seconds:.0f} s each, the contenders taking "
          "turns; figures are medians", flush=True)
    if not has_uvloop():
        print("(uvloop is not installed: no figures for confcall on uvloop)", flush=True)
    async with fake_bandwidth() as fake:
        with tempfile.TemporaryDirectory() as folder:
            async with contenders(fake, Path(folder), server_pin) as urls:
                await _webhooks(urls, Path(folder), seconds, warm_up, load_pin)


async def _webhooks(urls: dict[str, str], folder: Path, seconds: float, warm_up: float,
                    pin: list[str]) -> None:
    read = voice_event("initiate", **{"from": INVITED, "to": LINE, "callId": "c-1"})
    write = inbound_text(STRANGER, "hello", line=LINE, message_id=UNIQUE)
    for key, label, path, body in (
        ("read", "initiate (read path)", "/callbacks/voice/initiate", read),
        ("write", "inbound text (write path)", "/callbacks/messaging", write),
    ):
        texts_before = stored_texts(folder / "asyncio")
        runs = await rounds(urls, path, body, seconds=seconds, warm_up=warm_up,
                            connections=100, pin=pin, label=label)
        peer_rps = statistics.median(r.rps for r in runs[BARE])
        peer_p99 = statistics.median(r.p99_ms for r in runs[BARE])
        for name, goal in ((ASYNCIO, GOALS[key][0]), (UVLOOP, GOALS[key][1])):
            if name not in runs:
                continue
            rps = statistics.median(r.rps for r in runs[name])
            p99 = statistics.median(r.p99_ms for r in runs[name])
            figure(f"{label} throughput, {name}", rps, "req/s", peer_rps,
                   f"{peer_rps:.1f} req/s ({BARE})", verdict(rps >= goal * peer_rps,
                                                            f">= {goal:.2f}"))
            figure(f"{label} p99 at 100 connections, {name}", p99, "ms", peer_p99,
                   f"{peer_p99:.1f} ms ({BARE})", verdict(p99 < 1.5 * peer_p99, "< 1.5"))
            errors = sum(r.errors for r in runs[name])
            if errors:
                print(f"  ({errors} errors from {name})", flush=True)
        if key == "write":  # each a new text, none a replay
            answered = sum(r.requests for r in runs[ASYNCIO])
            print(f"  texts stored by {ASYNCIO}: {stored_texts(folder / 'asyncio') - texts_before}"
                  f" for {answered} requests answered (and the warm-up)", flush=True)


LOW_LOAD_PAUSE_MS = 10  # each of the 10 connections: at most 100 requests a second


async def low_load(quick: bool) -> None:
    """initiate's p99 at 10 connections, each pausing LOW_LOAD_PAUSE_MS after an answer:
    at most 1,000 requests a second, well below what any contender can take, so that the
    figure is the latency a caller feels, not a queue's."""
    seconds = 2.0 if quick else 5.0
    server_pin, load_pin = pins()
    read = voice_event("initiate", **{"from": INVITED, "to": LINE, "callId": "c-1"})
    async with fake_bandwidth() as fake:
        with tempfile.TemporaryDirectory() as folder:
            async with contenders(fake, Path(folder), server_pin) as urls:
                runs = await rounds(urls, "/callbacks/voice/initiate", read, seconds=seconds,
                                    warm_up=1.0, connections=10, pin=load_pin,
                                    label="initiate at 10 connections",
                                    pause_ms=LOW_LOAD_PAUSE_MS)
    peer = statistics.median(r.p99_ms for r in runs[BARE])
    for name in (ASYNCIO, UVLOOP):
        if name in runs:
            p99 = statistics.median(r.p99_ms for r in runs[name])
            figure(f"initiate p99 at 10 connections pausing {LOW_LOAD_PAUSE_MS} ms, {name}", p99,
                   "ms", peer,
                   f"{peer:.2f} ms ({BARE})", verdict(p99 < 1.0, "< 1 ms"))


def stored_texts(workdir: Path) -> int:
    with sqlite3.connect(workdir / "confcall.db") as db:
        return int(db.execute("SELECT COUNT(*) FROM inbound").fetchone()[0])


async def _arrived(found: Callable[[], list[float]], count: int, limit: float = 5.0) -> float:
    """The latest of the first `count` arrival times `found` lists, once there are that many."""
    deadline = time.monotonic() + limit
    while len(found()) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(found())} of {count} requests reached the fake")
        await asyncio.sleep(0.001)
    return max(found()[:count])


async def reach(quick: bool) -> None:
    """From a webhook's 2xx until what it sends reached Bandwidth (the fake answering at
    once): a start text's 10 invitations; an end text's group message and completion. After
    one conference's worth that is not counted: the outbox's first requests open its
    connections to Bandwidth."""
    count = 5 if quick else 20
    async with fake_bandwidth() as fake:
        fake.validate = False  # its schema checks would delay the next request's arrival
        with tempfile.TemporaryDirectory() as folder:
            served = Served(Path(folder), fake, [ORGANIZER])
            await served.start()
            try:
                await _reach(served, fake, 1, "w")  # the first connections to Bandwidth
                starts, ends = await _reach(served, fake, count)
            finally:
                await served.stop()
    print(f"  start texts (ms): {', '.join(f'{t:.1f}' for t in starts)}", flush=True)
    print(f"  end texts (ms): {', '.join(f'{t:.1f}' for t in ends)}", flush=True)
    for label, took in (("start text: 10 invitations reached Bandwidth", starts),
                        ("end text: group message and completion reached Bandwidth", ends)):
        median, worst = statistics.median(took), max(took)
        figure(f"{label} after the 2xx (median of {count})", median, "ms", None,
               f"worst {worst:.1f} ms", verdict(worst < 5.0, "< 5 ms, the worst"))


async def _reach(served: Served, fake: Any, count: int,
                 run: str = "") -> tuple[list[float], list[float]]:
    starts: list[float] = []
    ends: list[float] = []
    numbers = [f"+1201555{n:04d}" for n in range(110, 120)]
    async with aiohttp.ClientSession() as session:
        async def deliver(path: str, body: Any) -> tuple[str, float]:
            async with session.post(served.url + path, json=body) as answer:
                text = await answer.text()
                assert answer.status < 300, (answer.status, text)
                return text, time.monotonic()

        for i in range(count):
            texts = len(fake.texts)
            _, answered = await deliver("/callbacks/messaging", inbound_text(
                ORGANIZER, " ".join(numbers), line=LINE, message_id=f"s-{run}{i}"))
            # 10 invitations, then the organizer's confirmation
            starts.append((await _arrived(lambda t=texts: fake.arrivals[t:], 10)
                           - answered) * 1000)
            await _arrived(lambda t=texts: fake.arrivals[t:], 11)
            bxml, _ = await deliver("/callbacks/voice/initiate", voice_event(
                "initiate", **{"from": numbers[0], "to": LINE, "callId": f"c-{run}{i}"}))
            name = bxml.split('tag="', 1)[1].split('"', 1)[0]
            base = {"conferenceId": f"conf-{run}{i}", "name": name, "tag": name}
            await deliver("/callbacks/voice/conference", voice_event("conferenceCreated", **base))
            texts, completed = len(fake.texts), len(fake.completed_at)
            _, answered = await deliver("/callbacks/messaging", inbound_text(
                ORGANIZER, f"thanks {i}", line=LINE, message_id=f"e-{run}{i}"))
            forwarded = await _arrived(lambda t=texts: fake.arrivals[t:], 1)
            done = await _arrived(lambda c=completed: fake.completed_at[c:], 1)
            ends.append((max(forwarded, done) - answered) * 1000)
            await deliver("/callbacks/voice/conference",
                          voice_event("conferenceCompleted", **base))
            await _arrived(lambda t=texts: fake.arrivals[t:], 2)  # the recap: it is over
    return starts, ends


async def fan_out_slow() -> None:
    async with fake_bandwidth() as fake:
        with tempfile.TemporaryDirectory() as folder:
            served = Served(Path(folder), fake, [ORGANIZER])
            await served.start()
            try:
                fake.fail("messages", 10_000, 200, delay=0.2)  # every answer takes +200 ms
                numbers = [f"+1201555{n:04d}" for n in range(110, 120)]
                async with aiohttp.ClientSession() as session:
                    status = await post(session, served.url + "/callbacks/messaging",
                                        inbound_text(ORGANIZER, " ".join(numbers), line=LINE))
                    answered = time.monotonic()
                    assert status == 200
                while sum(t["to"][0] in numbers for t in fake.texts) < 10:
                    await asyncio.sleep(0.005)
                last = max(at for t, at in zip(fake.texts, fake.arrivals, strict=True)
                           if t["to"][0] in numbers)
                # arrivals are stamped when the request reaches the fake, before its delay
                took = (last - answered) * 1000
                figure("fan-out while Bandwidth takes 200 ms: 10 invitations reached it", took,
                       "ms", None, "–", verdict(took < 1000, "< 1000 ms"))
            finally:
                await served.stop()


async def memory(quick: bool) -> None:
    async with fake_bandwidth() as fake:
        await _memory(fake, 10_000 if quick else 100_000)


async def _memory(fake: Any, total: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        # live mode against the fake: the sandbox would keep every simulated call in memory
        served = Served(Path(folder), fake, [ORGANIZER])
        await served.start()
        assert served.process is not None
        pid = served.process.pid
        samples: list[tuple[int, float]] = []
        try:
            sent = 0
            async with aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=50)) as session:
                await post(session, served.url + "/callbacks/messaging",
                           inbound_text(ORGANIZER, INVITED, line=LINE))
                initiate = json.dumps(voice_event("initiate", **{"from": INVITED, "to": LINE,
                                                                 "callId": "c-1"}))

                async def worker() -> None:
                    nonlocal sent
                    while sent < total:
                        sent += 1
                        number = sent
                        if number % 2:
                            body = json.dumps(inbound_text(STRANGER, "hello", line=LINE,
                                                           message_id=f"m-{number}"))
                            path = "/callbacks/messaging"
                        else:
                            body, path = initiate, "/callbacks/voice/initiate"
                        async with session.post(served.url + path, data=body, headers={
                                "Content-Type": "application/json"}) as answer:
                            await answer.read()
                        if number % (total // 10) == 0:
                            samples.append((number, rss_mb(pid)))

                await asyncio.gather(*(worker() for _ in range(50)))
            final = rss_mb(pid)
        finally:
            await served.stop()
    trail = ", ".join(f"{n // 1000}k: {mb:.0f}" for n, mb in samples)
    figure(f"serve RSS after {total:,} webhooks", final, "MB", 100.0, "goal < 100 MB")
    samples.sort()
    warm = samples[1][1] if len(samples) > 1 else final
    figure("serve RSS growth after warm-up (20% → 100%)", final - warm, "MB", None)
    print(f"  RSS along the way (MB): {trail}", flush=True)


async def database_size(quick: bool) -> None:
    count = 100 if quick else 1000
    async with fake_bandwidth() as fake:
        with tempfile.TemporaryDirectory() as folder:
            served = Served(Path(folder), fake, [ORGANIZER])
            await served.start()
            try:
                async with aiohttp.ClientSession() as session:
                    async def deliver(path: str, body: Any) -> str:
                        async with session.post(served.url + path, json=body) as answer:
                            return await answer.text()

                    for i in range(count):
                        numbers = [f"+1201555{n:04d}" for n in range(110, 120)]
                        await deliver("/callbacks/messaging", inbound_text(
                            ORGANIZER, " ".join(numbers), line=LINE, message_id=f"s-{i}"))
                        bxml = await deliver("/callbacks/voice/initiate", voice_event(
                            "initiate", **{"from": numbers[0], "to": LINE,
                                           "callId": f"c-{i}"}))
                        name = bxml.split('tag="', 1)[1].split('"', 1)[0]
                        base = {"conferenceId": f"conf-{i}", "name": name, "tag": name}
                        await deliver("/callbacks/voice/conference",
                                      voice_event("conferenceCreated", **base))
                        for k in range(3):
                            member = {**base, "callId": f"c-{i}-{k}", "from": numbers[k],
                                      "to": LINE, "eventTime": f"2026-01-01T00:00:0{k}.000Z"}
                            await deliver("/callbacks/voice/conference",
                                          voice_event("conferenceMemberJoin", **member))
                        await deliver("/callbacks/messaging", inbound_text(
                            ORGANIZER, f"thanks {i}", line=LINE, message_id=f"e-{i}"))
                        for k in range(3):
                            member = {**base, "callId": f"c-{i}-{k}", "from": numbers[k],
                                      "to": LINE, "eventTime": f"2026-01-01T00:09:0{k}.000Z"}
                            await deliver("/callbacks/voice/conference",
                                          voice_event("conferenceMemberExit", **member))
                        await deliver("/callbacks/voice/conference",
                                      voice_event("conferenceCompleted", **base))
                    while len(fake.texts) < count * 13:
                        await asyncio.sleep(0.05)
            finally:
                await served.terminate()
            path = Path(folder) / "confcall.db"
            with sqlite3.connect(path) as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            size = path.stat().st_size
    figure(f"database size per 1,000 conferences (measured over {count})",
           size / count * 1000 / 1024 / 1024, "MB", None)


async def counted(quick: bool) -> None:
    why_not = instructions.available()
    if why_not:
        print(f"instruction counts: skipped ({why_not})", flush=True)
        return
    requests = 1000 if quick else 3000
    loops = ("asyncio", "uvloop") if has_uvloop() else ("asyncio",)
    instructions.report(await instructions.measure(requests, 100, loops), requests, 100)


async def main(quick: bool, only_instructions: bool, store: str | None = None) -> None:
    began = time.monotonic()
    if not only_instructions:
        await webhooks(quick)
    await counted(quick)
    if not only_instructions:
        await replicas.write_path(quick, store)
        await low_load(quick)
        await reach(quick)
        await fan_out_slow()
        await memory(quick)
        await database_size(quick)
    print(f"(all figures in {time.monotonic() - began:.0f} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, a few minutes")
    parser.add_argument("--instructions", action="store_true",
                        help="only the instruction counts (callgrind)")
    parser.add_argument("--store", metavar="URL", help="the PostgreSQL database for the "
                        "replica figures (default: a throwaway server, if installed)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.quick, arguments.instructions, arguments.store))
