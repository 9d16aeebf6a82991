"""What an operator copies from deploy/: the systemd unit passes `systemd-analyze verify` and
rates well in `systemd-analyze security`, the environment template names every setting, and
a whole sandbox flow runs through the Caddy site file over HTTPS."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NoReturn

import aiohttp
import pytest
from aiohttp.test_utils import unused_port
from conftest import LINE, ORGANIZER, inbound_text, voice_event
from served import Served

from confcall.auth import basic_auth
from confcall.config import KEYS, load_config
from confcall.store.sqlite_reads import SqliteReads

DEPLOY = Path(__file__).parent.parent / "deploy"
UNIT = DEPLOY / "confcall.service"
CADDYFILE = DEPLOY / "Caddyfile"
ENV_TEMPLATE = DEPLOY / "confcall.env"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
CADDY = shutil.which("caddy")
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


# --- Caddy in front of confcall serve ----------------------------------------------------

class Caddy:
    """Debian's caddy running deploy/Caddyfile, with the site at https://localhost:PORT on
    Caddy's own certificate authority (`tls internal`), proxying to `upstream`. Everything
    it writes stays in `workdir`."""

    def __init__(self, workdir: Path, upstream: int) -> None:
        self.workdir = workdir
        self.port = unused_port()
        self.url = f"https://localhost:{self.port}"
        self.access_log = workdir / "access.log"
        self.root_cert = (workdir / "data" / "caddy" / "pki" / "authorities" / "local"
                          / "root.crt")
        site = CADDYFILE.read_text()
        for old, new in (
            ("confcall.example.com {", f"{self.url} {{\n\ttls internal"),
            ("reverse_proxy 127.0.0.1:8080", f"reverse_proxy 127.0.0.1:{upstream}"),
            ("output file /var/log/caddy/confcall.log", f"output file {self.access_log}"),
        ):
            assert site.count(old) == 1, f"deploy/Caddyfile no longer has {old!r}"
            site = site.replace(old, new)
        config = workdir / "Caddyfile"
        config.write_text(
            "{\n\tadmin off\n\tskip_install_trust\n"
            f"\thttp_port {unused_port()}\n\thttps_port {self.port}\n}}\n\n{site}")
        self.command = [CADDY or "caddy", "run", "--config", str(config),
                        "--adapter", "caddyfile"]
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "HOME": str(workdir), "XDG_DATA_HOME": str(workdir / "data"),
                    "XDG_CONFIG_HOME": str(workdir / "config")}
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, timeout: float = 15.0) -> None:
        log = (self.workdir / "caddy.log").open("ab")
        self.process = await asyncio.create_subprocess_exec(
            *self.command, cwd=self.workdir, env=self.env,
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.process.returncode is not None:
                raise RuntimeError("caddy exited: "
                                   + (self.workdir / "caddy.log").read_text()[-2000:])
            if self.root_cert.exists():
                try:
                    _reader, writer = await asyncio.open_connection(
                        "localhost", self.port, ssl=self.ssl())
                    writer.close()
                    await writer.wait_closed()
                    return
                except (OSError, ssl.SSLError):
                    pass
            if time.monotonic() > deadline:
                raise TimeoutError("caddy did not start: "
                                   + (self.workdir / "caddy.log").read_text()[-2000:])
            await asyncio.sleep(0.05)

    def ssl(self) -> ssl.SSLContext:
        """Trusts Caddy's own root certificate, and nothing else."""
        return ssl.create_default_context(cafile=str(self.root_cert))

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    def requests(self) -> list[dict[str, Any]]:
        """The access log: one JSON object per request Caddy handled."""
        if not self.access_log.exists():
            return []
        return [json.loads(line) for line in self.access_log.read_text().splitlines()
                if line.strip()]


@pytest.fixture
async def proxied(tmp_path: Path) -> AsyncIterator[tuple[Caddy, Served]]:
    if CADDY is None:
        _missing("caddy is not installed (apt-get install caddy)")
    served = Served(tmp_path, None, [ORGANIZER],
                    CONFCALL_SERVER_CALLBACK_USERNAME="bandwidth",
                    CONFCALL_SERVER_CALLBACK_PASSWORD=secrets.token_hex(16))
    caddy = Caddy(tmp_path, served.port)
    served.env.update({
        "CONFCALL_SERVER_PUBLIC_URL": caddy.url,
        # the sandbox's callbacks go to the public URL, through Caddy, as Bandwidth's would
        "SSL_CERT_FILE": str(caddy.root_cert),
    })
    try:
        await caddy.start()  # first: confcall trusts the CA Caddy makes when it starts
        await served.start()
        yield caddy, served
    finally:
        await served.stop()
        await caddy.stop()


