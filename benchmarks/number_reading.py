"""How long reading a start text takes on the worst bodies a text can carry: the median of N
runs of `read_numbers` (region US, the server's count limit) on each body just under the
64 KiB webhook limit, and the worst of them.

    python benchmarks/number_reading.py [--runs 5]

Goal: every body read in <= 50 ms (a start text is read on the server's event loop).
"""

from __future__ import annotations

# (Not numbers.py: in this folder, which comes first on a script's path, that name hid the
# standard library's `numbers` from every benchmark that imports `statistics`.)
import argparse
import os
import random
import statistics
import string
import time
from collections.abc import Callable

from confcall.conference import COUNT_LIMIT
from confcall.phone import read_numbers
from confcall.webhooks import MAX_BODY

GOAL_MS = 50.0


def fill(unit: str | Callable[[int], str]) -> str:
    """As many copies of `unit` (or of unit(0), unit(1), ...) as fit under the body limit."""
    pieces: list[str] = []
    size = 0
    while True:
        piece = unit if isinstance(unit, str) else unit(len(pieces))
        if size + len(piece) >= MAX_BODY:
            return "".join(pieces)
        pieces.append(piece)
        size += len(piece)


def bodies() -> dict[str, str]:
    junk = random.Random(0)
    distinct = fill(lambda i: f"201555{i:04d} ")
    return {
        '". " * 32000 + "x"': ". " * 32000 + "x",
        "5,000 copies of one number": "+12015550123 " * 5000,
        "4,000 copies of one number, written (201) 555-0123,": "(201) 555-0123, " * 4000,
        # 10 digits and a space each: 6,000 do not fit under 64 KiB
        f"{len(distinct.split()):,} distinct numbers": distinct,
        "distinct invalid numbers (+1 555 555 ...)": fill(lambda i: f"+1 555 555 {i:04d} "),
        "one 64 KiB word": fill("x"),
        "single digits, space-separated": fill("7 "),
        "groups of 3 digits, no number's length": fill("123 "),
        "digits with every separator": fill("1-2.3/4(5)6 7,8;9\n0\t1 and 2+3&4:5 "),
        '"and and and ..."': fill("and "),
        "one word a part (a,a,a,...)": fill("a,"),
        "random printable junk with digits": fill(lambda _: junk.choice(string.printable)),
    }


def median_ms(text: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        read_numbers(text, "US", limit=COUNT_LIMIT)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    read_numbers("+12015550123 (201) 555-0124 +44 20 7946 0123", "US")  # load the metadata
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (timings are wall time)")
    worst = 0.0
    for name, text in bodies().items():
        took = median_ms(text, args.runs)
        worst = max(worst, took)
        print(f"{name} ({len(text):,} chars): {took:.1f} ms | goal ≤ {GOAL_MS:.0f} ms")
    verdict = "meets" if worst <= GOAL_MS else "misses"
    print(f"worst: {worst:.1f} ms | goal ≤ {GOAL_MS:.0f} ms ({verdict} the goal)")


if __name__ == "__main__":
    main()
