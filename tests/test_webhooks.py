"""Bad input never gets a 500: malformed bodies, wrong shapes, sizes, types and credentials."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import (
    ORGANIZER,
    OTHER_ORGANIZER,
    STRANGER,
    Line,
    StartLine,
    inbound_text,
    invitees,
    voice_event,
)

from confcall.auth import basic_auth

ROUTES = ["/callbacks/messaging", "/callbacks/voice/initiate", "/callbacks/voice/conference",
          "/callbacks/voice/status"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe\x00garbage", b"", b"[" * 5000,
                                  b"42", b'"text"', b"null"])
async def test_malformed_bodies_are_400(line: Line, route: str, body: bytes) -> None:
    answer = await line.client.post(route, data=body,
                                    headers={"Content-Type": "application/json"})
    assert answer.status == 400
    assert "error" in await answer.json()


@pytest.mark.parametrize("body", [
    {"type": "message-received"},
    [],
    [{"type": "message-received", "to": "+12015550100"}],
    [{"type": "message-received", "to": "+1", "message": {"id": "x", "from": 5}}],
    [{"type": 7}],
])
async def test_messaging_bodies_not_shaped_like_bandwidths_are_400(line: Line, body: Any) -> None:
    answer = await line.post("/callbacks/messaging", body)
    assert answer.status == 400
    assert line.store.counts()["processed"] == 0


async def test_missing_field_names_it(line: Line) -> None:
    body = inbound_text(ORGANIZER, "+12015550123")
    del body[0]["message"]["from"]
    answer = await line.post("/callbacks/messaging", body)
    assert answer.status == 400
    assert "from" in (await answer.json())["error"]


@pytest.mark.parametrize("route", ROUTES[1:])
async def test_voice_event_without_event_type_is_400(line: Line, route: str) -> None:
    body = voice_event("initiate")
    del body["eventType"]
    assert (await line.post(route, body)).status == 400


@pytest.mark.parametrize("route", ROUTES[1:])
async def test_unused_voice_events_are_ignored(line: Line, route: str) -> None:
    for kind in ("answer", "conferenceRedirect"):
        answer = await line.post(route, voice_event(kind))
        assert answer.status in (200, 204)
    assert line.store.counts()["processed"] == 0


async def test_unused_messaging_events_are_ignored(line: Line) -> None:
    body = inbound_text(ORGANIZER, "x")
    body[0]["type"] = "suggestion-response"
    assert (await line.post("/callbacks/messaging", body)).status == 200
    assert line.store.counts()["inbound"] == 0


async def test_bodies_over_64_kib_are_413(line: Line) -> None:
    body = inbound_text(ORGANIZER, "x" * (65 * 1024))
    answer = await line.post("/callbacks/messaging", body)
    assert answer.status == 413
    assert line.fake.texts == []


async def test_wrong_content_type_is_415(line: Line) -> None:
    answer = await line.client.post("/callbacks/messaging", data="type=message-received",
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status == 415


async def test_wrong_method_is_405_not_500(line: Line, caplog: pytest.LogCaptureFixture) -> None:
    answer = await line.client.get("/callbacks/messaging")
    assert answer.status == 405
    assert answer.headers["Allow"] == "POST"
    assert await answer.json() == {"error": "Method Not Allowed"}
    answer = await line.client.post("/healthz")
    assert (answer.status, answer.headers["Allow"]) == (405, "GET,HEAD")
    assert [r.getMessage() for r in caplog.records if r.name == "confcall.webhooks"] == [
        "GET /callbacks/messaging: 405 Method Not Allowed",
        "POST /healthz: 405 Method Not Allowed"]


@pytest.mark.parametrize("path", ["/", "/callbacks", "/callbacks/messaging/x", "/nope"])
async def test_unknown_paths_are_a_json_404(line: Line, path: str) -> None:
    for method in ("GET", "POST", "DELETE"):
        answer = await line.client.request(method, path)
        assert answer.status == 404
        assert await answer.json() == {"error": "Not Found"}


async def test_unknown_callback_paths_want_the_credentials_first(start_line: StartLine) -> None:
    line = await start_line(server__callback_username="bw", server__callback_password="s3cret")
    assert (await line.client.post("/callbacks/nope")).status == 401
    answer = await line.client.post("/callbacks/nope", headers={
        "Authorization": basic_auth("bw", "s3cret")})
    assert answer.status == 404


async def test_healthz(line: Line) -> None:
    answer = await line.client.get("/healthz")
    assert answer.status == 200
    assert (await answer.json())["mode"] == "live"


@pytest.mark.parametrize("header", [
    None, "Basic", "Bearer abc", "Basic !!!not-base64!!!", basic_auth("bw", "wrong"),
    basic_auth("wrong", "s3cret"), "Basic " + "YnctczNjcmV0",  # no colon
])
async def test_callback_credentials_are_required(start_line: StartLine,
                                                 header: str | None) -> None:
    line = await start_line(server__callback_username="bw", server__callback_password="s3cret")
    headers = {"Authorization": header} if header is not None else {"Authorization": ""}
    for route in ROUTES:
        body: Any = (inbound_text(ORGANIZER, " ".join(invitees(2)))
                     if route.endswith("messaging") else voice_event("initiate"))
        answer = await line.client.post(route, json=body, headers=headers)
        assert answer.status == 401
        assert answer.headers["WWW-Authenticate"].startswith("Basic")
    assert line.store.counts() == {k: 0 for k in line.store.counts()}
    # healthz stays open for load balancers
    assert (await line.client.get("/healthz")).status == 200


async def test_right_callback_credentials_pass(start_line: StartLine) -> None:
    line = await start_line(server__callback_username="bw", server__callback_password="s3cret")
    await line.text(ORGANIZER, " ".join(invitees(2)))  # Line.post sends the credentials
    assert line.active() is not None


# --- callbacks that must never 5xx ---------------------------------------------------------

# half of a UTF-16 pair: as JSON escapes it, and as its bytes (not UTF-8, but Python's json
# reads them all the same)
HALVES = {"escaped": b"\\ud800", "bytes": b"\xed\xa0\x80"}


def raw_json(body: Any, *markers: str, half: bytes = HALVES["escaped"]) -> bytes:
    """`body` as JSON, with each of `markers` replaced by `half`."""
    data = json.dumps(body).encode()
    for marker in markers:
        data = data.replace(marker.encode(), half)
    return data


async def post_raw(line: Line, route: str, data: bytes) -> Any:
    return await line.client.post(route, data=data,
                                  headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("spelled", HALVES)
@pytest.mark.parametrize("where", ["text", "id", "from"])
async def test_half_a_character_in_a_text_is_stored_safely(line: Line, where: str,
                                                           spelled: str) -> None:
    body = inbound_text(ORGANIZER, "hello @@")
    if where == "id":
        body[0]["message"]["id"] = "m-@@"
    elif where == "from":
        body[0]["message"]["from"] = "+1201555@@"
    answer = await post_raw(line, "/callbacks/messaging",
                            raw_json(body, "@@", half=HALVES[spelled]))
    assert answer.status == 200, await answer.text()
    assert line.store.counts()["inbound"] == 1


@pytest.mark.parametrize("spelled", HALVES)
@pytest.mark.parametrize("field", ["callId", "tag", "name"])
async def test_half_a_character_in_a_voice_event_is_taken(line: Line, field: str,
                                                          spelled: str) -> None:
    [a] = invitees(1)
    await line.text(ORGANIZER, a)
    name = line.active().id
    body = voice_event("conferenceMemberJoin", conferenceId="conf-1", name=name, tag=name,
                       callId="c-1", **{"from": a, "to": "+12015550100"})
    body[field] = body[field] + "@@"
    answer = await post_raw(line, "/callbacks/voice/conference",
                            raw_json(body, "@@", half=HALVES[spelled]))
    assert answer.status == 204, await answer.text()


@pytest.mark.parametrize("tag", ["²", "1" * 20, "9" * 5000, "-3", " 7"])
async def test_any_tag_on_a_receipt_is_taken(line: Line, examples: Any, tag: str) -> None:
    body = examples("messaging-callback.smsMessageDelivered.json")
    body[0]["message"]["tag"] = tag
    answer = await line.post("/callbacks/messaging", body)
    assert answer.status == 200, await answer.text()


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                                  "2099-01-01T00:00:00Z", "1999-12-31T23:59:59Z"])
async def test_impossible_times_are_refused_and_the_rest_of_the_array_processed(
        line: Line, when: str) -> None:
    [a] = invitees(1)
    await line.text(ORGANIZER, a)
    name = line.active().id
    join = voice_event("conferenceMemberJoin", conferenceId="conf-1", name=name, tag=name,
                       callId="c-1", eventTime=when, **{"from": a, "to": "+12015550100"})
    answer = await line.post("/callbacks/voice/conference", join)
    assert answer.status == 400
    assert "not between 2000 and tomorrow" in (await answer.json())["error"] or (
        "out of range" in (await answer.json())["error"])
    bad = inbound_text(ORGANIZER, "bye")
    bad[0]["message"]["time"] = when
    good = inbound_text(OTHER_ORGANIZER, invitees(1, start=150)[0])
    answer = await line.post("/callbacks/messaging", bad + good)
    assert answer.status == 200
    assert len((await answer.json())["refused"]) == 1
    assert line.active(OTHER_ORGANIZER) is not None  # the good one was processed
    assert line.active() is not None  # the bad one ended nothing
    alone = await line.post("/callbacks/messaging", bad)
    assert alone.status == 400


async def test_one_callback_acts_on_at_most_ten_texts(line: Line) -> None:
    body = [inbound_text(STRANGER, f"hello {i}")[0] for i in range(12)]
    answer = await line.post("/callbacks/messaging", body)
    assert answer.status == 200
    assert len((await answer.json())["refused"]) == 2
    assert line.store.counts()["inbound"] == 10
