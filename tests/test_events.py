"""Parsing Bandwidth's callbacks, using Bandwidth's own examples."""

from __future__ import annotations

import pytest
from fake_bandwidth import fixture

from confcall import events
from confcall.events import BadEvent, parse_messaging, parse_voice


def test_inbound_text() -> None:
    [event] = parse_messaging(fixture("messaging-callback.smsMessageReceived.json"))
    assert isinstance(event, events.TextReceived)
    assert (event.sender, event.line, event.text) == ("+12345678901", "+12345678902",
                                                      "Hey, check out this SMS!")
    assert event.message_id == "14762070468292kw2fuqty55yp2b2"
    assert event.application_id == "93de2206-9669-4e07-948d-329f4b722ee2"


@pytest.mark.parametrize(("name", "status"), [
    ("messaging-callback.smsMessageDelivered.json", "message-delivered"),
    ("messaging-callback.groupMmsMessageDelivered.json", "message-delivered"),
    ("messaging-callback.messageFailed.json", "message-failed"),
    ("messaging-callback.messageSending.json", "message-sending"),
    ("messaging-callback.messageSent.json", "message-sent"),
])
def test_status_callbacks(name: str, status: str) -> None:
    [event] = parse_messaging(fixture(name))
    assert isinstance(event, events.TextStatus)
    assert event.status == status


def test_failed_status_carries_the_error_code() -> None:
    [event] = parse_messaging(fixture("messaging-callback.messageFailed.json"))
    assert isinstance(event, events.TextStatus)
    assert (event.error_code, event.description) == (4432, "forbidden to country")


def test_status_for_each_recipient_of_a_group_is_its_own_event() -> None:
    first = fixture("messaging-callback.groupMmsMessageDelivered.json")
    second = fixture("messaging-callback.groupMmsMessageDelivered.json")
    second[0]["to"] = "+12345678903"
    [a], [b] = parse_messaging(first), parse_messaging(second)
    assert a.key != b.key


@pytest.mark.parametrize(("kind", "cls"), [
    ("initiate", events.CallInitiated),
    ("disconnect", events.CallDisconnected),
    ("conferenceCreated", events.ConferenceCreated),
    ("conferenceMemberJoin", events.MemberJoined),
    ("conferenceMemberExit", events.MemberLeft),
    ("conferenceCompleted", events.ConferenceCompleted),
    ("conferenceRedirect", events.Unused),
    ("answer", events.CallAnswered),
])
def test_voice_events(kind: str, cls: type) -> None:
    assert isinstance(parse_voice(fixture(f"voice-callback.{kind}.json")), cls)


def test_replays_share_a_key_and_different_events_do_not() -> None:
    join = fixture("voice-callback.conferenceMemberJoin.json")
    assert parse_voice(join).key == parse_voice(dict(join)).key
    later = {**join, "eventTime": "2022-06-17T22:30:00.000Z"}
    assert parse_voice(later).key != parse_voice(join).key
    exit_ = {**join, "eventType": "conferenceMemberExit"}
    assert parse_voice(exit_).key != parse_voice(join).key


def test_times_are_epoch_seconds() -> None:
    assert events.parse_time("1970-01-01T00:01:00.000Z") == 60
    with pytest.raises(BadEvent):
        events.parse_time("yesterday")
    with pytest.raises(BadEvent):
        events.parse_time("2022-06-17T22:19:40")


@pytest.mark.parametrize("body", [
    {}, [], "x", {"eventType": "initiate"}, {"eventType": "initiate", "eventTime": "nope",
                                               "callId": "c", "from": "+1", "to": "+1"},
    {"eventType": "conferenceMemberJoin", "eventTime": "2022-06-17T22:19:40.375Z"},
])
def test_bad_voice_bodies(body: object) -> None:
    with pytest.raises(BadEvent):
        parse_voice(body)
