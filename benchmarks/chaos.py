"""Crash safety over a long run: full flows against `confcall serve` while it is SIGKILLed at
random moments and restarted, callbacks re-delivered until answered, as Bandwidth does.

    python benchmarks/chaos.py --kills 200
    python benchmarks/chaos.py --kills 200 --store postgresql://…/confcall_chaos --replicas 2

Prints: kills, flows, texts expected, delivered, lost, duplicates (all from the window
between Bandwidth accepting a text and confcall recording that), and duplicates from
replayed callbacks (which must be 0). With --replicas, several servers share a PostgreSQL
database (--store, an empty one; else a throwaway server) and each kill takes one of them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections import Counter
from pathlib import Path

from _harness import FakeBandwidth, chaos, fake_bandwidth
from replicas import database


async def main(kills: int, flows: int, seed: int, store: str | None = None,
               replicas: int = 1, lease: int = 3) -> int:
    if replicas > 1 or store is not None:
        async with database(store) as url:
            if url is None:
                return 1
            return await _run(kills, flows, seed, url, replicas,
                              CONFCALL_OUTBOX_LEASE_SECONDS=str(lease))
    return await _run(kills, flows, seed)


async def _run(kills: int, flows: int, seed: int, store: str | None = None,
               replicas: int = 1, **settings: str) -> int:
    async with fake_bandwidth() as fake:
        with tempfile.TemporaryDirectory() as folder:
            report = await chaos.run(fake, Path(folder), kills=kills, flows=flows, seed=seed,
                                     store_url=store, replicas=replicas, **settings)
            unmarked = _unmarked(fake, store) if store is not None else 0
    print(report.line())
    if store is not None:
        print(f"duplicates of rows not marked doubtful: {unmarked}")
    for missing in report.missing[:20]:
        print("  lost:", missing)
    return 0 if report.lost == 0 and report.replay_duplicates == 0 and not unmarked else 1


def _unmarked(fake: FakeBandwidth, url: str) -> int:
    """Copies beyond the first of texts whose outbox row does not say it may have gone out
    twice: a duplicate outside the documented window."""
    from confcall.store.postgres_reads import PostgresReads

    reads = PostgresReads.open(url)
    try:
        doubtful = {row.id for row in reads.outbox() if row.doubtful}
    finally:
        reads.close()
    copies = Counter(int(t["tag"]) for t in fake.texts)
    return sum(n - 1 for row, n in copies.items() if n > 1 and row not in doubtful)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--flows", type=int, default=3, help="at least this many flows")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store", metavar="URL", help="a PostgreSQL database (postgresql://…)"
                        " the servers share; with --replicas and no --store, a throwaway one")
    parser.add_argument("--replicas", type=int, default=1,
                        help="servers on the one database; each kill takes one at random")
    parser.add_argument("--lease", type=int, default=3, help="outbox.lease_seconds: how long "
                        "a killed replica's rows wait for another (PostgreSQL)")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.kills, args.flows, args.seed, args.store, args.replicas,
                              args.lease)))
