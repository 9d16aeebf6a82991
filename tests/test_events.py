"""Parsing Bandwidth's callbacks, using Bandwidth's own examples."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec
import pytest
from fake_bandwidth import FIXTURES, fixture
from hypothesis import given, settings
from hypothesis import strategies as st

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


# --- the fast path (typed decoding of the bytes) agrees with the checks above -------------

MESSAGING_FIXTURES = sorted(p.name for p in FIXTURES.glob("messaging-callback.*.json"))
VOICE_FIXTURES = sorted(p.name for p in FIXTURES.glob("voice-callback.*.json"))


def _fast_messaging(raw: bytes) -> list[events.Event] | None:
    """What the fast path alone makes of `raw`; None where it leaves it to the slow path."""
    try:
        return [events._fast_item(item) for item in events._MESSAGING.decode(raw)]
    except (msgspec.DecodeError, events._Unsure):
        return None


def _fast_voice(raw: bytes) -> events.Event | None:
    try:
        return events._fast_voice(events._VOICE.decode(raw))
    except (msgspec.DecodeError, events._Unsure):
        return None


def _outcome(read: Callable[[], Any]) -> Any:
    """What reading gives: its events, each BadEvent as its message."""
    try:
        found = read()
    except BadEvent as exc:
        return ("refused", str(exc))
    if isinstance(found, list):
        return [("refused", str(e)) if isinstance(e, BadEvent) else e for e in found]
    return found


@pytest.mark.parametrize("name", MESSAGING_FIXTURES)
def test_bandwidths_texts_take_the_fast_path_and_read_the_same(name: str) -> None:
    body = fixture(name)
    raw = json.dumps(body).encode()
    assert _fast_messaging(raw) == parse_messaging(body)
    assert events.decode_messaging(raw) == parse_messaging(body)


# what a conference line receives on every call; an answer (a call RING placed) is rare and
# read by the slow path, as a recording's callback is
SLOW_VOICE = {"voice-callback.answer.json"}


@pytest.mark.parametrize("name", VOICE_FIXTURES)
def test_bandwidths_voice_events_take_the_fast_path_and_read_the_same(name: str) -> None:
    body = fixture(name)
    raw = json.dumps(body).encode()
    assert _fast_voice(raw) == (None if name in SLOW_VOICE else parse_voice(body))
    assert events.decode_voice(raw) == parse_voice(body)


ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.just(""),
    st.just("   "), st.just("x" * 1025), st.just("2022-06-17T22:19:40.375Z"),
    st.just("2022-06-17T22:19:40"), st.just("2099-01-01T00:00:00Z"), st.just("\ud800"),
    st.just("https://example.com/a.png"), st.just("ftp://x"), st.text(max_size=8),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
MEDIA = st.one_of(  # around the bound of 10, or one that is not a URL of at most 2048
    st.lists(st.sampled_from(["https://e.com/p", "http://e.com/q"]), min_size=9, max_size=12),
    st.lists(st.sampled_from(["https://e.com/p", "ftp://e.com/r", "https://e.com/" + "x" * 2040,
                              "https://e.com/" + "x" * 2030, 5]), max_size=3))
MESSAGING_KEYS = ["type", "to", "time", "description", "errorCode", "message"]
MESSAGE_KEYS = ["id", "time", "from", "text", "applicationId", "media", "tag", "to"]
VOICE_KEYS = ["eventType", "eventTime", "callId", "from", "to", "conferenceId", "name", "tag",
              "cause"]
KINDS = st.sampled_from(["message-received", "message-delivered", "message-failed",
                         "initiate", "disconnect", "conferenceCreated", "conferenceMemberJoin",
                         "conferenceMemberExit", "conferenceCompleted", "answer", ""])


def _mutate(body: dict[str, Any], keys: list[str], data: st.DataObject) -> dict[str, Any]:
    for key in data.draw(st.lists(st.sampled_from(keys), max_size=3, unique=True)):
        if data.draw(st.booleans()):
            body.pop(key, None)
        else:
            body[key] = data.draw(MEDIA if key == "media" else st.one_of(ODD_VALUES, KINDS))
    return body


def _same_on_both_paths(body: Any) -> None:
    raw = json.dumps(body).encode()
    slow = _outcome(lambda: parse_messaging(events.loads(raw)))
    assert _outcome(lambda: events.decode_messaging(raw)) == slow
    fast = _fast_messaging(raw)
    assert fast is None or fast == slow


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(MESSAGING_FIXTURES), data=st.data())
def test_any_text_body_reads_the_same_on_both_paths(name: str, data: st.DataObject) -> None:
    body = fixture(name)
    for element in body:
        _mutate(element, MESSAGING_KEYS, data)
        if isinstance(element.get("message"), dict):
            _mutate(element["message"], MESSAGE_KEYS, data)
    if data.draw(st.booleans()):
        body.append(data.draw(st.one_of(ODD_VALUES, st.just(fixture(name)[0]))))
    _same_on_both_paths(body)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_inbound_text_reads_the_same_on_both_paths(data: st.DataObject) -> None:
    """The event acted on most: only its message's fields changed."""
    body = fixture("messaging-callback.smsMessageReceived.json")
    _mutate(body[0]["message"], MESSAGE_KEYS, data)
    _same_on_both_paths(body)


