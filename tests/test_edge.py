"""The HTTP edge of `confcall serve`, a real process: slow, idle and piled-up connections
cannot hold it, an aborted upload is one log line, the sandbox keeps to itself, and
/healthz tells strangers only what a load balancer needs."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import pytest
from conftest import ORGANIZER, inbound_text
from fake_bandwidth import FakeBandwidth
from served import Served

from confcall.auth import basic_auth

TIGHT = {"CONFCALL_SERVER_IDLE_TIMEOUT": "1", "CONFCALL_SERVER_BODY_TIMEOUT": "1",
         "CONFCALL_SERVER_MAX_CONNECTIONS": "10"}


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the server sent before it closed the connection, which it must within
    `seconds`."""
    async with asyncio.timeout(seconds):
        return await reader.read()


@pytest.fixture
async def tight(fake: FakeBandwidth, tmp_path: Path) -> Served:
    served = Served(tmp_path, fake, [ORGANIZER], **TIGHT)
    await served.start()
    yield served
    await served.stop()


async def test_an_idle_connection_is_closed(tight: Served) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", tight.port)
    began = time.monotonic()
    assert await closed_within(reader, 5) == b""
    assert time.monotonic() - began < 4
    writer.close()


async def test_headers_a_byte_at_a_time_are_cut_off(tight: Served) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", tight.port)
    writer.write(b"POST /callbacks/messaging HTTP/1.1\r\nHost: x\r\n")

    async def trickle() -> None:
        for _ in range(30):
            writer.write(b"X")
            await asyncio.sleep(0.3)

    trickling = asyncio.create_task(trickle())
    began = time.monotonic()
    try:
        await closed_within(reader, 6)
    finally:
        trickling.cancel()
    assert time.monotonic() - began < 5


async def test_a_body_a_byte_at_a_time_gets_408(tight: Served) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", tight.port)
    writer.write(b"POST /callbacks/messaging HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n")

    async def trickle() -> None:
        for _ in range(30):
            writer.write(b" ")
            await asyncio.sleep(0.3)

    trickling = asyncio.create_task(trickle())
    began = time.monotonic()
    try:
        async with asyncio.timeout(6):
            status = await reader.readline()
    finally:
        trickling.cancel()
    assert status.startswith(b"HTTP/1.1 408")
    assert time.monotonic() - began < 4


async def test_an_aborted_upload_is_one_line(tight: Served, tmp_path: Path) -> None:
    for _ in range(3):
        _, writer = await asyncio.open_connection("127.0.0.1", tight.port)
        writer.write(b"POST /callbacks/messaging HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{\"a\"")
        await writer.drain()
        writer.close()
        await asyncio.sleep(0.2)
    async with aiohttp.ClientSession() as session, session.get(tight.url + "/healthz") as ok:
        assert ok.status == 200
    await tight.terminate()
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log and "internal error" not in log
    assert log.count("the caller went away before its body arrived") == 3


async def test_connections_beyond_the_cap_are_closed_and_said_once(fake: FakeBandwidth,
                                                                   tmp_path: Path) -> None:
    tight = Served(tmp_path, fake, [ORGANIZER], **{**TIGHT, "CONFCALL_SERVER_IDLE_TIMEOUT": "30"})
    await tight.start()
    held = [await asyncio.open_connection("127.0.0.1", tight.port) for _ in range(25)]

    async def closed(reader: asyncio.StreamReader) -> bool:
        try:
            return await closed_within(reader, 1.0) == b""
        except TimeoutError:
            return False

    try:
        shut = await asyncio.gather(*(closed(reader) for reader, _ in held))
        assert sum(shut) == 15  # the 10 first are kept
        for _, writer in held:
            writer.close()
        await asyncio.sleep(0.3)
        async with aiohttp.ClientSession() as session, session.get(
                tight.url + "/healthz") as ok:
            assert ok.status == 200  # the server still answers
    finally:
        await tight.terminate()
    log = (tmp_path / "serve.log").read_text()
    assert log.count("connection(s) closed at once") == 1
    assert "Traceback" not in log and "exception" not in log  # each closed without a word


async def test_a_sandbox_beyond_loopback_wants_callback_credentials(tmp_path: Path) -> None:
    served = Served(tmp_path, None, [ORGANIZER], CONFCALL_SERVER_HOST="0.0.0.0")
    with pytest.raises(RuntimeError, match="exited 1"):
        await served.start(timeout=10)
    log = (tmp_path / "serve.log").read_text()
    assert "the sandbox listens on 0.0.0.0 (beyond this machine) only with callback" in log
    assert "Traceback" not in log
    guarded = Served(tmp_path, None, [ORGANIZER], CONFCALL_SERVER_HOST="0.0.0.0",
                     CONFCALL_SERVER_CALLBACK_USERNAME="bw",
                     CONFCALL_SERVER_CALLBACK_PASSWORD="pw-Zk3")
    await guarded.start()
    await guarded.stop()


async def test_healthz_tells_strangers_only_what_a_load_balancer_needs(tmp_path: Path) -> None:
    served = Served(tmp_path, None, [ORGANIZER], CONFCALL_SERVER_CALLBACK_USERNAME="bw",
                    CONFCALL_SERVER_CALLBACK_PASSWORD="pw-Zk3")
    await served.start()
    try:
        async with aiohttp.ClientSession() as session:
            proxied = {"X-Forwarded-For": "203.0.113.9"}
            async with session.get(served.url + "/healthz", headers=proxied) as answer:
                assert await answer.json() == {"status": "ok"}
            async with session.get(served.url + "/healthz", headers={
                    **proxied, "Authorization": basic_auth("bw", "pw-Zk3")}) as answer:
                assert {"version", "mode", "backlog"} <= set(await answer.json())
            async with session.get(served.url + "/healthz") as answer:  # this machine
                assert (await answer.json())["mode"] == "sandbox"
    finally:
        await served.stop()


@pytest.mark.parametrize("scheme", ["basic", "BASIC", "Basic", "bAsIc"])
async def test_the_basic_scheme_is_case_insensitive(fake: FakeBandwidth, tmp_path: Path,
                                                    scheme: str) -> None:
    from aiohttp.test_utils import TestClient, TestServer
    from conftest import live_config

    from confcall.app import create_app

    config = live_config(tmp_path, fake, **{"server.callback_username": "bw",
                                            "server.callback_password": "pw-Zk3"})
    token = basic_auth("bw", "pw-Zk3").split(" ", 1)[1]
    async with TestClient(TestServer(create_app(config))) as client:
        answer = await client.post("/callbacks/messaging",
                                   data=json.dumps(inbound_text(ORGANIZER, "hello")),
                                   headers={"Authorization": f"{scheme} {token}",
                                            "Content-Type": "application/json"})
        assert answer.status == 200
