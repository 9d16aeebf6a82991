"""Crash safety over a long run: full flows against `confcall serve` while it is SIGKILLed at
random moments and restarted, callbacks re-delivered until answered, as Bandwidth does.

    python benchmarks/chaos.py --kills 200

Prints: kills, flows, texts expected, delivered, lost, duplicates (all from the window
between Bandwidth accepting a text and confcall recording that), and duplicates from
replayed callbacks (which must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from _harness import chaos, fake_bandwidth


async def main(kills: int, flows: int, seed: int) -> int:
    async with fake_bandwidth() as fake:
        with tempfile.TemporaryDirectory() as folder:
            report = await chaos.run(fake, Path(folder), kills=kills, flows=flows, seed=seed)
    print(report.line())
    for missing in report.missing[:20]:
        print("  lost:", missing)
    return 0 if report.lost == 0 and report.replay_duplicates == 0 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--flows", type=int, default=3, help="at least this many flows")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.kills, args.flows, args.seed)))
