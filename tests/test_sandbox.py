"""The sandbox: the whole flow with no Bandwidth account, through the real server."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer, unused_port
from conftest import inbound_text, voice_event, wait_for
from served import Served

from confcall.app import create_app
from confcall.appkeys import CONFIG, SANDBOX, STORE
from confcall.auth import basic_auth
from confcall.config import SANDBOX_ORGANIZER, SANDBOX_PHONE_NUMBER, load_config

A, B = "+12015550123", "+12015550124"


@pytest.fixture
async def sandbox(tmp_path: Path, aiohttp_server: Any) -> TestServer:
    port = unused_port()
    config = load_config(None, {}, {"server.port": port,
                                    "store.path": str(tmp_path / "s.db"),
                                    "server.callback_username": "bw",
                                    "server.callback_password": "pw"})
    assert config.sandbox
    server: TestServer = await aiohttp_server(create_app(config), port=port)
    return server


async def test_whole_flow(sandbox: TestServer) -> None:
    app = sandbox.app
    assert app is not None
    store = app[STORE].reads
    auth = {"Authorization": "Basic Ync6cHc="}  # bw:pw
    async with ClientSession(str(sandbox.make_url("")), headers=auth) as http:
        async def post(path: str, body: Any) -> Any:
            async with http.post(path, json=body) as answer:
                assert answer.status < 300, await answer.text()
                return await answer.text()

        async def sent() -> list[dict[str, Any]]:
            async with http.get("/sandbox/messages") as answer:
                result: list[dict[str, Any]] = await answer.json()
                return result

        await post("/callbacks/messaging", inbound_text(SANDBOX_ORGANIZER, f"{A} {B}",
                                                        line=SANDBOX_PHONE_NUMBER))
        await wait_for(lambda: store.backlog() == 0)
        messages = await sent()
        assert {m["to"][0] for m in messages} == {A, B, SANDBOX_ORGANIZER}
        name = store.active_conference(SANDBOX_ORGANIZER).id

        bxml = await post("/callbacks/voice/initiate", voice_event(
            "initiate", **{"from": A, "to": SANDBOX_PHONE_NUMBER, "callId": "c-a"}))
        assert name in bxml
        await app[SANDBOX].idle()
        conference = store.conference(name)
        assert conference.bandwidth_id is not None
        assert [(m.number, m.left_at) for m in conference.members] == [(A, None)]
        # the sandbox sent delivery receipts for the invitations
        assert {d.state for d in store.deliveries(name)} == {"delivered"}

        await post("/callbacks/messaging", inbound_text(SANDBOX_ORGANIZER, "bye all",
                                                        line=SANDBOX_PHONE_NUMBER))
        recap = await wait_for(lambda: [r for r in store.outbox(name)
                                        if r.purpose == "recap" and r.status == "sent"])
        assert recap[0].body.startswith("Conference ended after")
        assert store.conference(name).status == "ended"
        assert [m["to"] for m in await sent() if m["text"] == "bye all"] == [[A, B]]
        async with http.get("/sandbox/conferences") as answer:
            [listed] = await answer.json()
        assert listed["completedTime"] and listed["members"] == []


async def test_a_picture_the_sandbox_sent_shows_with_its_media(sandbox: TestServer) -> None:
    picture = "https://messaging.bandwidth.com/api/v2/users/sandbox/media/pic.jpg"
    auth = {"Authorization": "Basic Ync6cHc="}  # bw:pw
    async with ClientSession(str(sandbox.make_url("")), headers=auth) as http:
        async def post(body: Any) -> None:
            async with http.post("/callbacks/messaging", json=body) as answer:
                assert answer.status == 200, await answer.text()

        async def sent() -> list[dict[str, Any]]:
            async with http.get("/sandbox/messages") as answer:
                result: list[dict[str, Any]] = await answer.json()
                return result

        await post(inbound_text(SANDBOX_ORGANIZER, f"{A} {B}", line=SANDBOX_PHONE_NUMBER))
        alone = inbound_text(SANDBOX_ORGANIZER, "", line=SANDBOX_PHONE_NUMBER)
        alone[0]["message"]["media"] = [picture]
        await post(alone)  # a picture, no text: it ends the call and goes to everyone
        forwarded = []
        for _ in range(100):
            forwarded = [m for m in await sent() if m["to"] == [A, B]]
            if forwarded:
                break
            await asyncio.sleep(0.05)
        assert [(m["text"], m.get("media")) for m in forwarded] == [("", [picture])]


async def test_hanging_up_leaves_the_conference(sandbox: TestServer) -> None:
    app = sandbox.app
    assert app is not None
    store = app[STORE].reads
    async with ClientSession(str(sandbox.make_url("")),
                             headers={"Authorization": "Basic Ync6cHc="}) as http:
        await http.post("/callbacks/messaging", json=inbound_text(
            SANDBOX_ORGANIZER, A, line=SANDBOX_PHONE_NUMBER))
        name = store.active_conference(SANDBOX_ORGANIZER).id
        call = {"from": A, "to": SANDBOX_PHONE_NUMBER, "callId": "c-a"}
        await http.post("/callbacks/voice/initiate", json=voice_event("initiate", **call))
        await app[SANDBOX].idle()
        await http.post("/callbacks/voice/status", json=voice_event("disconnect", **call))
        await app[SANDBOX].idle()
    conference = store.conference(name)
    assert conference.status == "active"  # the organizer has not ended it
    assert conference.members[0].left_at is not None
    assert conference.bandwidth_id is None  # Bandwidth's conference is gone


def api_auth(sandbox: TestServer) -> dict[str, str]:
    """The sandbox API's credentials: its own, made afresh at each start."""
    assert sandbox.app is not None
    bandwidth = sandbox.app[CONFIG].bandwidth
    return {"Authorization": basic_auth(bandwidth.username, bandwidth.password)}


