"""The organizer's commands (WHO, HELP, ADD, RING) and opt-outs (STOP, START, HELP), over
HTTP against the fake Bandwidth, which checks every text and call against the spec."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import LINE, ORGANIZER, STRANGER, Line, StartLine, invitees, voice_event, wait_for
from defusedxml import ElementTree

pytestmark = pytest.mark.both_stores

T0 = "2026-11-25T10:00:00.000Z"


async def started(line: Line, numbers: list[str]) -> str:
    await line.text(ORGANIZER, " ".join(numbers))
    await line.settle()
    return str(line.active().id)


def last_to(line: Line, number: str) -> str:
    return str(line.fake.texts_to(number)[-1]["text"])


async def reply(line: Line, text: str) -> str:
    before = len(line.fake.texts_to(ORGANIZER))
    await line.text(ORGANIZER, text)
    await wait_for(lambda: len(line.fake.texts_to(ORGANIZER)) > before)
    return last_to(line, ORGANIZER)


async def test_the_confirmation_names_the_commands(line: Line) -> None:
    await started(line, invitees(1))
    confirmation = last_to(line, ORGANIZER)
    assert "Reply WHO, ADD numbers, RING or HELP; any other text ends the call" in confirmation


@pytest.mark.parametrize("word", ["WHO", "who", "Who "])
async def test_who_lists_on_the_call_left_and_never_joined(line: Line, word: str) -> None:
    a, b, c = invitees(3)
    name = await started(line, [a, b, c])
    await line.join(name, a, "c-a", T0)
    await line.join(name, b, "c-b", T0)
    await line.leave(name, b, "c-b", "2026-11-25T10:01:00.000Z")
    answer = await reply(line, word)
    assert answer.startswith(f"On the call: {a} (")
    assert f"Left: {b}." in answer and f"Never joined: {c}." in answer
    assert line.active() is not None  # a command does not end the call
    assert not [t for t in line.fake.texts if t["to"] == [a, b, c]]  # nothing forwarded


async def test_help_lists_every_command(line: Line) -> None:
    await started(line, invitees(1))
    answer = await reply(line, "help")
    for command in ("WHO", "ADD numbers", "RING", "STOP or END"):
        assert command in answer
    assert line.active() is not None


async def test_a_command_word_in_a_sentence_ends_the_call(line: Line) -> None:
    [a] = invitees(1)
    await started(line, [a])
    await line.text(ORGANIZER, "who is taking notes? thanks all")
    await wait_for(lambda: line.active() is None)
    await line.settle()
    assert line.fake.texts_to(a)[-1]["text"] == "who is taking notes? thanks all"


async def test_add_invites_more_and_they_may_join(line: Line) -> None:
    a, b, c = invitees(3)
    name = await started(line, [a])
    answer = await reply(line, f"ADD {b}, {c} {a}")
    assert answer.startswith(f"Added: {b}, {c}.") and f"Already invited: {a}." in answer
    await line.settle()
    assert line.active().invitees == (a, b, c)
    assert line.fake.texts_to(b)[0]["text"].startswith(f"You have been invited by {ORGANIZER}")
    joined = ElementTree.fromstring(await line.call(c, "c-c")).find("Conference")
    assert joined is not None and joined.text == name


async def test_add_keeps_to_the_invite_limit(start_line: StartLine) -> None:
    line = await start_line(conference__max_invites=2)
    a, b, c = invitees(3)
    await started(line, [a, b])
    answer = await reply(line, f"add {c}")
    assert answer.startswith("Too many: that makes 3 invited, the limit is 2.")
    assert line.active().invitees == (a, b)


async def test_ring_calls_everyone_not_on_the_call_and_a_person_joins(line: Line) -> None:
    a, b, c = invitees(3)
    name = await started(line, [a, b, c])
    await line.join(name, a, "c-a", T0)
    answer = await reply(line, "RING")
    assert answer == f"Ringing {b}, {c}."
    await wait_for(lambda: len(line.fake.placed) == 2, timeout=5)
    placed = {call["to"]: call for call in line.fake.placed}
    assert set(placed) == {b, c}
    call = placed[b]
    assert call["from"] == LINE and call["tag"] == name
    assert call["answerUrl"] == "https://confcall.example.com/callbacks/voice/answer"
    assert call["machineDetection"]["mode"] == "sync"

    answered = voice_event("answer", **{"from": LINE, "to": b, "callId": "c-b", "tag": name,
                                        "machineDetectionResult": {"value": "human"}})
    verb = ElementTree.fromstring(await (await line.post(
        "/callbacks/voice/answer", answered)).text()).find("Conference")
    assert verb is not None and verb.text == name
    machine = voice_event("answer", **{"from": LINE, "to": c, "callId": "c-c", "tag": name,
                                       "machineDetectionResult": {"value": "answering-machine"}})
    document = ElementTree.fromstring(await (await line.post(
        "/callbacks/voice/answer", machine)).text())
    assert document.find("Conference") is None and document.find("Hangup") is not None
    assert LINE in document.find("SpeakSentence").text


async def test_ring_one_number_and_not_one_not_invited(line: Line) -> None:
    a, b = invitees(2)
    await started(line, [a, b])
    assert await reply(line, f"RING {b}") == f"Ringing {b}."
    await wait_for(lambda: [c["to"] for c in line.fake.placed] == [b])
    answer = await reply(line, f"ring {STRANGER}")
    assert answer.startswith(f"{STRANGER} is not invited: ADD {STRANGER} first")
    await line.settle()
    assert len(line.fake.placed) == 1


async def test_ring_without_a_voice_application_tells_the_organizer(
        start_line: StartLine) -> None:
    line = await start_line(bandwidth__voice_application_id="")
    [a] = invitees(1)
    await started(line, [a])
    await line.text(ORGANIZER, "RING")
    notice = await wait_for(lambda: [t for t in line.fake.texts_to(ORGANIZER)
                                     if t["text"].startswith(f"Could not ring {a}")])
    assert "voice_application_id" in notice[0]["text"]
    assert line.fake.placed == []


async def test_a_refused_call_tells_the_organizer_once(line: Line) -> None:
    [a] = invitees(1)
    await started(line, [a])
    line.fake.fail("calls", 1, 400)
    await line.text(ORGANIZER, "RING")
    await wait_for(lambda: [t for t in line.fake.texts_to(ORGANIZER)
                            if t["text"].startswith(f"Could not ring {a}: Bandwidth answered 400")])
    await line.settle()
    assert len([t for t in line.fake.texts_to(ORGANIZER) if "Could not ring" in t["text"]]) == 1


async def test_ring_places_calls_one_a_second(line: Line) -> None:
    numbers = invitees(3)
    await started(line, numbers)
    await line.text(ORGANIZER, "RING")
    await wait_for(lambda: len(line.fake.placed) == 3, timeout=6)
    arrived = line.fake.call_arrivals
    assert arrived[2] - arrived[0] >= 1.9  # Bandwidth's default: one call a second


# --- opt-outs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["STOP", "stop", "Unsubscribe", "CANCEL", "END", "QUIT",
                                  "STOPALL"])
async def test_stop_opts_out_once_and_the_next_conference_skips_the_number(
        line: Line, word: str) -> None:
    a, b = invitees(2)
    await line.text(a, word)
    [confirmation] = await wait_for(lambda: line.fake.texts_to(a))
    assert confirmation["text"].startswith(f"You will get no more texts from {LINE}.")
    await line.text(ORGANIZER, f"{a} {b}")
    await line.settle()
    assert line.active().invitees == (b,)
    assert len(line.fake.texts_to(a)) == 1  # no invitation
    started_text = next(t["text"] for t in line.fake.texts_to(ORGANIZER)
                        if t["text"].startswith("Conference started"))
    assert f"{a} has opted out of texts from this line: not invited." in started_text


async def test_start_undoes_stop_and_help_says_what_the_line_is(line: Line) -> None:
    [a] = invitees(1)
    for word in ("STOP", "start", "HELP"):
        await line.text(a, word)
    await wait_for(lambda: len(line.fake.texts_to(a)) == 3)
    texts = [t["text"] for t in line.fake.texts_to(a)]
    assert texts[1].startswith(f"You will get texts from {LINE} again")
    assert texts[2].startswith(f"{LINE} is a conference line")
    await line.text(ORGANIZER, a)
    await wait_for(lambda: len(line.fake.texts_to(a)) == 4)  # invited again


async def test_a_stop_after_the_invitation_keeps_the_forward_from_them(line: Line) -> None:
    a, b = invitees(2)
    await started(line, [a, b])
    await line.text(b, "STOP")
    await line.settle()
    await line.text(ORGANIZER, "thanks all")
    await wait_for(lambda: [t for t in line.fake.texts if t["text"] == "thanks all"])
    [forward] = [t for t in line.fake.texts if t["text"] == "thanks all"]
    assert forward["to"] == [a]


async def test_a_text_queued_before_a_stop_does_not_go_to_them(line: Line) -> None:
    a, b = invitees(2)
    line.fake.fail("messages", 100, 503)
    await line.text(ORGANIZER, f"{a} {b}")
    await line.text(b, "STOP")  # while b's invitation waits for Bandwidth
    await asyncio.sleep(0.3)
    line.fake.faults.clear()
    line.wake()
    await wait_for(lambda: len(line.fake.texts_to(b)) == 1, timeout=10)  # the STOP's answer
    await wait_for(lambda: all(r.status != "pending" for r in line.store.outbox()), timeout=10)
    assert [t["text"][:12] for t in line.fake.texts_to(b)] == ["You will get"]
    states = {d.recipient: d.state for d in line.store.deliveries(line.active().id)
              if d.purpose == "invite"}
    assert states[b] == "opted-out"


@pytest.mark.parametrize("word", ["STOP", "end"])
async def test_an_organizers_stop_ends_the_call_without_forwarding_it(line: Line,
                                                                     word: str) -> None:
    [a] = invitees(1)
    await started(line, [a])
    await line.text(ORGANIZER, word)
    await wait_for(lambda: line.active() is None)
    await line.settle()
    assert line.fake.texts_to(a)[-1]["text"] == "The conference has ended. Thank you for joining."
    await line.text(ORGANIZER, invitees(1, start=140)[0])  # still an organizer
    await wait_for(lambda: line.active() is not None)


async def test_strangers_get_nothing_else(line: Line, examples: Any) -> None:
    await line.text(STRANGER, "hello, who is this?")
    await line.settle()
    assert line.fake.texts == []


# --- the operator's equivalents ---------------------------------------------------------------


async def test_confcall_ring_and_add_speak_for_the_organizer(line: Line, tmp_path: Any) -> None:
    from test_cli import invoke, write_config

    a, b = invitees(2)
    name = await started(line, [a])
    config = str(write_config(tmp_path / "c.toml", line))
    url = str(line.client.make_url(""))
    added = await invoke("add", b, "--config", config, "--url", url, "--json")
    assert added.exit_code == 0, added.output
    await wait_for(lambda: line.active().invitees == (a, b))
    rung = await invoke("ring", b, "--config", config, "--url", url)
    assert rung.exit_code == 0 and f"sent RING {b} as {ORGANIZER}" in rung.output
    await wait_for(lambda: [c["to"] for c in line.fake.placed] == [b])

    dialled = await invoke("simulate-call", "--from", b, "--dialled", name, "--config", config,
                           "--url", url, "--json")
    assert dialled.exit_code == 0, dialled.output
    assert '"verdict": "joined"' in dialled.output
    machine = await invoke("simulate-call", "--from", a, "--dialled", name, "--voicemail",
                           "--config", config, "--url", url)
    assert "refused" in machine.output and "Call +12015550100 to join" in machine.output


@pytest.mark.parametrize("option", [True, False])
async def test_the_organizer_hanging_up_ends_the_call_when_asked(start_line: StartLine,
                                                                option: bool) -> None:
    line = await start_line(conference__end_when_organizer_leaves=option)
    [a] = invitees(1)
    name = await started(line, [a])
    await line.join(name, ORGANIZER, "c-o", T0)
    await line.join(name, a, "c-a", T0)
    await line.leave(name, a, "c-a", "2026-11-25T10:01:00.000Z")  # not the organizer
    assert line.active() is not None
    await line.leave(name, ORGANIZER, "c-o", "2026-11-25T10:02:00.000Z")
    if option:
        await wait_for(lambda: line.active() is None)
        await line.settle()
        assert line.fake.texts_to(a)[-1]["text"] == ("The conference has ended. Thank you "
                                                     "for joining.")
    else:
        await asyncio.sleep(0.2)
        assert line.active() is not None


async def test_a_ring_cut_short_by_a_restart_calls_each_once(start_line: StartLine) -> None:
    first = await start_line()
    numbers = invitees(3)
    await started(first, numbers)
    first.fake.fail("calls", 10_000, 503)  # Bandwidth takes no call before the stop
    await first.text(ORGANIZER, "RING")
    await wait_for(lambda: any(r.kind == "call" and r.attempts for r in first.store.outbox()))
    await first.client.close()
    first.fake.faults.clear()
    second = await start_line()
    await wait_for(lambda: len(second.fake.placed) == 3, timeout=10)
    await second.settle()
    await asyncio.sleep(1.2)
    assert sorted(call["to"] for call in second.fake.placed) == numbers
