"""How fast the CLI starts: wall time of `confcall --help` and `confcall status --json`
next to `python -c "import typer"`, the three taking turns.

    python benchmarks/cli_start.py [--runs 20]

Each command runs a few times first (to warm the file cache), then the three run one after
the other, in a rotating order, `--runs` times: a slow moment of the machine then falls on
all of them alike. Each figure is the median, with the ratio to the baseline's median.
Goal: ratio <= 1.5 (a command that does not serve must not pay for aiohttp).
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WARM_UP = 3
BASELINE = "python -c 'import typer'"


# the commands run as an installed package does: reading compiled bytecode, which pip
# writes at install time (with PYTHONDONTWRITEBYTECODE set, a source checkout would be
# compiled afresh at every start, which no installed confcall is)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def seconds(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    from confcall.store.sqlite import SqliteStore

    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        SqliteStore.open(cwd / "confcall.db").close()  # status reads ./confcall.db
        python = sys.executable
        import confcall

        editable = "site-packages" not in (confcall.__file__ or "")
        package = Path(confcall.__file__ or "").parent
        print(f"confcall installed {'editable (import hooks add time)' if editable else 'regular'}"
              f" at {package}; its modules compiled to bytecode first, as pip does")
        compileall.compile_dir(package, quiet=1)
        # the command a person types: the script pip installed beside this python
        script = shutil.which("confcall", path=str(Path(python).parent))
        confcall_command = [script] if script else [python, "-m", "confcall"]
        commands = {
            BASELINE: [python, "-c", "import typer"],
            "confcall --help": [*confcall_command, "--help"],
            "confcall status --json": [*confcall_command, "status", "--json"],
        }
        for command in commands.values():
            for _ in range(WARM_UP):
                seconds(command, cwd)
        times: dict[str, list[float]] = {label: [] for label in commands}
        labels = list(commands)
        for run in range(args.runs):
            for label in labels[run % 3:] + labels[:run % 3]:
                times[label].append(seconds(commands[label], cwd))
    baseline = statistics.median(times[BASELINE])
    print(f"{BASELINE}: {baseline * 1000:.0f} ms (median of {args.runs}, after {WARM_UP} "
          f"warm-up runs; the three commands taking turns)")
    for label in labels[1:]:
        took = statistics.median(times[label])
        ratio = took / baseline
        verdict = "meets" if ratio <= 1.5 else "misses"
        print(f"{label}: {took * 1000:.0f} ms | peer: {baseline * 1000:.0f} ms | "
              f"ratio {ratio:.2f} ({verdict} the goal of 1.5)")
    for label in labels:
        print(f"  {label} (ms): {', '.join(f'{t * 1000:.0f}' for t in times[label])}")


if __name__ == "__main__":
    main()
