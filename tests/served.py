"""`confcall serve` as a real subprocess, for crash, signal and load tests and benchmarks."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
from aiohttp.test_utils import unused_port
from fake_bandwidth import FakeBandwidth


class Served:
    """One `confcall serve` process at a time on a fixed port and database, against `fake`
    (or, with no fake, in sandbox mode); kill and restart it at will. With `store_url`, on
    that PostgreSQL database: several Served, each on its own port, are replicas."""

    def __init__(self, workdir: Path, fake: FakeBandwidth | None, organizers: list[str],
                 line: str = "+12015550100", *, store_url: str | None = None,
                 name: str = "serve", command: Sequence[str] = (), **settings: str) -> None:
        self.workdir = workdir
        self.name = name  # its log is NAME.log in workdir
        # how to run it: `python -m confcall` unless told (the benchmarks pin it to a core,
        # or run it under callgrind)
        self.command = list(command) or [sys.executable, "-m", "confcall"]
        self.port = unused_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("CONFCALL_", "BW_", "BANDWIDTH_"))}
        self.env.update({
            "CONFCALL_SERVER_PORT": str(self.port),
            "CONFCALL_ORGANIZERS_NUMBERS": ",".join(organizers),
            "CONFCALL_BANDWIDTH_PHONE_NUMBER": line,
            "CONFCALL_OUTBOX_MAX_RETRY_DELAY": "1",
            "CONFCALL_OUTBOX_REQUEST_TIMEOUT": "2",
        })
        if store_url is not None:
            self.env["CONFCALL_STORE_URL"] = store_url
        else:
            self.env["CONFCALL_STORE_PATH"] = str(workdir / "confcall.db")
        if fake is not None:
            self.env.update({
                "CONFCALL_BANDWIDTH_ACCOUNT_ID": fake.account_id,
                "CONFCALL_BANDWIDTH_USERNAME": fake.username,
                "CONFCALL_BANDWIDTH_PASSWORD": fake.password,
                **{("CONFCALL_" + key.replace(".", "_").upper()): url
                   for key, url in fake.urls().items()},
            })
        self.env.update(settings)
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self, timeout: float = 20.0, ready: tuple[int, ...] = (200,)) -> None:
        """Start it and wait until /healthz answers with a status in `ready`."""
        log = (self.workdir / f"{self.name}.log").open("ab")
        self.process = await asyncio.create_subprocess_exec(
            *self.command, "serve", cwd=self.workdir, env=self.env,
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        self.starts += 1
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(f"confcall serve exited {self.process.returncode}")
                try:
                    async with session.get(self.url + "/healthz") as answer:
                        if answer.status in ready:
                            return
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError("confcall serve did not start")
                await asyncio.sleep(0.02)

    async def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as in a crash or an OOM kill."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def terminate(self) -> int:
        """SIGTERM, and the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            await self.kill()