async def test_the_sandbox_api_takes_its_own_credentials_only(sandbox: TestServer) -> None:
    url = sandbox.make_url("/sandbox/messaging/api/v2/users/sandbox/messages")
    body = {"applicationId": "x", "to": [A], "from": SANDBOX_PHONE_NUMBER, "text": "spam"}
    async with ClientSession() as http:
        for headers in ({}, {"Authorization": basic_auth("sandbox", "sandbox")},
                        {"Authorization": "Basic Ync6cHc="}):  # not the callback pair either
            async with http.post(url, json=body, headers=headers) as answer:
                assert answer.status == 401
        async with http.get(sandbox.make_url("/sandbox/messages")) as answer:
            assert answer.status == 401  # with callback credentials set, what it shows too
    assert sandbox.app is not None
    assert sandbox.app[SANDBOX].messages == []


async def test_the_sandbox_answers_a_wrong_path_or_method_as_the_app_does(
        sandbox: TestServer) -> None:
    auth = {"Authorization": "Basic Ync6cHc="}  # bw:pw
    async with ClientSession(str(sandbox.make_url("")), headers=auth) as http:
        for method, path, status in (("GET", "/sandbox/nothing", 404),
                                     ("POST", "/sandbox/messages", 405)):
            async with http.request(method, path) as answer:
                assert answer.status == status
                assert answer.content_type == "application/json"
        async with http.get("/sandbox/nothing", headers={"Authorization": ""}) as answer:
            assert answer.status == 401  # credentials first, as on every /sandbox/ path


async def test_sandbox_rejects_requests_that_break_bandwidths_schema(sandbox: TestServer) -> None:
    async with ClientSession(headers=api_auth(sandbox)) as http:
        url = sandbox.make_url("/sandbox/messaging/api/v2/users/sandbox/messages")
        async with http.post(url, json={"to": "+12015550123", "text": "x"}) as answer:
            assert answer.status == 400
            problems = (await answer.json())["description"]
        assert "applicationId" in problems and "to" in problems
        url = sandbox.make_url("/sandbox/voice/api/v2/accounts/sandbox/conferences/nope")
        async with http.post(url, json={"status": "completed"}) as answer:
            assert answer.status == 404


