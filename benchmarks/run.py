"""Every benchmark figure, one line each: `name: value unit | peer: value | ratio`.

    python benchmarks/run.py            # the full run (several minutes)
    python benchmarks/run.py --quick    # under a minute

- webhook throughput and p99 latency at 100 connections, for an `initiate` from an invited
  number (the read path: BXML) and for inbound texts with unique ids (the write path: each
  stored and committed before its answer), against `confcall serve` and, with the same
  load generator, a bare aiohttp app answering fixed BXML. After a warm-up, the two
  servers take turns, and each figure is the median of its runs: the machine may be
  shared, and one run alone can be off by a fifth. Goals: throughput >= 0.7x the bare
  app, p99 < 20 ms.
- fan-out: a start text with 10 numbers while the fake Bandwidth takes 200 ms to answer
  each request: from the start text's 2xx until all 10 invitations reached it. Goal < 1 s.
- memory: RSS of `confcall serve` after 100,000 webhooks (quick: 10,000), sampled on the
  way to show whether it stays flat; and the database size per 1,000 conferences.
  Goal: RSS < 100 MB and flat after warm-up.
- the write path on PostgreSQL, with one replica and with two sharing the load, next to
  SQLite's (benchmarks/replicas.py; --store URL, else a throwaway PostgreSQL server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
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


def figure(name: str, value: float, unit: str, peer: float | None, peer_text: str = "") -> None:
    ratio = f"{value / peer:.2f}" if peer else "–"
    shown_peer = peer_text or (f"{peer:.1f} {unit}" if peer is not None else "–")
    print(f"{name}: {value:.1f} {unit} | peer: {shown_peer} | ratio {ratio}", flush=True)


def rss_mb(pid: int) -> float:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    return 0.0


async def post(session: aiohttp.ClientSession, url: str, body: Any) -> int:
    async with session.post(url, json=body) as answer:
        await answer.read()
        return answer.status


async def webhooks(quick: bool) -> None:
    seconds, warm_up = (2.0, 1.0) if quick else (10.0, 3.0)
    print(f"load generator: {tool()}, 100 connections; for each path and server a "
          f"{warm_up:.0f} s warm-up, then the median of {RUNS} runs of {seconds:.0f} s, "
          "confcall's and the bare app's taking turns", flush=True)
    async with fake_bandwidth() as fake:
        with tempfile.TemporaryDirectory() as folder:
            await _webhooks(Served(Path(folder), fake, [ORGANIZER]), seconds, warm_up)


async def _webhooks(served: Served, seconds: float, warm_up: float) -> None:
    await served.start()
    try:
        async with aiohttp.ClientSession() as session:
            await post(session, served.url + "/callbacks/messaging",
                       inbound_text(ORGANIZER, INVITED, line=LINE))
        read = voice_event("initiate", **{"from": INVITED, "to": LINE, "callId": "c-1"})
        write = inbound_text(STRANGER, "hello", line=LINE, message_id=UNIQUE)
        async with BareApp(unused_port()) as bare:
            for label, path, body in (
                ("initiate (read path)", "/callbacks/voice/initiate", read),
                ("inbound text (write path)", "/callbacks/messaging", write),
            ):
                targets = (served.url + path, bare.url + path)
                texts_before = stored_texts(served)
                runs: tuple[list[LoadResult], list[LoadResult]] = ([], [])
                for url, results in zip(targets, runs, strict=True):
                    # a server's first seconds are not its steady state
                    results.append(await run_load(url, body, seconds=warm_up))
                for _ in range(RUNS):
                    for url, results in zip(targets, runs, strict=True):
                        results.append(await run_load(url, body, seconds=seconds))
                answered = sum(r.requests for r in runs[0])
                ours, peer = runs[0][1:], runs[1][1:]
                rps = statistics.median(r.rps for r in ours)
                p99 = statistics.median(r.p99_ms for r in ours)
                figure(f"{label} throughput", rps, "req/s",
                       statistics.median(r.rps for r in peer))
                figure(f"{label} p99 latency", p99, "ms",
                       statistics.median(r.p99_ms for r in peer))
                print(f"  runs (req/s, p99 ms): confcall "
                      f"{', '.join(f'{r.rps:.0f}/{r.p99_ms:.1f}' for r in ours)}; bare "
                      f"{', '.join(f'{r.rps:.0f}/{r.p99_ms:.1f}' for r in peer)}", flush=True)
                if path == "/callbacks/messaging":  # each a new text, none a replay
                    print(f"  texts stored: {stored_texts(served) - texts_before} for "
                          f"{answered} requests answered", flush=True)
                errors = sum(r.errors for r in ours)
                if errors:
                    print(f"  ({errors} errors from confcall)", flush=True)
    finally:
        await served.stop()


def stored_texts(served: Served) -> int:
    with sqlite3.connect(served.workdir / "confcall.db") as db:
        return int(db.execute("SELECT COUNT(*) FROM inbound").fetchone()[0])


async def fan_out() -> None:
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
                figure("fan-out: 10 invitations reached Bandwidth", (last - answered) * 1000,
                       "ms", 1000.0, "goal < 1000 ms")
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


async def main(quick: bool, store: str | None = None) -> None:
    began = time.monotonic()
    await webhooks(quick)
    await replicas.write_path(quick, store)
    await fan_out()
    await memory(quick)
    await database_size(quick)
    print(f"(all figures in {time.monotonic() - began:.0f} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, under a minute")
    parser.add_argument("--store", metavar="URL", help="the PostgreSQL database for the "
                        "replica figures (default: a throwaway server, if installed)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.quick, arguments.store))