@settings(max_examples=400, deadline=None)
@given(name=st.sampled_from(VOICE_FIXTURES), data=st.data())
def test_any_voice_body_reads_the_same_on_both_paths(name: str, data: st.DataObject) -> None:
    raw = json.dumps(_mutate(fixture(name), VOICE_KEYS, data)).encode()
    slow = _outcome(lambda: parse_voice(events.loads(raw)))
    assert _outcome(lambda: events.decode_voice(raw)) == slow
    fast = _fast_voice(raw)
    assert fast is None or fast == slow


def test_half_a_character_is_made_whole_on_the_slow_path() -> None:
    body = fixture("messaging-callback.smsMessageReceived.json")
    body[0]["message"]["text"] = "a\ud83d"
    raw = json.dumps(body).encode()
    assert _fast_messaging(raw) is None  # msgspec refuses it as malformed
    [event] = events.decode_messaging(raw)
    assert isinstance(event, events.TextReceived)
    assert event.text == "a\ufffd"


URL = "https://e.com/"
TEXT_EDGES: list[tuple[str, Any]] = [
    ("media", [URL] * 10), ("media", [URL] * 11), ("media", [URL + "x" * 2034]),
    ("media", [URL + "x" * 2035]), ("media", ["ftp://e.com/"]), ("media", None), ("media", []),
    ("id", "x" * 1024), ("id", "x" * 1025), ("id", " "), ("id", ""), ("id", 5), ("from", None),
    ("applicationId", " \t"), ("text", None), ("text", ""), ("text", "x" * 70_000),
    ("text", 5), ("time", "2022-06-17T22:19:40"), ("time", "2022-06-17 22:19:40Z"),
    ("time", "20220617T221940Z"), ("time", "2022-06-17T22:19:40.375+14:00"), ("time", ""),
]


@pytest.mark.parametrize(("key", "value"), TEXT_EDGES)
def test_inbound_text_edges_read_the_same_on_both_paths(key: str, value: Any) -> None:
    body = fixture("messaging-callback.smsMessageReceived.json")
    body[0]["message"][key] = value
    _same_on_both_paths(body)


STATUS_EDGES: list[tuple[str, Any]] = [
    ("errorCode", True), ("errorCode", 1.0), ("errorCode", 10**30), ("errorCode", None),
    ("errorCode", "4432"), ("description", None), ("description", 5), ("to", "x" * 1025),
    ("time", None), ("type", "message-read"), ("type", "message-unknown"), ("type", " "),
    ("message", None), ("message", "m"),
]


@pytest.mark.parametrize(("key", "value"), STATUS_EDGES)
def test_text_status_edges_read_the_same_on_both_paths(key: str, value: Any) -> None:
    body = fixture("messaging-callback.messageFailed.json")
    body[0][key] = value
    _same_on_both_paths(body)



def read_the_long_way(value: str) -> float | str:
    """What parse_time must make of `value`: Python's reading of it once the space around
    it is gone and a trailing Z (either case) is written +00:00; else the refusal."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return f"{value[:40]!r} is not an ISO 8601 time"
    if moment.tzinfo is None:
        return f"{value[:40]!r} has no time zone"
    try:
        return moment.timestamp()
    except (OverflowError, ValueError, OSError):
        return f"{value[:40]!r} is out of range"


def parsed_time(value: str) -> float | str:
    try:
        return events.parse_time(value)
    except BadEvent as exc:
        return str(exc)


@pytest.mark.parametrize("value", [
    "2022-06-17T22:19:40.375Z", "2022-06-17T22:19:40.000375Z", "2022-06-17T22:19:40Z",
    "1969-12-31T23:59:59.999Z", "2024-02-29T12:00:00.500Z", "9999-12-31T23:59:59.999999Z",
    "0001-01-01T00:00:00.000Z", "2022-06-17T22:19:40.375z", " 2022-06-17T22:19:40.375Z",
    "2022-06-17T22:19:40.375Z ", "2022-06-17T22:19:40.375Z\n", "\t2022-06-17T22:19:40.375z",
    "2022-06-17T22:19:40.375 Z", "2022-06-17 22:19:40.375Z", "2022-06-17T22:19:40,375Z",
    "2022-06-17T22Z", "2022-06-17Z", "2022-06-17T22:19:40.375ZZ", "2022-06-17T22:19:40.375+00:00Z",
    "2022-06-17T22:19:40.375+00:00", "2022-06-17T22:19:40.375-00:00", "2022-06-17T22:19:40+0200",
    "2022-06-17T22:19:40.375", " 2022-06-17T22:19:40.375", "2023-02-29T12:00:00.500Z",
    "2022-06-17T24:00:00.000Z", "2022-06-17T23:59:60.000Z", "2022-06-17T22:19:40.٣٧٥Z",
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "Z", "", " ",
])
def test_times_read_as_they_always_were(value: str) -> None:
    """parse_time hands Bandwidth's shape to Python as it comes; whatever it comes as, the
    answer (or the refusal) is what reading it the long way gives."""
    assert parsed_time(value) == read_the_long_way(value)


@settings(max_examples=300)
@given(st.datetimes(timezones=st.none() | st.timezones()), st.sampled_from(
    ["milliseconds", "microseconds", "seconds"]), st.sampled_from(["", "Z", "z", " "]))
def test_any_time_reads_as_it_always_did(moment: datetime, timespec: str, end: str) -> None:
    value = moment.isoformat(timespec=timespec) + end
    assert parsed_time(value) == read_the_long_way(value)
