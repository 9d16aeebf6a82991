"""A load generator for the benchmarks: wrk when it is installed, else a built-in one on
aiohttp. Both post JSON bodies over N connections for a while and report throughput and
the 99th percentile latency."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

UNIQUE = "@@UNIQUE@@"  # replaced by a value no other request of any run has had


@dataclass(frozen=True)
class LoadResult:
    tool: str
    requests: int
    seconds: float
    p99_ms: float
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def tool() -> str:
    return "wrk" if shutil.which("wrk") else "built-in (aiohttp)"


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local template = [==[%(body)s]==]
local counter = 0
local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end
function request()
  counter = counter + 1
  local body = template:gsub("%(marker)s", "%(run)s-" .. id .. "-" .. counter)
  return wrk.format(nil, nil, nil, body)
end
%(delay)s
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%f %%f %%d\\n", summary.requests,
    summary.duration / 1e6, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.timeout + e.status))
end
"""


def _wrk(url: str, body: str, connections: int, seconds: float, pin: Sequence[str],
         pause_ms: int) -> LoadResult:
    # wrk's delay(): each connection waits that long after an answer before its next request
    delay = f"function delay()\n  return {pause_ms}\nend" if pause_ms else ""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % {"body": body, "marker": UNIQUE, "run": uuid.uuid4().hex,
                                   "delay": delay})
    try:
        out = subprocess.run(
            [*pin, "wrk", f"-t{1 if pin else 2}", f"-c{connections}",
             f"-d{max(1, round(seconds))}s", "--timeout", "5s", "-s", script.name, url],
            capture_output=True, text=True, check=True).stdout
    finally:
        Path(script.name).unlink()
    found = re.search(r"RESULT (\d+) ([\d.]+) ([\d.]+) (\d+)", out)
    if found is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    requests, duration, p99, errors = found.groups()
    return LoadResult("wrk", int(requests), float(duration), float(p99), int(errors))


async def _builtin(url: str, body: str, connections: int, seconds: float,
                   pause_ms: int) -> LoadResult:
    latencies: list[float] = []
    run = uuid.uuid4().hex
    errors = 0
    counter = 0
    deadline = time.monotonic() + seconds

    async def worker(session: aiohttp.ClientSession, worker_id: int) -> None:
        nonlocal errors, counter
        while time.monotonic() < deadline:
            counter += 1
            data = body.replace(UNIQUE, f"{run}-{worker_id}-{counter}")
            began = time.perf_counter()
            try:
                async with session.post(url, data=data,
                                        headers={"Content-Type": "application/json"}) as answer:
                    await answer.read()
                    if answer.status >= 300:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - began)
            if pause_ms:
                await asyncio.sleep(pause_ms / 1000)

    connector = aiohttp.TCPConnector(limit=connections)
    began = time.monotonic()
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session, i) for i in range(connections)))
    took = time.monotonic() - began
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) > 1 else 0.0
    return LoadResult("built-in (aiohttp)", len(latencies), took, p99, errors)


async def run_load(url: str, body: Any, *, connections: int = 100, seconds: float = 5.0,
                   pin: Sequence[str] = (), pause_ms: int = 0) -> LoadResult:
    """Post `body` (JSON; the string UNIQUE in it becomes a fresh value per request). `pin`
    runs wrk under it (`taskset -c 1`), on one thread: a core of its own, not the server's.
    With `pause_ms`, each connection pauses that long after each answer: a load below what
    the server can take, rather than as much as it can."""
    text = body if isinstance(body, str) else json.dumps(body)
    if shutil.which("wrk"):
        return await asyncio.to_thread(_wrk, url, text, connections, seconds, pin, pause_ms)
    return await _builtin(url, text, connections, seconds, pause_ms)


BARE_APP = """
import sys
from aiohttp import web

BXML = ('<?xml version="1.0" encoding="UTF-8"?>\\n<Response><SpeakSentence>Welcome.'
        '</SpeakSentence><Conference conferenceEventUrl="http://127.0.0.1/callbacks/voice/'
        'conference" conferenceEventMethod="POST" tag="t">t</Conference></Response>')

async def answer(request):
    await request.read()
    return web.Response(text=BXML, content_type="application/xml")

app = web.Application()
# the routes confcall has, plain: a pattern route costs more to match
for path in ("/", "/callbacks/messaging", "/callbacks/voice/initiate",
             "/callbacks/voice/conference", "/callbacks/voice/status"):
    app.router.add_post(path, answer)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


class BareApp:
    """The peer: a bare aiohttp app that reads the body and answers fixed BXML, on asyncio's
    own event loop, at the paths confcall serves."""

    def __init__(self, port: int, *, command: Sequence[str] = (),
                 start_timeout: float = 10.0) -> None:
        self.port = port
        self.command = list(command)  # run it under this (taskset, valgrind)
        self.start_timeout = start_timeout
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> BareApp:
        self.process = subprocess.Popen([*self.command, sys.executable, "-c", BARE_APP,
                                         str(self.port)])
        async with aiohttp.ClientSession() as session:
            for _ in range(int(self.start_timeout / 0.02)):
                try:
                    async with session.post(self.url + "/", data=b"{}"):
                        return self
                except aiohttp.ClientError:
                    await asyncio.sleep(0.02)
        raise RuntimeError("the bare app did not start")

    async def __aexit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(10)
