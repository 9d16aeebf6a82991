"""Instructions per request under callgrind, for confcall's read and write paths and for the
bare aiohttp peer: each server runs under valgrind with instrumentation off, takes a warm-up,
then counts the instructions of a fixed window of requests. Unlike throughput, the figure
does not drift with the machine's load: it is the one to compare over time.

    python benchmarks/instructions.py [--requests 2000] [--connections 100]

Needs valgrind (`apt-get install valgrind`); prints why not otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
from _harness import Served, fake_bandwidth
from aiohttp.test_utils import unused_port
from conftest import inbound_text, voice_event
from load import UNIQUE, BareApp

LINE = "+12015550100"
ORGANIZER = "+12015550101"
INVITED = "+12015550123"
STRANGER = "+12015550199"
# python with uvloop hidden: confcall serve then runs on asyncio's own loop
WITHOUT_UVLOOP = ("import sys; sys.modules['uvloop'] = None; from confcall.cli import main; "
                  "sys.argv[0] = 'confcall'; main()")


def available() -> str | None:
    """None when callgrind can be used, else why not."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        return "valgrind is not installed (apt-get install valgrind)"
    return None


def callgrind(folder: Path) -> list[str]:
    return ["valgrind", "--tool=callgrind", "--instr-atstart=no",
            f"--callgrind-out-file={folder}/cg.%p", "--quiet"]


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)


async def _send(url: str, body: str, total: int, connections: int) -> int:
    """Post `body` `total` times over `connections` connections; how many were not 2xx."""
    sent = failed = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal sent, failed
        while sent < total:
            sent += 1
            data = body.replace(UNIQUE, f"i-{sent}-{id(session)}")
            async with session.post(url, data=data,
                                    headers={"Content-Type": "application/json"}) as answer:
                await answer.read()
                failed += answer.status >= 300

    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections),
                                     timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(connections)))
    return failed


async def per_request(pid: int, folder: Path, url: str, body: Any, requests: int,
                      connections: int) -> float:
    """Instructions the process `pid` runs per request, over `requests` requests after a
    warm-up of a quarter as many."""
    text = body if isinstance(body, str) else json.dumps(body)
    await _send(url, text, max(200, requests // 4), connections)
    for old in folder.glob(f"cg.{pid}.*"):
        old.unlink()
    await asyncio.to_thread(_control, pid, "--instr=on")
    await asyncio.to_thread(_control, pid, "--zero")
    failed = await _send(url, text, requests, connections)
    await asyncio.to_thread(_control, pid, "--dump")
    await asyncio.to_thread(_control, pid, "--instr=off")
    if failed:
        raise RuntimeError(f"{failed} of {requests} requests to {url} failed")
    total = 0
    for dump in folder.glob(f"cg.{pid}.*"):
        found = re.search(r"^totals: (\d+)", dump.read_text(), re.MULTILINE)
        if found:
            total += int(found.group(1))
    if not total:
        raise RuntimeError("callgrind dumped no count")
    return total / requests


async def measure(requests: int, connections: int, loops: Sequence[str] = ("asyncio",),
                  keep: Path | None = None) -> dict[str, float]:
    """{label: instructions per request} for each path and server, on each loop of
    `loops` ("asyncio", "uvloop"); with `keep`, callgrind's dumps are copied there (for
    callgrind_annotate)."""
    figures: dict[str, float] = {}
    read = voice_event("initiate", **{"from": INVITED, "to": LINE, "callId": "c-1"})
    write = inbound_text(STRANGER, "hello", line=LINE, message_id=UNIQUE)
    paths = (("read", "/callbacks/voice/initiate", read),
             ("write", "/callbacks/messaging", write))
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        async with fake_bandwidth() as fake:
            for loop in loops:
                python = ([sys.executable, "-c", WITHOUT_UVLOOP] if loop == "asyncio"
                          else [sys.executable, "-m", "confcall"])
                (folder / loop).mkdir()
                served = Served(folder / loop, fake, [ORGANIZER],
                                command=[*callgrind(folder), *python])
                await served.start(timeout=300)
                try:
                    assert served.process is not None
                    async with aiohttp.ClientSession() as session, session.post(
                            served.url + "/callbacks/messaging",
                            json=inbound_text(ORGANIZER, INVITED, line=LINE)) as answer:
                        assert answer.status == 200, answer.status
                    for label, path, body in paths:
                        figures[f"confcall {label} ({loop})"] = await per_request(
                            served.process.pid, folder, served.url + path, body, requests,
                            connections)
                        if keep is not None:
                            _keep(folder, served.process.pid, keep, f"confcall-{label}-{loop}")
                finally:
                    await served.terminate()
        async with BareApp(unused_port(), command=callgrind(folder),
                           start_timeout=300) as bare:
            assert bare.process is not None
            for label, path, body in paths:
                figures[f"bare {label} (asyncio)"] = await per_request(
                    bare.process.pid, folder, bare.url + path, body, requests, connections)
                if keep is not None:
                    _keep(folder, bare.process.pid, keep, f"bare-{label}")
    return figures


def _keep(folder: Path, pid: int, keep: Path, name: str) -> None:
    keep.mkdir(parents=True, exist_ok=True)
    for dump in folder.glob(f"cg.{pid}.*"):
        shutil.copy(dump, keep / f"{name}.callgrind")


def report(figures: dict[str, float], requests: int, connections: int) -> None:
    print(f"instructions per request (callgrind, {requests} requests over {connections} "
          "connections after a warm-up):", flush=True)
    for label in ("read", "write"):
        peer = figures[f"bare {label} (asyncio)"]
        for key, value in figures.items():
            if key.startswith(f"confcall {label} "):
                loop = key.rsplit("(", 1)[1].rstrip(")")
                print(f"{label} path instructions, confcall on {loop}: {value / 1000:.0f}k "
                      f"instr/req | peer (bare aiohttp, asyncio): {peer / 1000:.0f}k | ratio "
                      f"{peer / value:.2f} (peer's count / ours: the speed ratio)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--uvloop", action="store_true", help="also confcall on uvloop")
    parser.add_argument("--keep", type=Path, help="copy callgrind's dumps to this folder")
    args = parser.parse_args()
    why_not = available()
    if why_not:
        print(f"instruction counts: skipped ({why_not})")
        return
    loops = ("asyncio", "uvloop") if args.uvloop else ("asyncio",)
    report(asyncio.run(measure(args.requests, args.connections, loops, args.keep)),
           args.requests, args.connections)


if __name__ == "__main__":
    main()