async def _poll(fetch: Any, done: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in time; last seen: {value!r}")
        await asyncio.sleep(0.05)


async def test_a_whole_sandbox_flow_through_caddy_over_https(
        proxied: tuple[Caddy, Served]) -> None:
    caddy, served = proxied
    password = served.env["CONFCALL_SERVER_CALLBACK_PASSWORD"]
    auth = {"Authorization": basic_auth("bandwidth", password)}
    a, b = "+12015550123", "+12015550124"
    closing = "Thanks all, notes to follow"
    connector = aiohttp.TCPConnector(ssl=caddy.ssl())
    async with aiohttp.ClientSession(base_url=caddy.url, connector=connector) as session:

        async def post(path: str, body: Any, status: int) -> str:
            async with session.post(path, json=body, headers=auth) as answer:
                text = await answer.text()
                assert answer.status == status, text
                return text

        async def sent() -> list[dict[str, Any]]:
            async with session.get("/sandbox/messages", headers=auth) as answer:
                assert answer.status == 200
                return list(await answer.json())

        async with session.get("/sandbox/messages") as answer:
            assert answer.status == 401  # every text and number: not for strangers
        async with session.get("/healthz") as answer:
            assert answer.status == 200
            # through the proxy, a stranger learns only what a load balancer needs
            assert await answer.json() == {"status": "ok"}
            assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
        async with session.get("/healthz", headers=auth) as answer:
            assert (await answer.json())["mode"] == "sandbox"
        await post("/callbacks/messaging", inbound_text(ORGANIZER, f"{a}, {b}"), 200)
        await _poll(sent, lambda messages: len(messages) == 3)  # two invitations, a confirmation

        bxml = await post("/callbacks/voice/initiate", voice_event(
            "initiate", **{"from": a, "to": LINE, "callId": "c-proxied-1"}), 200)
        assert f'conferenceEventUrl="{caddy.url}/callbacks/voice/conference"' in bxml

        async def joined() -> Any:
            store = SqliteReads.open(Path(served.env["CONFCALL_STORE_PATH"]))
            try:
                return store.active_conference(ORGANIZER)
            finally:
                store.close()
        # the sandbox's member-join callback went to Caddy's URL and through to confcall
        await _poll(joined, lambda conference: conference is not None and conference.members)

        # The body limit. A declared length over it: Caddy refuses, confcall never sees it.
        serve_log = served.workdir / "serve.log"
        big = b"x" * 100_000
        async with session.post("/callbacks/messaging", data=big, headers={
                **auth, "Content-Type": "application/json"}) as refused:
            assert refused.status == 413
            assert refused.content_type != "application/json", "confcall answered, not Caddy"
        # confcall logs requests in the order it gets them: once this one's 401 is in its
        # log, so would anything it made of the one above be
        async with session.post("/callbacks/messaging", json=inbound_text(ORGANIZER, a)) as no:
            assert no.status == 401  # the callback credentials are checked behind the proxy
        async def log() -> str:
            return serve_log.read_text()
        await _poll(log, lambda text: "401 missing or wrong" in text)
        problems = [line for line in serve_log.read_text().splitlines()
                    if re.search(r" (WARNING|ERROR) ", line) and " 401 " not in line]
        assert problems == [], "the oversized body reached confcall"

        # A body sent in chunks, with no length declared: cut off at the limit
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield big[:10_000]

        async with session.post("/callbacks/messaging", data=chunks(), headers={
                **auth, "Content-Type": "application/json"}) as refused:
            assert refused.status == 413
            assert refused.content_type != "application/json", "confcall answered, not Caddy"

        await post("/callbacks/messaging", inbound_text(ORGANIZER, closing), 200)
        messages = await _poll(sent, lambda messages: any(
            m["to"] == [ORGANIZER] and m["text"].startswith("Conference ended") for m in messages))

    by_text = {(tuple(m["to"]), m["text"]) for m in messages}
    invitation = (f"You have been invited by {ORGANIZER} to join a conference. "
                  f"Please call {LINE} to join")
    assert ((a,), invitation) in by_text
    assert ((b,), invitation) in by_text
    assert any(to == (ORGANIZER,) and text.startswith(f"Conference started. Invited: {a}, {b}.")
               for to, text in by_text), by_text
    assert any(set(to) == {a, b} and text == closing for to, text in by_text), by_text
    recap = next(text for to, text in by_text if text.startswith("Conference ended"))
    assert f"Joined: {a} (" in recap and f"Never joined: {b}." in recap, recap

    assert await served.terminate() == 0
    await caddy.stop()
    handled = caddy.requests()
    from_sandbox = {(r["request"]["uri"], r["status"]) for r in handled
                    if r["request"]["headers"].get("User-Agent") == ["confcall"]}
    # delivery receipts and conference events came back through Caddy, and were accepted
    assert ("/callbacks/messaging", 200) in from_sandbox, from_sandbox
    assert ("/callbacks/voice/conference", 204) in from_sandbox, from_sandbox
    assert [r["status"] for r in handled if r["request"]["uri"] == "/callbacks/messaging"
            and r["request"]["headers"].get("User-Agent") != ["confcall"]] == [
        200, 413, 401, 413, 200]
    everything = caddy.access_log.read_text()
    # Caddy keeps the Authorization header (the callback credentials) out of its log
    assert password not in everything
    assert auth["Authorization"].split()[1] not in everything
    assert ": 413" not in serve_log.read_text(), "confcall answered an oversized body"
