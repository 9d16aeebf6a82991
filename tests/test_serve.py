"""`confcall serve` as a person runs it, in a real process: the banner comes only once the
server listens, a failure to start is one line, and the command the banner offers works as
printed."""

from __future__ import annotations

import importlib.util
import os
import queue
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import unused_port
from conftest import ORGANIZER
from served import Served

BANNER = "callback URLs for the Bandwidth applications"
CI = os.environ.get("CI") == "true"


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any confcall or Bandwidth setting, plus `settings`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CONFCALL_", "BW_", "BANDWIDTH_")) and k != "USER_PHONE_NUMBER"}
    env.update(settings)
    return env


def confcall(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "confcall", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


def test_a_port_in_use_is_one_line_and_no_banner(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = confcall("serve", "--port", str(port), cwd=tmp_path, env=clean_env())
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: cannot listen on 127.0.0.1:{port}: "), line
    assert "already in use" in line.lower()


async def test_a_database_in_use_is_one_line_and_no_banner(tmp_path: Path) -> None:
    first = Served(tmp_path, None, [ORGANIZER])
    await first.start()
    try:
        second = confcall("serve", cwd=tmp_path, env={**first.env,
                                                      "CONFCALL_SERVER_PORT": str(unused_port())})
    finally:
        await first.stop()
    assert second.returncode == 1
    [line] = second.stderr.splitlines()
    assert line.startswith("error: another confcall serve is using"), line


def read_banner(process: subprocess.Popen[str], timeout: float = 20.0) -> list[str]:
    """Lines of stderr up to and including the banner's last one (the command to try)."""
    assert process.stderr is not None
    lines: queue.Queue[str] = queue.Queue()
    stream = process.stderr
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while not (len(seen) > 1 and seen[-2].endswith("Try:")):
        try:
            seen.append(lines.get(timeout=max(deadline - time.monotonic(), 0.01)).rstrip())
        except queue.Empty:
            raise AssertionError(f"no banner ending in a command to try: {seen}") from None
    return seen


async def test_the_banner_comes_once_listening_and_its_command_works_as_printed(
        tmp_path: Path) -> None:
    # a config named with --config (callback credentials the client must send too) and a
    # port given as a flag: the command to try must carry both to reach this server
    (tmp_path / "conf").mkdir()
    config = tmp_path / "conf" / "line.toml"
    config.write_text('[server]\ncallback_username = "bw"\ncallback_password = "pw-7c1e"\n')
    port = unused_port()
    env = clean_env()
    server = subprocess.Popen(
        [sys.executable, "-m", "confcall", "serve", "--config", "conf/line.toml", "--port",
         str(port)], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        banner = read_banner(server)
        # printed only once listening: the port answers now, not eventually
        async with aiohttp.ClientSession() as session, session.get(
                f"http://127.0.0.1:{port}/healthz") as answer:
            assert answer.status == 200
        assert any(BANNER in line for line in banner)
        command = shlex.split(banner[-1])
        assert command[:2] == ["confcall", "simulate-text"], banner[-1]
        tried = confcall(*command[1:], cwd=tmp_path, env=env)
        assert tried.returncode == 0, tried.stderr
        assert "server answered 200" in tried.stdout
    finally:
        server.send_signal(signal.SIGINT)
        _, rest = server.communicate(timeout=20)
    assert server.returncode == 0, rest
    assert "Traceback" not in rest


HIDE_UVLOOP = ("import sys; sys.modules['uvloop'] = None; sys.argv[0] = 'confcall'; "
               "from confcall.cli import main; main()")


@pytest.mark.parametrize("hidden", [False, True])
async def test_serve_runs_on_uvloop_where_it_is_installed(tmp_path: Path, hidden: bool) -> None:
    """uvloop is a dependency wherever it has wheels; without it, asyncio's own loop."""
    installed = importlib.util.find_spec("uvloop") is not None
    if CI and not hidden:
        assert installed, "uvloop is a dependency on this platform"
    command = [sys.executable, "-c", HIDE_UVLOOP] if hidden else []
    served = Served(tmp_path, None, [ORGANIZER], command=command)
    await served.start()
    try:
        async with aiohttp.ClientSession() as session, session.post(
                served.url + "/callbacks/voice/initiate", json={}) as answer:
            assert answer.status == 400  # answered, on whichever loop
    finally:
        assert await served.terminate() == 0
    loop = "uvloop" if installed and not hidden else "asyncio"
    assert f"{loop} event loop)" in (tmp_path / "serve.log").read_text()
