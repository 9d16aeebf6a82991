"""The write path on each store, with the same load generator in the same run: inbound texts
with unique ids (each stored and committed before its answer) against `confcall serve` on
SQLite, on PostgreSQL, and on PostgreSQL with two replicas sharing the load (half the
connections each, as a load balancer would spread them).

    python benchmarks/run.py --quick                        # a throwaway PostgreSQL server
    python benchmarks/run.py --store postgresql://…/confcall_bench

Without --store it starts a throwaway PostgreSQL server (initdb, PostgreSQL's default
durability: fsync and synchronous_commit on) when PostgreSQL is installed, else says why
it skips these figures."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from _harness import Served, fake_bandwidth
from conftest import inbound_text
from load import UNIQUE, LoadResult, run_load

LINE = "+12015550100"
ORGANIZER = "+12015550101"
STRANGER = "+12015550199"
CONNECTIONS = 100
RUNS = 3


@asynccontextmanager
async def database(url: str | None) -> AsyncIterator[str | None]:
    """`url`, or a new database on a throwaway server; None (having said why) when there is
    no PostgreSQL to run."""
    if url is not None:
        yield url
        return
    from postgres_cluster import Cluster, Unavailable

    cluster: Cluster | None = None
    try:
        cluster = Cluster(durable=True)
        await asyncio.to_thread(cluster.start)
    except Unavailable as exc:
        if cluster is not None:
            cluster.stop()
        print(f"PostgreSQL figures skipped: {exc}", flush=True)
        yield None
        return
    try:
        yield await asyncio.to_thread(cluster.database)
    finally:
        await asyncio.to_thread(cluster.stop)


async def _load(servers: list[Served], seconds: float) -> LoadResult:
    """CONNECTIONS connections spread evenly over `servers`, for `seconds`."""
    body = inbound_text(STRANGER, "hello", line=LINE, message_id=UNIQUE)
    share = CONNECTIONS // len(servers)
    results = await asyncio.gather(*(
        run_load(s.url + "/callbacks/messaging", body, connections=share, seconds=seconds)
        for s in servers))
    return LoadResult(results[0].tool, sum(r.requests for r in results),
                      max(r.seconds for r in results), max(r.p99_ms for r in results),
                      sum(r.errors for r in results))


async def _measure(servers: list[Served], seconds: float, warm_up: float) -> list[LoadResult]:
    await asyncio.gather(*(s.start() for s in servers))
    try:
        await _load(servers, warm_up)  # a server's first seconds are not its steady state
        return [await _load(servers, seconds) for _ in range(RUNS)]
    finally:
        for s in servers:
            await s.terminate()


async def write_path(quick: bool, url: str | None) -> None:
    seconds, warm_up = (2.0, 1.0) if quick else (10.0, 3.0)
    async with database(url) as store_url:
        if store_url is None:
            return
        print(f"write path on each store: {CONNECTIONS} connections, a {warm_up:.0f} s warm-up"
              f", then the median of {RUNS} runs of {seconds:.0f} s", flush=True)
        async with fake_bandwidth() as fake:
            with tempfile.TemporaryDirectory() as folder:
                work = Path(folder)
                runs = {
                    "SQLite": await _measure([Served(work, fake, [ORGANIZER])], seconds,
                                             warm_up),
                    "PostgreSQL, 1 replica": await _measure(
                        [Served(work, fake, [ORGANIZER], store_url=store_url)], seconds,
                        warm_up),
                    "PostgreSQL, 2 replicas": await _measure(
                        [Served(work, fake, [ORGANIZER], store_url=store_url,
                                name=f"replica-{i}") for i in range(2)], seconds, warm_up),
                }
        sqlite = statistics.median(r.rps for r in runs["SQLite"])
        for label, results in runs.items():
            rps = statistics.median(r.rps for r in results)
            p99 = statistics.median(r.p99_ms for r in results)
            ratio = "–" if label == "SQLite" else f"{rps / sqlite:.2f}"
            print(f"inbound text (write path) throughput, {label}: {rps:.1f} req/s | peer: "
                  f"SQLite {sqlite:.1f} req/s | ratio {ratio}", flush=True)
            print(f"inbound text (write path) p99 latency, {label}: {p99:.1f} ms | peer: – | "
                  "ratio –", flush=True)
            errors = sum(r.errors for r in results)
            if errors:
                print(f"  ({errors} errors)", flush=True)
