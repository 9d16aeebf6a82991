"""What an operator copies from deploy/: the systemd unit passes `systemd-analyze verify` and
rates well in `systemd-analyze security`, and the environment template names every setting."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

import pytest
from conftest import LINE, ORGANIZER

from confcall.config import KEYS, load_config

DEPLOY = Path(__file__).parent.parent / "deploy"
UNIT = DEPLOY / "confcall.service"
ENV_TEMPLATE = DEPLOY / "confcall.env"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
# What the unit tells systemd to run, where the README's system-wide pipx install puts it.
INSTALLED_BINARY = "/usr/local/bin/confcall"


def _missing(what: str) -> NoReturn:
    """Skip for want of `what`, except in CI, which installs it: there a skip would hide a
    missing install step behind a green run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what}: .ci/run must install it")
    pytest.skip(what)


# --- the environment template -------------------------------------------------------------

def _template() -> list[tuple[str, str, bool, list[str]]]:
    """(name, value, commented out, the comment block above it) for each variable line;
    consecutive variable lines share the comment block above the first."""
    found: list[tuple[str, str, bool, list[str]]] = []
    block: list[str] = []
    previous_was_variable = False
    for line in ENV_TEMPLATE.read_text().splitlines():
        match = re.fullmatch(r"(#?)([A-Z][A-Z0-9_]*)=(.*)", line)
        if match:
            found.append((match[2], match[3], bool(match[1]), block))
        elif line.startswith("#"):
            block = [line] if previous_was_variable else [*block, line]
        else:
            block = []
        previous_was_variable = bool(match)
    return found


def test_the_env_template_names_every_key_and_marks_the_secrets() -> None:
    lines = {name: (value, comments) for name, value, _, comments in _template()}
    for key in KEYS:
        name = key.env_names[0]
        assert name in lines, f"deploy/confcall.env has no line for {name} ({key.name})"
        value, comments = lines[name]
        assert comments, f"{name} has no comment saying what it is"
        marked = any("(secret)" in comment for comment in comments)
        assert marked == (key.kind == "secret"), f"{name}: (secret) mark is wrong"
        assert not (key.kind == "secret" and value), f"{name}: a secret with a value in it"
    known = {key.env_names[0] for key in KEYS}
    assert set(lines) <= known, f"variables confcall does not read: {set(lines) - known}"


def test_the_env_template_values_load_and_the_commented_ones_are_the_defaults() -> None:
    template = _template()
    config = load_config(None, {name: value for name, value, _, _ in template if value})
    assert config.sandbox  # no credentials in the template: it starts in the sandbox
    assert config.server.public_url == "https://confcall.example.com"
    assert str(config.store_path) == "/var/lib/confcall/confcall.db"
    # live mode, where every setting counts (the sandbox replaces the API addresses)
    live = {"CONFCALL_BANDWIDTH_ACCOUNT_ID": "9900000", "CONFCALL_BANDWIDTH_USERNAME": "u",
            "CONFCALL_BANDWIDTH_PASSWORD": "p", "CONFCALL_BANDWIDTH_PHONE_NUMBER": LINE,
            "CONFCALL_ORGANIZERS_NUMBERS": ORGANIZER}
    defaults = load_config(None, live)
    shown = [(name, value) for name, value, commented, _ in template if commented and value]
    assert shown
    for name, value in shown:
        assert load_config(None, {**live, name: value}) == defaults, f"{name}={value}"


# --- the systemd unit -------------------------------------------------------------------

def _unit_for_this_machine(tmp_path: Path) -> Path:
    """The unit with ExecStart at this environment's confcall: `verify` checks it exists."""
    text = UNIT.read_text()
    assert f"ExecStart={INSTALLED_BINARY} serve" in text
    here = Path(sys.executable).parent / "confcall"
    assert here.is_file(), "confcall is not installed in this environment"
    copy = tmp_path / "confcall.service"
    copy.write_text(text.replace(f"ExecStart={INSTALLED_BINARY}", f"ExecStart={here}"))
    return copy


def test_systemd_analyze_verify_passes_clean(tmp_path: Path) -> None:
    if SYSTEMD_ANALYZE is None:
        _missing("systemd-analyze is not installed (apt-get install systemd)")
    result = subprocess.run([SYSTEMD_ANALYZE, "verify", str(_unit_for_this_machine(tmp_path))],
                            capture_output=True, text=True, timeout=30)
    # verify exits 0 on unknown keys and misplaced options, only warning about them
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    text = UNIT.read_text()
    for needed in ("DynamicUser=yes", "StateDirectory=confcall", "Restart=on-failure",
                   "EnvironmentFile=/etc/confcall/confcall.env",
                   "Environment=CONFCALL_STORE_PATH=/var/lib/confcall/confcall.db"):
        assert re.search(rf"^{re.escape(needed)}$", text, re.M), needed


def test_systemd_analyze_security_rates_the_unit_ok(tmp_path: Path) -> None:
    if SYSTEMD_ANALYZE is None:
        _missing("systemd-analyze is not installed (apt-get install systemd)")
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=true", str(_unit_for_this_machine(tmp_path))],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    match = re.search(r"Overall exposure level for confcall\.service: ([\d.]+) (\w+)",
                      result.stdout)
    assert match, result.stdout
    # systemd calls up to 2.9 "OK"; the network it must reach keeps it from 0
    assert float(match[1]) <= 2.0, result.stdout
    assert match[2] == "OK"
