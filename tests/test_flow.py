"""The conference line end to end, over HTTP, against the fake Bandwidth."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from conftest import (
    APPLICATION_ID,
    LINE,
    ORGANIZER,
    OTHER_ORGANIZER,
    STRANGER,
    Clock,
    Line,
    StartLine,
    inbound_text,
    invitees,
    wait_for,
)
from defusedxml import ElementTree

from confcall.events import parse_time
from confcall.state import ENDED, ENDING

pytestmark = pytest.mark.both_stores

T0 = "2026-11-25T10:00:00.000Z"


def at(minutes: int, seconds: int = 0) -> str:
    return f"2026-11-25T10:{minutes:02d}:{seconds:02d}.000Z"


def conference_verb(document: str) -> Any:
    root = ElementTree.fromstring(document)
    return root.find("Conference")


async def start(line: Line, numbers: list[str], organizer: str = ORGANIZER) -> str:
    await line.text(organizer, ", ".join(numbers))
    await wait_for(lambda: len(line.fake.texts_to(organizer)) >= 1)
    conference = line.active(organizer)
    assert conference is not None
    return str(conference.id)


async def test_start_text_invites_every_number_and_confirms(line: Line) -> None:
    numbers = invitees(3)
    await line.text(ORGANIZER, f"{numbers[0]}, (201) 555-0111\n201.555.0112 bob")
    await wait_for(lambda: len(line.fake.texts) == 4)

    for number in numbers:
        [sent] = line.fake.texts_to(number)
        assert sent["text"] == (f"You have been invited by {ORGANIZER} to join a conference. "
                                f"Please call {LINE} to join")
        assert sent["to"] == [number]
        assert sent["from"] == LINE
        assert sent["applicationId"] == APPLICATION_ID
    [confirmation] = line.fake.texts_to(ORGANIZER)
    assert all(number in confirmation["text"] for number in numbers)
    assert "bob" in confirmation["text"]
    # each text carries its outbox row id, so a duplicate can be traced
    tags = sorted(int(t["tag"]) for t in line.fake.texts)
    assert tags == [row.id for row in line.store.outbox()]


async def test_numbers_separated_only_by_spaces_are_all_invited(line: Line) -> None:
    await line.text(ORGANIZER, "(201) 555-0112 201.555.0113 201-555-0114 1 201 555 0115")
    await wait_for(lambda: len(line.fake.texts) == 5)
    assert line.active().invitees == tuple(invitees(4, start=112))
    [confirmation] = line.fake.texts_to(ORGANIZER)
    assert "Not phone numbers" not in confirmation["text"]


async def test_duplicates_and_the_line_itself_are_dropped(line: Line) -> None:
    a, b = invitees(2)
    await line.text(ORGANIZER, f"{a} {a} {LINE} {b} (201) 555-{a[-4:]}")
    await wait_for(lambda: len(line.fake.texts) == 3)
    assert line.active().invitees == (a, b)


async def test_no_readable_number_refuses_and_creates_nothing(line: Line) -> None:
    await line.text(ORGANIZER, "hello there +1 555 555 0100")
    [reply] = await wait_for(lambda: line.fake.texts_to(ORGANIZER))
    assert reply["text"].startswith("No phone numbers found")
    assert "+12015550123" in reply["text"]  # says what a valid message looks like
    assert line.active() is None
    await line.settle()
    assert len(line.fake.texts) == 1


async def test_too_many_numbers_refuses_and_creates_nothing(line: Line) -> None:
    await line.text(ORGANIZER, " ".join(invitees(11)))
    [reply] = await wait_for(lambda: line.fake.texts_to(ORGANIZER))
    assert reply["text"].startswith("Too many numbers: you sent 11, the limit is 10")
    assert line.active() is None
    await line.settle()
    assert len(line.fake.texts) == 1


async def test_a_stranger_gets_no_reply(line: Line) -> None:
    await line.text(STRANGER, " ".join(invitees(2)))
    await line.settle()
    assert line.fake.texts == []
    assert line.store.db.execute("SELECT sender FROM inbound").fetchall()[0][0] == STRANGER


async def test_invited_caller_joins_and_others_are_hung_up_on(line: Line) -> None:
    a, b = invitees(2)
    name = await start(line, [a, b])

    verb = conference_verb(await line.call(a, "c-a"))
    assert verb.text == name
    assert verb.get("tag") == name
    assert verb.get("conferenceEventUrl") == (
        "https://confcall.example.com/callbacks/voice/conference")
    assert verb.get("username") is None

    refused = ElementTree.fromstring(await line.call(STRANGER, "c-x"))
    assert refused.find("Conference") is None
    assert refused.find("Hangup") is not None
    assert [child.tag for child in refused] == ["SpeakSentence", "Hangup"]


async def test_join_bxml_carries_callback_credentials(start_line: StartLine) -> None:
    line = await start_line(server__callback_username="bw", server__callback_password="s3cret")
    [a] = invitees(1)
    name = await start(line, [a])
    verb = conference_verb(await line.call(a, "c-a"))
    assert (verb.text, verb.get("username"), verb.get("password")) == (name, "bw", "s3cret")


async def test_invited_to_two_conferences_joins_the_newest(line: Line) -> None:
    a, b = invitees(2)
    await start(line, [a])
    newer = await start(line, [a, b], organizer=OTHER_ORGANIZER)
    assert conference_verb(await line.call(a, "c-a")).text == newer


async def test_members_are_tracked(line: Line) -> None:
    a, b = invitees(2)
    name = await start(line, [a, b])
    await line.conference("conferenceCreated", name, "conf-77", T0)
    await line.join(name, a, "c-a", at(0, 1), "conf-77")
    await line.join(name, b, "c-b", at(0, 5), "conf-77")
    await line.leave(name, b, "c-b", at(1, 5), "conf-77")
    conference = line.active()
    assert conference.bandwidth_id == "conf-77"
    members = {m.number: m for m in conference.members}
    assert members[a].left_at is None
    assert members[b].left_at - members[b].joined_at == 60


async def test_end_text_forwards_once_completes_and_recaps(line: Line) -> None:
    a, b, c = invitees(3)
    name = await start(line, [a, b, c])
    await line.conference("conferenceCreated", name, "conf-9", T0)
    await line.join(name, a, "c-a", at(0, 0), "conf-9")
    await line.join(name, b, "c-b", at(2, 0), "conf-9")
    await line.settle()
    before = len(line.fake.texts)

    await line.text(ORGANIZER, "Thanks all — notes to follow 📝")
    await wait_for(lambda: line.fake.completed == ["conf-9"])
    forwards = line.fake.texts[before:]
    assert forwards == [{
        "applicationId": APPLICATION_ID, "to": [a, b, c], "from": LINE,
        "text": "Thanks all — notes to follow 📝", "tag": forwards[0]["tag"],
    }]
    assert line.store.conference(name).status == ENDING

    # Bandwidth drops every call, then says the conference completed
    await line.leave(name, a, "c-a", at(10, 0), "conf-9")
    await line.leave(name, b, "c-b", at(10, 0), "conf-9")
    await line.conference("conferenceCompleted", name, "conf-9", at(10, 1))
    [recap] = await wait_for(lambda: [t for t in line.fake.texts_to(ORGANIZER)
                                      if "ended" in t["text"]])
    assert recap["text"] == (f"Conference ended after 10m 01s. Joined: {a} (10m 00s), "
                             f"{b} (8m 00s). Never joined: {c}. For 5 minutes, a text from "
                             "you with no phone number still goes to everyone invited.")
    assert line.store.conference(name).status == ENDED
    assert line.active() is None


async def test_next_text_after_the_end_starts_a_new_conference(line: Line) -> None:
    a, b = invitees(2)
    first = await start(line, [a])
    await line.text(ORGANIZER, "bye")
    await line.settle()
    await line.text(ORGANIZER, b)
    await wait_for(lambda: line.fake.texts_to(b))
    assert line.active().id != first
    assert line.active().invitees == (b,)


async def test_end_looks_the_conference_up_by_name_when_its_id_is_unknown(line: Line) -> None:
    [a] = invitees(1)
    name = await start(line, [a])
    # the member joined before conferenceCreated reached us
    await line.join(name, a, "c-a", at(0, 0), bandwidth_id="conf-x")
    line.store.db.execute("UPDATE conferences SET bandwidth_id = NULL")
    bandwidth_id = line.fake.running_conference(name)
    await line.text(ORGANIZER, "done")
    await wait_for(lambda: line.fake.completed == [bandwidth_id])
    assert line.fake.lookups == [name]


async def test_nobody_joined_just_forwards_and_recaps(line: Line) -> None:
    a, b = invitees(2)
    name = await start(line, [a, b])
    await line.text(ORGANIZER, "never mind")
    await wait_for(lambda: any("Nobody joined" in t["text"] for t in line.fake.texts))
    await line.settle()
    assert line.fake.completed == []
    assert line.fake.lookups == []
    assert [t["to"] for t in line.fake.texts if t["text"] == "never mind"] == [[a, b]]
    assert line.store.conference(name).status == ENDED


async def test_forward_is_split_by_the_group_limit(start_line: StartLine) -> None:
    line = await start_line(conference__max_invites=15)
    numbers = invitees(15)
    await start(line, numbers)
    await line.text(ORGANIZER, "wrap up")
    await wait_for(lambda: len([t for t in line.fake.texts if t["text"] == "wrap up"]) == 2)
    groups = [t["to"] for t in line.fake.texts if t["text"] == "wrap up"]
    assert groups == [numbers[:10], numbers[10:]]


async def test_recap_goes_after_60_seconds_without_conference_completed(
    start_line: StartLine, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    line = await start_line(clock=clock)
    a, b = invitees(2)
    name = await start(line, [a, b])
    await line.conference("conferenceCreated", name, "conf-5", T0)
    await line.join(name, a, "c-a", at(0, 0), "conf-5")
    await line.text(ORGANIZER, "bye")
    await wait_for(lambda: line.fake.completed == ["conf-5"])
    await asyncio.sleep(0.2)
    assert not [t for t in line.fake.texts_to(ORGANIZER) if "ended" in t["text"]]

    clock.advance(61)
    line.wake()
    [recap] = await wait_for(lambda: [t for t in line.fake.texts_to(ORGANIZER)
                                      if "ended" in t["text"]])
    assert f"Never joined: {b}." in recap["text"]
    conference = line.store.conference(name)
    assert conference.status == ENDED
    assert all(m.left_at is not None for m in conference.members)
    assert f"{name} ended: Bandwidth said nothing of its end in time" in [
        r.getMessage() for r in caplog.records]


async def test_status_callbacks_update_the_text_they_belong_to(line: Line, examples: Any) -> None:
    a, b = invitees(2)
    name = await start(line, [a, b])
    await line.settle()
    invites = {t["to"][0]: t for t in line.fake.texts if t["to"] != [ORGANIZER]}
    delivered = examples("messaging-callback.smsMessageDelivered.json")
    delivered[0]["to"] = a
    delivered[0]["message"].update(id="m-a", to=[a], tag=invites[a]["tag"])
    failed = examples("messaging-callback.messageFailed.json")
    failed[0]["to"] = b
    failed[0]["message"].update(id="m-b", to=[b], tag=invites[b]["tag"])
    for body in (delivered, failed, delivered):
        answer = await line.post("/callbacks/messaging", body)
        assert answer.status == 200
    states = {(d.recipient, d.state, d.detail) for d in line.store.deliveries(name)
              if d.purpose == "invite"}
    assert states == {(a, "delivered", "Message delivered to handset."),
                      (b, "failed", "4432: forbidden to country")}


async def test_replayed_callbacks_change_and_send_nothing(line: Line) -> None:
    a, b = invitees(2)
    start_body = await line.post("/callbacks/messaging", [])  # (warm-up: a 400)
    assert start_body.status == 400
    body = inbound_text(ORGANIZER, f"{a} {b}", message_id="m-start")
    for _ in range(3):
        assert (await line.post("/callbacks/messaging", body)).status == 200
    await line.settle()
    assert len(line.fake.texts) == 3
    name = line.active().id

    for _ in range(2):
        await line.join(name, a, "c-a", at(0, 0))
        await line.leave(name, a, "c-a", at(1, 0))
    assert len(line.store.conference(name).members) == 1

    end = inbound_text(ORGANIZER, "bye", message_id="m-end")
    for _ in range(3):
        assert (await line.post("/callbacks/messaging", end)).status == 200
    await line.settle()
    assert len([t for t in line.fake.texts if t["text"] == "bye"]) == 1
    assert line.store.db.execute("SELECT COUNT(*) FROM conferences").fetchone()[0] == 1


async def test_concurrent_duplicate_deliveries_are_processed_once(line: Line) -> None:
    a, b = invitees(2)
    body = inbound_text(ORGANIZER, f"{a} {b}", message_id="m-race")
    answers = await asyncio.gather(*(line.post("/callbacks/messaging", body) for _ in range(10)))
    assert {a.status for a in answers} == {200}
    await line.settle()
    assert len(line.fake.texts) == 3


async def test_bandwidth_failing_then_recovering(line: Line) -> None:
    line.fake.fail("messages", 2, 500)
    line.fake.fail("messages", 1, 429, retry_after="0")
    line.fake.fail("messages", 1, drop=True)
    a, b = invitees(2)
    await line.text(ORGANIZER, f"{a} {b}")
    await wait_for(lambda: len(line.fake.texts) == 3, timeout=15)
    await line.settle()
    assert sorted(t["to"][0] for t in line.fake.texts) == sorted([a, b, ORGANIZER])
    assert all(row.status == "sent" for row in line.store.outbox())


async def test_slow_bandwidth_is_retried_after_the_timeout(start_line: StartLine) -> None:
    line = await start_line(outbox__request_timeout=1)
    line.fake.fail("messages", 1, 200, delay=1.5)
    [a] = invitees(1)
    await line.text(ORGANIZER, a)
    await wait_for(lambda: len(line.fake.texts) == 2, timeout=10)
    assert any("TimeoutError" in (row.last_error or "") for row in line.store.outbox())


async def test_webhooks_answer_while_bandwidth_is_down(line: Line) -> None:
    line.fake.fail("*", 1000, 503)
    for i in range(5):
        await line.text(ORGANIZER, invitees(1, start=120 + i)[0])
        await line.text(ORGANIZER, "bye")
    assert line.store.backlog() > 0
    assert line.fake.texts == []


async def test_a_refused_invitation_fails_and_tells_the_organizer_once(line: Line) -> None:
    a, b = invitees(2)
    line.fake.refuse_numbers.add(b)
    name = await start(line, [a, b])
    notice = await wait_for(lambda: [t for t in line.fake.texts_to(ORGANIZER)
                                     if t["text"].startswith("Could not invite")])
    await line.settle()
    assert len(notice) == 1
    assert b in notice[0]["text"]
    [failed] = [r for r in line.store.outbox(name) if r.status == "failed"]
    assert failed.recipients == (b,)
    assert "valid E164 number" in (failed.last_error or "")


async def test_texts_pending_at_a_restart_are_sent_exactly_once(
    start_line: StartLine, aiohttp_client: Any
) -> None:
    first = await start_line()
    first.fake.fail("*", 10_000, 503)
    numbers = invitees(4)
    await first.text(ORGANIZER, " ".join(numbers))
    await wait_for(lambda: all(r.attempts > 0 for r in first.store.outbox()))
    await first.client.close()  # the server stops with five texts unsent

    first.fake.faults.clear()
    second = await start_line()
    await wait_for(lambda: len(second.fake.texts) == 5)
    await second.settle()
    await asyncio.sleep(0.3)
    assert sorted(t["to"][0] for t in second.fake.texts) == sorted([*numbers, ORGANIZER])
    assert len({t["tag"] for t in second.fake.texts}) == 5


async def test_a_leave_that_overtakes_its_join_does_not_leave_the_call_open(line: Line) -> None:
    [a] = invitees(1)
    name = await start(line, [a])
    await line.leave(name, a, "c-a", at(5, 0))
    await line.join(name, a, "c-a", at(1, 0))
    [member] = line.store.conference(name).members
    assert (member.joined_at, member.left_at) == (parse_time(at(1, 0)), parse_time(at(5, 0)))


async def test_end_while_members_join_and_leave_in_a_crowd(line: Line) -> None:
    numbers = invitees(10)
    name = await start(line, numbers)
    await line.conference("conferenceCreated", name, "conf-1", T0)
    callbacks = []
    for i in range(25):  # 25 calls join and leave, 50 callbacks, all at once with the end
        number = numbers[i % 10]
        callbacks.append(line.join(name, number, f"c-{i}", at(1, i)))
        callbacks.append(line.leave(name, number, f"c-{i}", at(2, i)))
    callbacks.insert(20, line.text(ORGANIZER, "ending now"))
    await asyncio.gather(*callbacks)
    await line.conference("conferenceCompleted", name, "conf-1", at(3, 0))
    # a join delivered late, after the end, changes nothing
    await line.join(name, numbers[0], "c-late", at(4, 0))
    conference = line.store.conference(name)
    assert conference.status == ENDED
    assert all(m.left_at is not None for m in conference.members)
    assert "c-late" not in {m.call_id for m in conference.members}
    await line.settle()
    assert len([t for t in line.fake.texts if t["text"] == "ending now"]) == 1
    assert line.fake.completed == ["conf-1"]


async def test_the_same_end_text_delivered_concurrently_ends_once(line: Line) -> None:
    a, b = invitees(2)
    name = await start(line, [a, b])
    await line.conference("conferenceCreated", name, "conf-1", T0)
    await line.join(name, a, "c-a", at(0, 0))
    body = inbound_text(ORGANIZER, "bye", message_id="m-end")
    answers = await asyncio.gather(*(line.post("/callbacks/messaging", body)
                                     for _ in range(10)))
    assert {answer.status for answer in answers} == {200}
    await line.settle()
    assert len([t for t in line.fake.texts if t["text"] == "bye"]) == 1
    assert line.fake.completed == ["conf-1"]
    rows = [r for r in line.store.outbox(name) if r.kind == "complete"]
    assert len(rows) == 1


async def test_emoji_text_of_1600_characters_is_forwarded_intact(line: Line) -> None:
    [a] = invitees(1)
    await start(line, [a])
    closing = ("Thanks 🎉 — " * 200)[:1600]
    await line.text(ORGANIZER, closing)
    [forward] = await wait_for(lambda: [t for t in line.fake.texts if t["to"] == [a]
                                        and t["text"] != line.fake.texts_to(a)[0]["text"]])
    assert forward["text"] == closing


async def test_thousands_of_numbers_in_one_text_are_refused_quickly(line: Line) -> None:
    numbers = " ".join(f"+1201555{i:04d}" for i in range(3000))
    await line.text(ORGANIZER, numbers[:60_000])
    [reply] = await wait_for(lambda: line.fake.texts_to(ORGANIZER))
    assert reply["text"].startswith("Too many numbers: you sent more than 100, the limit is 10")
    assert line.active() is None


async def test_retry_delays_are_capped(start_line: StartLine) -> None:
    line = await start_line(outbox__max_retry_delay=2)
    line.fake.fail("messages", 1, 429, retry_after="3600")
    [a] = invitees(1)
    await line.text(ORGANIZER, a)
    await wait_for(lambda: len(line.fake.texts) == 2, timeout=8)


async def test_recap_goes_at_once_when_everyone_had_hung_up(
        start_line: StartLine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()  # never advanced: the recap must not wait for the minute to pass
    line = await start_line(clock=clock)
    a, b = invitees(2)
    name = await start(line, [a, b])
    await line.conference("conferenceCreated", name, "conf-6", T0)
    await line.join(name, a, "c-a", at(0, 0), "conf-6")
    await line.leave(name, a, "c-a", at(3, 0), "conf-6")
    await line.conference("conferenceCompleted", name, "conf-6", at(3, 1))  # the last left

    await line.text(ORGANIZER, "thanks")
    [recap] = await wait_for(lambda: [t for t in line.fake.texts_to(ORGANIZER)
                                      if "ended" in t["text"]])
    assert f"Joined: {a} (3m 00s). Never joined: {b}." in recap["text"]
    assert line.fake.completed == []
    assert line.store.conference(name).status == ENDED
    assert f"{name} ended" in [r.getMessage() for r in caplog.records]


async def test_a_call_that_reaches_bandwidth_after_the_end_is_dropped(line: Line) -> None:
    a, b = invitees(2)
    name = await start(line, [a, b])
    assert "<Conference" in await line.call(a, "c-a")  # answered while the call was on
    await line.text(ORGANIZER, "never mind")  # Bandwidth has not created it yet
    await wait_for(lambda: any("Nobody joined" in t["text"] for t in line.fake.texts))

    await line.conference("conferenceCreated", name, "conf-late", T0)
    await wait_for(lambda: line.fake.completed == ["conf-late"])
    await line.join(name, a, "c-a", at(0, 0), "conf-late")
    await line.settle()
    assert line.store.conference(name).members == ()  # not a member of the ended call


async def test_texts_while_ending_reach_the_same_people_not_a_new_conference(
        line: Line) -> None:
    a, b = invitees(2)
    name = await start(line, [a, b])
    await line.conference("conferenceCreated", name, "conf-3", T0)
    await line.join(name, a, "c-a", at(0, 0), "conf-3")
    await line.text(ORGANIZER, "Thanks all")
    await line.text(ORGANIZER, "notes are in the doc")
    await line.text(ORGANIZER, f"and call {a} later")  # holds a number: still a forward
    await line.settle()
    forwarded = [t["text"] for t in line.fake.texts if t["to"] == [a, b]]
    assert forwarded == ["Thanks all", "notes are in the doc", f"and call {a} later"]
    assert line.store.db.execute("SELECT COUNT(*) FROM conferences").fetchone()[0] == 1
    assert not [t for t in line.fake.texts_to(ORGANIZER) if "No phone numbers" in t["text"]]
    [confirmation] = [t for t in line.fake.texts_to(ORGANIZER)
                      if t["text"].startswith("Conference started")]
    assert "as does any text you send until the recap" in confirmation["text"]


async def test_a_text_without_numbers_just_after_the_recap_reaches_the_same_people(
        start_line: StartLine) -> None:
    clock = Clock()
    line = await start_line(clock=clock)
    a, b = invitees(2)
    await start(line, [a, b])
    await line.text(ORGANIZER, "Thanks all")  # nobody joined: the recap goes at once
    [recap] = await wait_for(lambda: [t for t in line.fake.texts_to(ORGANIZER)
                                      if t["text"].startswith("Conference ended")])
    assert recap["text"].endswith(" For 5 minutes, a text from you with no phone number "
                                  "still goes to everyone invited.")
    to_them = lambda: [t["text"] for t in line.fake.texts if t["to"] == [a, b]]  # noqa: E731
    clock.advance(60)
    await line.text(ORGANIZER, "notes are in the doc")
    await wait_for(lambda: to_them() == ["Thanks all", "notes are in the doc"])

    clock.advance(250)  # 310 s after the recap: a text without numbers is a start again
    await line.text(ORGANIZER, "one more thing")
    await wait_for(lambda: [t for t in line.fake.texts_to(ORGANIZER)
                            if t["text"].startswith("No phone numbers found")])
    [c] = invitees(1, start=60)
    await line.text(ORGANIZER, f"and {c}")  # holds a number: a new call, as ever
    await wait_for(lambda: line.active() is not None)
    await line.settle()
    assert to_them() == ["Thanks all", "notes are in the doc"]
    assert line.active().invitees == (c,)


async def test_a_picture_alone_ends_the_call_and_is_forwarded(line: Line) -> None:
    a, b = invitees(2)
    await start(line, [a, b])
    picture = "https://messaging.bandwidth.com/api/v2/users/9900000/media/pic.jpg"
    body = inbound_text(ORGANIZER, "")
    body[0]["message"]["media"] = [picture]
    assert (await line.post("/callbacks/messaging", body)).status == 200
    [forward] = await wait_for(lambda: [t for t in line.fake.texts if t["to"] == [a, b]])
    assert forward["media"] == [picture] and forward["text"] == ""


async def test_the_organizer_and_the_line_are_never_invited(line: Line) -> None:
    [a] = invitees(1)
    await line.text(ORGANIZER, f"{a} {ORGANIZER} {LINE}")
    [confirmation] = await wait_for(lambda: line.fake.texts_to(ORGANIZER))
    await line.settle()
    assert line.active().invitees == (a,)
    assert f"You ({ORGANIZER}) are not invited" in confirmation["text"]
    assert f"{LINE} is this line's number" in confirmation["text"]
    assert [t["to"] for t in line.fake.texts] == [[a], [ORGANIZER]]
