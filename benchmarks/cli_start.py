"""How fast the CLI starts: median wall time of `confcall --help` and `confcall status --json`
over N runs each, next to `python -c "import typer"` measured in the same run.

    python benchmarks/cli_start.py [--runs 20]

Goal: ratio <= 1.5 (a command that does not serve must not pay for aiohttp).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def median_seconds(command: list[str], runs: int, cwd: Path) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    from confcall.store import Store

    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        Store.open(cwd / "confcall.db").close()  # status reads ./confcall.db
        python = sys.executable
        import confcall

        editable = "site-packages" not in (confcall.__file__ or "")
        print(f"confcall installed {'editable (import hooks add time)' if editable else 'regular'}"
              f" at {Path(confcall.__file__ or '').parent}")
        baseline = median_seconds([python, "-c", "import typer"], args.runs, cwd)
        print(f"python -c 'import typer': {baseline * 1000:.0f} ms (median of {args.runs})")
        for label, command in (("confcall --help", ["--help"]),
                               ("confcall status --json", ["status", "--json"])):
            took = median_seconds([python, "-m", "confcall", *command], args.runs, cwd)
            ratio = took / baseline
            verdict = "meets" if ratio <= 1.5 else "misses"
            print(f"{label}: {took * 1000:.0f} ms | peer: {baseline * 1000:.0f} ms | "
                  f"ratio {ratio:.2f} ({verdict} the goal of 1.5)")


if __name__ == "__main__":
    main()
