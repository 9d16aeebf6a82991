"""Recordings (recording.enabled): callers are told, the conference is recorded when
Bandwidth creates it, the recap (or a follow-up text) carries a link that streams the
recording from Bandwidth until it expires."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import ORGANIZER, Clock, Line, StartLine, invitees, voice_event, wait_for
from defusedxml import ElementTree

from confcall import payloads, schema

pytestmark = pytest.mark.both_stores

T0 = "2026-11-25T10:00:00.000Z"


async def recorded_line(start_line: StartLine, **overrides: Any) -> Line:
    return await start_line(recording__enabled=True, **overrides)


async def created(line: Line, name: str, bandwidth_id: str = "conf-r1") -> Any:
    body = voice_event("conferenceCreated", conferenceId=bandwidth_id, name=name, tag=name,
                       eventTime=T0)
    return await line.post("/callbacks/voice/conference", body)


async def available(line: Line, name: str, recording_id: str = "r-1",
                    media_url: str | None = None, status: str = "complete",
                    bandwidth_id: str = "conf-r1") -> Any:
    url = media_url or line.fake.recording_url(bandwidth_id, recording_id)
    body = payloads.recording_available(
        conference=bandwidth_id, name=name, tag=name, account_id=line.fake.account_id,
        recording=recording_id, media_url=url, started=T0, ended=None)
    body["status"] = status
    answer = await line.post("/callbacks/voice/conference", body)
    assert answer.status == 204, await answer.text()
    return body


def link_in(text: str) -> str:
    [link] = [word.rstrip(".,") for word in text.split() if "/recordings/" in word]
    return link


async def test_callers_hear_it_and_bandwidth_is_told_to_record(start_line: StartLine) -> None:
    line = await recorded_line(start_line)
    [a] = invitees(1)
    await line.text(ORGANIZER, a)
    name = line.active().id
    document = ElementTree.fromstring(await line.call(a, "c-a"))
    said = [verb.text for verb in document.findall("SpeakSentence")]
    assert said[0] == "This conference call is recorded."
    answer = await created(line, name)
    assert answer.status == 200 and answer.content_type == "application/xml"
    verb = ElementTree.fromstring(await answer.text()).find("StartRecording")
    assert verb is not None
    assert verb.get("recordingAvailableUrl") == (
        "https://confcall.example.com/callbacks/voice/conference")
    again = await created(line, name)  # delivered again: our answer was lost
    assert again.status == 200 and "<StartRecording" in await again.text()


async def test_without_recording_nothing_is_said_or_recorded(line: Line) -> None:
    [a] = invitees(1)
    await line.text(ORGANIZER, a)
    name = line.active().id
    document = ElementTree.fromstring(await line.call(a, "c-a"))
    assert "recorded" not in " ".join(v.text or "" for v in document.findall("SpeakSentence"))
    assert (await created(line, name)).status == 204


async def test_the_recap_links_the_recording_and_the_link_streams_it(
        start_line: StartLine) -> None:
    clock = Clock()
    line = await recorded_line(start_line, clock=clock)
    [a] = invitees(1)
    await line.text(ORGANIZER, a)
    name = line.active().id
    await created(line, name)
    await line.join(name, a, "c-a", T0, "conf-r1")
    await line.text(ORGANIZER, "bye")
    await available(line, name)  # before Bandwidth says the conference completed
    await line.leave(name, a, "c-a", "2026-11-25T10:05:00.000Z", "conf-r1")
    await line.conference("conferenceCompleted", name, "conf-r1", "2026-11-25T10:05:01.000Z")
    [recap] = await wait_for(lambda: [t for t in line.fake.texts_to(ORGANIZER)
                                      if t["text"].startswith("Conference ended")])
    link = link_in(recap["text"])
    assert link.startswith("https://confcall.example.com/recordings/")
    assert len(link.rsplit("/", 1)[1]) >= 22  # 128 random bits

    path = "/recordings/" + link.rsplit("/", 1)[1]
    whole = await line.client.get(path)
    audio = await whole.read()
    assert whole.status == 200 and audio[:4] == b"RIFF"
    assert audio == line.fake.recordings["r-1"]
    part = await line.client.get(path, headers={"Range": "bytes=0-99"})
    assert part.status == 206 and len(await part.read()) == 100
    assert part.headers["Content-Range"].startswith("bytes 0-99/")
    assert line.fake.media_requests == ["", "bytes=0-99"]

    clock.advance(31 * 86400)
    assert (await line.client.get(path)).status == 404
    assert (await line.client.get("/recordings/not-a-token")).status == 404


async def test_a_recording_after_the_recap_comes_in_a_text_of_its_own(
        start_line: StartLine) -> None:
    line = await recorded_line(start_line)
    [a] = invitees(1)
    await line.text(ORGANIZER, a)
    name = line.active().id
    await created(line, name)
    await line.join(name, a, "c-a", T0, "conf-r1")
    await line.text(ORGANIZER, "bye")
    await line.leave(name, a, "c-a", "2026-11-25T10:05:00.000Z", "conf-r1")
    await line.conference("conferenceCompleted", name, "conf-r1", "2026-11-25T10:05:01.000Z")
    [recap] = await wait_for(lambda: [t for t in line.fake.texts_to(ORGANIZER)
                                      if t["text"].startswith("Conference ended")])
    assert "The recording follows when Bandwidth has it." in recap["text"]
    body = await available(line, name)
    for _ in range(2):  # delivered again: told once
        assert (await line.post("/callbacks/voice/conference", body)).status == 204
    [follow_up] = await wait_for(lambda: [t for t in line.fake.texts_to(ORGANIZER)
                                          if t["text"].startswith("The recording of your")])
    await line.settle()
    assert len([t for t in line.fake.texts_to(ORGANIZER) if "recording of your" in t["text"]]) == 1
    assert (await line.client.get(link_in(follow_up["text"]).split(".com", 1)[1])).status == 200


async def test_a_forged_media_url_is_never_fetched_with_the_credentials(
        start_line: StartLine, aiohttp_server: Any) -> None:
    from aiohttp import web

    seen: list[str] = []

    async def steal(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.Response(body=b"x")

    thief = web.Application()
    thief.router.add_get("/{tail:.*}", steal)
    elsewhere = await aiohttp_server(thief)
    line = await recorded_line(start_line)
    [a] = invitees(1)
    await line.text(ORGANIZER, a)
    name = line.active().id
    await line.text(ORGANIZER, "bye")
    await available(line, name, media_url=str(elsewhere.make_url("/steal")))
    [notice] = await wait_for(lambda: [t for t in line.fake.texts_to(ORGANIZER)
                                       if "/recordings/" in t["text"]])
    answer = await line.client.get(link_in(notice["text"]).split(".com", 1)[1])
    assert answer.status == 404
    assert seen == []


@pytest.mark.parametrize("status", ["error", "partial"])
async def test_what_bandwidth_says_of_a_recording_is_told(start_line: StartLine,
                                                         status: str) -> None:
    line = await recorded_line(start_line)
    [a] = invitees(1)
    await line.text(ORGANIZER, a)
    name = line.active().id
    await line.text(ORGANIZER, "bye")
    await available(line, name, status=status)
    texts = await wait_for(lambda: [t["text"] for t in line.fake.texts_to(ORGANIZER)
                                    if "recording of your" in t["text"]])
    assert ("failed" in texts[0]) is (status == "error")


def test_the_recording_callback_built_is_bandwidths_shape() -> None:
    body = payloads.recording_available(
        conference="conf-1", name="confcall-1", tag="confcall-1", account_id="9900000",
        recording="r-1", media_url="https://voice.bandwidth.com/api/v2/x", started=T0,
        ended=T0)
    assert schema.problems("conferenceRecordingAvailableCallback", body) == []


async def test_recordings_lists_them(start_line: StartLine, tmp_path: Path) -> None:
    from test_cli import invoke, write_config

    line = await recorded_line(start_line)
    [a] = invitees(1)
    await line.text(ORGANIZER, a)
    name = line.active().id
    await available(line, name)
    config = str(write_config(tmp_path / "c.toml", line))
    listed = json.loads((await invoke("recordings", "--config", config, "--json")).output)
    assert [(r["conference"], r["status"], r["expired"]) for r in listed] == [
        (name, "complete", False)]
    assert listed[0]["link"].startswith("https://confcall.example.com/recordings/")
    shown = (await invoke("recordings", "--config", config)).output
    assert name in shown


async def test_a_recording_that_comes_after_a_restart_is_told_once(
        start_line: StartLine) -> None:
    first = await recorded_line(start_line)
    [a] = invitees(1)
    await first.text(ORGANIZER, a)
    name = first.active().id
    await first.text(ORGANIZER, "bye")
    await wait_for(lambda: any(t["text"].startswith("Conference ended")
                               for t in first.fake.texts_to(ORGANIZER)))
    await first.settle()
    await first.client.close()
    second = await recorded_line(start_line)
    body = await available(second, name)
    assert (await second.post("/callbacks/voice/conference", body)).status == 204
    await wait_for(lambda: [t for t in second.fake.texts_to(ORGANIZER)
                            if t["text"].startswith("The recording of your")])
    await second.settle()
    assert len([t for t in second.fake.texts_to(ORGANIZER)
                if t["text"].startswith("The recording of your")]) == 1


async def test_simulate_call_can_say_a_recording_is_ready(start_line: StartLine,
                                                          tmp_path: Path) -> None:
    from test_cli import invoke, write_config

    line = await recorded_line(start_line)
    [a] = invitees(1)
    await line.text(ORGANIZER, a)
    name = line.active().id
    await line.text(ORGANIZER, "bye")
    config = str(write_config(tmp_path / "c.toml", line))
    ready = await invoke("simulate-call", "--from", ORGANIZER, "--recording", name,
                         "--config", config, "--url", str(line.client.make_url("")))
    assert ready.exit_code == 0, ready.output
    await wait_for(lambda: [t for t in line.fake.texts_to(ORGANIZER)
                            if t["text"].startswith("The recording of your conference")])
