"""benchmarks/faults.py's command line: it explains itself and refuses a case it lacks.
(Its figures are printed by running it, never asserted by a timed test.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "faults.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True,
                          text=True, timeout=60)


def test_help_names_the_cases_option() -> None:
    shown = run("--help")
    assert shown.returncode == 0, shown.stderr
    assert "--case" in shown.stdout and "Traceback" not in shown.stderr


def test_a_case_it_does_not_have_is_refused_in_one_line() -> None:
    refused = run("--case", "9")
    assert refused.returncode == 2
    assert "invalid choice: 9" in refused.stderr and "Traceback" not in refused.stderr
