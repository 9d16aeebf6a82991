"""Crash and fault safety of `confcall serve` over a long run of full conference flows.

The server is SIGKILLed at random moments and started again, its disk fills up, another
process holds its database's lock, and Bandwidth answers slowly, hangs or redirects; every
callback is delivered again until answered, as Bandwidth does.

    python benchmarks/chaos.py --kills 50 --faults kill,disk-full,lock,slow,hang,redirect
    python benchmarks/chaos.py --kills 200 --store postgresql://…/confcall_chaos --replicas 2

Prints: kills, flows, texts expected, delivered, lost, and the duplicates split by cause:
copies of an outbox row marked doubtful (the documented window between Bandwidth accepting
a text and confcall recording that), unexplained copies (a row not marked doubtful) and
copies from replayed callbacks (different tags); then how often each fault was applied.
Exits 1 when a text was lost, a flow or a text never finished, or a duplicate is
unexplained or from a replay. `disk-full` needs root (it mounts a tmpfs); without it, it is
skipped. With --replicas, several servers share a PostgreSQL database (--store, an empty
one; else a throwaway server) and each kill takes one of them; `disk-full` and `lock`,
faults of SQLite's file, are skipped there.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from _harness import chaos, fake_bandwidth
from replicas import database


async def main(kills: int, flows: int, seed: int, faults: tuple[str, ...], seconds: float,
               store: str | None = None, replicas: int = 1, lease: int = 3) -> int:
    if replicas > 1 or store is not None:
        async with database(store) as url:
            if url is None:
                return 1
            return await _run(kills, flows, seed, faults, seconds, url, replicas,
                              CONFCALL_OUTBOX_LEASE_SECONDS=str(lease))
    return await _run(kills, flows, seed, faults, seconds)


async def _run(kills: int, flows: int, seed: int, faults: tuple[str, ...], seconds: float,
               store: str | None = None, replicas: int = 1, **settings: str) -> int:
    async with fake_bandwidth() as fake:
        with tempfile.TemporaryDirectory() as folder:
            report = await chaos.run(fake, Path(folder), kills=kills, flows=flows, seed=seed,
                                     faults=faults, seconds=seconds, store_url=store,
                                     replicas=replicas, **settings)
    for mode, why in report.skipped.items():
        print(f"skipped {mode}: {why}")
    print(report.line())
    print(report.fault_line())
    for missing in report.missing[:20]:
        print("  lost:", missing)
    for row in report.unexplained_rows[:20]:
        print("  unexplained:", row)
    for flow in report.stuck[:20]:
        print("  never finished:", flow)
    return 0 if report.ok else 1


def faults_option(text: str) -> tuple[str, ...]:
    try:
        return chaos.parse_faults(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100,
                        help="SIGKILLs to deliver (with `kill` in --faults)")
    parser.add_argument("--flows", type=int, default=3, help="at least this many flows")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--faults", type=faults_option, default=("kill",),
                        help=f"a comma list of {', '.join(chaos.FAULTS)} (default: kill)")
    parser.add_argument("--seconds", type=float, default=0.0,
                        help="apply faults for at least this long (needed without kill)")
    parser.add_argument("--store", metavar="URL", help="a PostgreSQL database (postgresql://…)"
                        " the servers share; with --replicas and no --store, a throwaway one")
    parser.add_argument("--replicas", type=int, default=1,
                        help="servers on the one database; each kill takes one at random")
    parser.add_argument("--lease", type=int, default=3, help="outbox.lease_seconds: how long "
                        "a killed replica's rows wait for another (PostgreSQL)")
    args = parser.parse_args()
    if "kill" not in args.faults and args.seconds <= 0:
        parser.error("without kill in --faults, say how long to apply them: --seconds S")
    sys.exit(asyncio.run(main(args.kills, args.flows, args.seed, args.faults, args.seconds,
                              args.store, args.replicas, args.lease)))