async def test_ring_in_the_sandbox_calls_and_the_callee_joins(tmp_path: Path) -> None:
    """The sandbox places the call and answers it, as a person would: the whole RING path
    runs without an account."""
    from aiohttp.test_utils import TestClient

    port = unused_port()
    config = load_config(None, {}, {"server.port": port, "store.path": str(tmp_path / "r.db")})
    async with TestClient(TestServer(create_app(config), port=port)) as client:
        app = client.app
        assert app is not None

        async def text(body: str) -> None:
            answer = await client.post("/callbacks/messaging", json=inbound_text(
                SANDBOX_ORGANIZER, body, line=SANDBOX_PHONE_NUMBER))
            assert answer.status == 200

        await text(f"{A} {B}")
        await wait_for(lambda: len(app[SANDBOX].messages) == 3)
        await text("RING")
        store = app[STORE].reads
        name = store.active_conference(SANDBOX_ORGANIZER).id
        await wait_for(lambda: {m.number for m in store.conference(name).members} == {A, B},
                       timeout=8)
        assert [call["to"] for call in app[SANDBOX].placed] == [A, B]
        conference = next(iter(app[SANDBOX].conferences.values()))
        assert set(conference.members.values()) == {A, B}


async def test_a_recorded_conference_in_the_sandbox_ends_with_a_link_that_downloads(
        tmp_path: Path) -> None:
    from aiohttp.test_utils import TestClient

    port = unused_port()
    config = load_config(None, {}, {"server.port": port, "store.path": str(tmp_path / "r.db"),
                                    "recording.enabled": True})
    async with TestClient(TestServer(create_app(config), port=port)) as client:
        app = client.app
        assert app is not None
        sandbox = app[SANDBOX]

        async def text(body: str) -> None:
            answer = await client.post("/callbacks/messaging", json=inbound_text(
                SANDBOX_ORGANIZER, body, line=SANDBOX_PHONE_NUMBER))
            assert answer.status == 200

        await text(A)
        await wait_for(lambda: len(sandbox.messages) == 2)
        call = voice_event("initiate", **{"from": A, "to": SANDBOX_PHONE_NUMBER,
                                          "callId": "c-rec"})
        assert "recorded" in await (await client.post("/callbacks/voice/initiate",
                                                      json=call)).text()
        await wait_for(lambda: any(c.recording for c in sandbox.conferences.values()))
        await text("thanks all")
        links = await wait_for(lambda: [m["text"] for m in sandbox.messages
                                        if "/recordings/" in m["text"]], timeout=8)
        link = next(w.rstrip(".,") for w in links[0].split() if "/recordings/" in w)
        answer = await client.get(link.split(str(port), 1)[1])
        audio = await answer.read()
        assert answer.status == 200 and audio[:4] == b"RIFF" and len(audio) > 8000


HIDE_VALIDATOR = ("import sys; sys.modules['openapi_schema_validator'] = None; "
                  "sys.argv[0] = 'confcall'; from confcall.cli import main; main()")


async def test_the_default_install_runs_the_sandbox_without_the_schema_checker(
        tmp_path: Path) -> None:
    """`pip install .` has no openapi-schema-validator: the sandbox still carries the flow,
    says once that it checks nothing, and names the extra that does."""
    served = Served(tmp_path, None, [SANDBOX_ORGANIZER],
                    command=[sys.executable, "-c", HIDE_VALIDATOR])
    await served.start()
    try:
        async with ClientSession(served.url) as http:
            async with http.post("/callbacks/messaging", json=inbound_text(
                    SANDBOX_ORGANIZER, f"{A} {B}", line=SANDBOX_PHONE_NUMBER)) as answer:
                assert answer.status == 200

            async def sent() -> set[str]:
                async with http.get("/sandbox/messages") as answer:
                    return {m["to"][0] for m in await answer.json()}

            for _ in range(200):
                if await sent() == {A, B, SANDBOX_ORGANIZER}:
                    break
                await asyncio.sleep(0.02)
            assert await sent() == {A, B, SANDBOX_ORGANIZER}
    finally:
        assert await served.terminate() == 0
    log = (tmp_path / "serve.log").read_text()
    assert log.count("does not check requests against Bandwidth's schemas") == 1
    assert "pip install 'confcall[sandbox]'" in log
    assert "Traceback" not in log
