"""Bandwidth callbacks as typed events: parse(json) -> event. Pure: no I/O."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from confcall.errors import ConfcallError

MESSAGE_STATUSES = frozenset(
    {"message-sending", "message-sent", "message-delivered", "message-failed", "message-read"}
)


class BadEvent(ConfcallError):
    """A callback body that is not shaped like Bandwidth's."""


class Event(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What every callback has: the identity it is deduplicated on, and when it happened.
    (A frozen msgspec Struct: built in C, several times faster than a frozen dataclass.)"""

    key: str
    time: float


class TextReceived(Event, frozen=True):
    message_id: str
    sender: str
    line: str
    text: str
    application_id: str
    media: tuple[str, ...] = ()  # an MMS's attachments, as Bandwidth's URLs


class TextStatus(Event, frozen=True):
    message_id: str
    status: str
    recipient: str
    tag: str | None
    error_code: int | None
    description: str


class CallInitiated(Event, frozen=True):
    call_id: str
    caller: str
    line: str


class CallAnswered(Event, frozen=True):
    """Someone answered a call confcall placed (RING): `callee` picked up, or their voicemail
    did (`machine`: Bandwidth's machine detection result, e.g. "human",
    "answering-machine"; empty when it gave none)."""

    call_id: str
    callee: str
    line: str
    tag: str | None
    machine: str


class CallDisconnected(Event, frozen=True):
    call_id: str
    cause: str


class ConferenceEvent(Event, frozen=True):
    """conferenceCreated and conferenceCompleted; the base of the member events."""

    bandwidth_id: str
    name: str
    tag: str | None


class ConferenceCreated(ConferenceEvent, frozen=True):
    pass


class ConferenceCompleted(ConferenceEvent, frozen=True):
    pass


class MemberJoined(ConferenceEvent, frozen=True):
    call_id: str
    caller: str


class MemberLeft(ConferenceEvent, frozen=True):
    call_id: str
    caller: str


class RecordingAvailable(ConferenceEvent, frozen=True):
    """conferenceRecordingAvailable: Bandwidth made a recording of the conference."""

    recording_id: str
    status: str
    media_url: str
    duration: str


class Unused(Event, frozen=True):
    """A well-formed callback that confcall has no use for."""

    kind: str


EARLIEST = 946684800.0  # 2000-01-01: no callback of Bandwidth's is older
LATEST_AHEAD = 86400.0  # a clock a day fast is wrong; a time beyond that is not a time


def parse_time(value: str) -> float:
    """Bandwidth's ISO 8601 times (`2022-06-17T22:19:40.375Z`) as epoch seconds."""
    try:  # Python reads Bandwidth's own shape as it is (its Z is UTC): nothing to change
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = _iso_time(value)
    if moment.tzinfo is None:
        raise BadEvent(f"{value[:40]!r} has no time zone")
    try:
        return moment.timestamp()
    except (OverflowError, ValueError, OSError):  # year 1 at +14:00 is before year 1 in UTC
        raise BadEvent(f"{value[:40]!r} is out of range") from None


def _iso_time(value: str) -> datetime:
    """`value` as `datetime.fromisoformat` reads it once the space around it is gone and a
    trailing Z (either case) is written +00:00; BadEvent if it is not an ISO 8601 time."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise BadEvent(f"{value[:40]!r} is not an ISO 8601 time") from None


def check_time(event: Event, now: float) -> None:
    """BadEvent unless `event` happened between 2000 and a day from `now`: a join in 2099
    would make every report and recap nonsense."""
    if event.key and not EARLIEST <= event.time <= now + LATEST_AHEAD:
        shown = " " + datetime.fromtimestamp(event.time, tz=UTC).isoformat(
            timespec="seconds") if EARLIEST / 2 < event.time < 4e10 else ""
        raise BadEvent(f"event time{shown} is not between 2000 and tomorrow")


class _Fields:
    """Typed reads from one JSON object, each failure a BadEvent naming the field."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise BadEvent(f"{where} must be a JSON object")
        self.data: Mapping[str, Any] = data
        self.where = where

    def text(self, name: str, *, required: bool = True, empty: bool = False,
             limit: int | None = 1024) -> str:
        value = self.data.get(name)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (not empty and not value.strip()):
            raise BadEvent(f"{self.where}.{name} must be a non-empty string")
        if limit is not None and len(value) > limit:
            raise BadEvent(f"{self.where}.{name} is longer than {limit} characters")
        return value

    def optional(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise BadEvent(f"{self.where}.{name} must be a string")
        return value

    def time(self, name: str) -> float:
        return parse_time(self.text(name))

    def urls(self, name: str, most: int = 10) -> tuple[str, ...]:
        """A list of http(s) URLs (an MMS's media); absent is empty."""
        value = self.data.get(name)
        if value is None:
            return ()
        if not isinstance(value, list) or len(value) > most or not all(
                isinstance(v, str) and v.startswith(("https://", "http://")) and len(v) <= 2048
                for v in value):
            raise BadEvent(f"{self.where}.{name} must be a list of at most {most} URLs")
        return tuple(value)

    def obj(self, name: str) -> _Fields:
        return _Fields(self.data.get(name), f"{self.where}.{name}")


def _message_received(item: _Fields, kind: str) -> Event:
    message = item.obj("message")
    message_id = message.text("id")
    line = item.text("to")
    return TextReceived(
        key=f"m:{message_id}:{kind}:{line}",
        time=message.time("time"),
        message_id=message_id,
        sender=message.text("from"),
        line=line,
        # a message's text is bounded only by the body size limit
        text=message.text("text", required=False, empty=True, limit=None),
        application_id=message.text("applicationId"),
        media=message.urls("media"),
    )


def _message_status(item: _Fields, kind: str) -> Event:
    message = item.obj("message")
    message_id = message.text("id")
    recipient = item.text("to")
    code = item.data.get("errorCode")
    if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
        raise BadEvent("errorCode must be a whole number")
    return TextStatus(
        key=f"m:{message_id}:{kind}:{recipient}",
        time=item.time("time"),
        message_id=message_id,
        status=kind,
        recipient=recipient,
        tag=message.optional("tag"),
        error_code=code,
        description=item.text("description", required=False, empty=True, limit=None),
    )


def parse_messaging(body: Any) -> list[Event | BadEvent]:
    """A messaging callback body (always a JSON array) as one event per element, or the
    BadEvent that says why an element is not one: the others are still good."""
    if not isinstance(body, list):
        raise BadEvent("a messaging callback must be a JSON array")
    if not body:
        raise BadEvent("a messaging callback must not be empty")
    events: list[Event | BadEvent] = []
    for index, element in enumerate(body):
        try:
            item = _Fields(element, f"[{index}]")
            kind = item.text("type")
            if kind == "message-received":
                events.append(_message_received(item, kind))
            elif kind in MESSAGE_STATUSES:
                events.append(_message_status(item, kind))
            else:
                events.append(Unused(key="", time=0.0, kind=kind))
        except BadEvent as exc:
            events.append(exc)
    return events


def _conference(cls: type[ConferenceEvent]) -> Callable[[_Fields, str], Event]:
    def parse(body: _Fields, kind: str) -> Event:
        conference_id = body.text("conferenceId")
        when = body.text("eventTime")
        extra: dict[str, Any] = {}
        if issubclass(cls, (MemberJoined, MemberLeft)):
            extra = {"call_id": body.text("callId"), "caller": body.text("from")}
        return cls(
            key=f"v:{kind}:{conference_id}:{extra.get('call_id', '')}:{when}",
            time=parse_time(when),
            bandwidth_id=conference_id,
            name=body.text("name"),
            tag=body.optional("tag"),
            **extra,
        )

    return parse


def _initiate(body: _Fields, kind: str) -> Event:
    call_id = body.text("callId")
    when = body.text("eventTime")
    return CallInitiated(
        key=f"v:{kind}:{call_id}:{when}",
        time=parse_time(when),
        call_id=call_id,
        caller=body.text("from"),
        line=body.text("to"),
    )


def _answer(body: _Fields, kind: str) -> Event:
    call_id = body.text("callId")
    when = body.text("eventTime")
    detected = body.data.get("machineDetectionResult")
    machine = ""
    if isinstance(detected, dict) and isinstance(detected.get("value"), str):
        machine = detected["value"][:40]
    return CallAnswered(
        key=f"v:{kind}:{call_id}:{when}",
        time=parse_time(when),
        call_id=call_id,
        callee=body.text("to"),
        line=body.text("from"),
        tag=body.optional("tag"),
        machine=machine,
    )


def _recording(body: _Fields, kind: str) -> Event:
    recording_id = body.text("recordingId")
    when = body.text("eventTime")
    media_url = body.text("mediaUrl", limit=2048)
    if not media_url.startswith(("https://", "http://")):
        raise BadEvent("body.mediaUrl must be an http(s) URL")
    return RecordingAvailable(
        key=f"v:{kind}:{recording_id}",
        time=parse_time(when),
        bandwidth_id=body.text("conferenceId"),
        name=body.text("name"),
        tag=body.optional("tag"),
        recording_id=recording_id,
        status=body.text("status", required=False, empty=True) or "complete",
        media_url=media_url,
        duration=body.text("duration", required=False, empty=True),
    )


def _disconnect(body: _Fields, kind: str) -> Event:
    call_id = body.text("callId")
    when = body.text("eventTime")
    return CallDisconnected(
        key=f"v:{kind}:{call_id}:{when}",
        time=parse_time(when),
        call_id=call_id,
        cause=body.text("cause", required=False, empty=True),
    )


VOICE_PARSERS: dict[str, Callable[[_Fields, str], Event]] = {
    "initiate": _initiate,
    "answer": _answer,
    "disconnect": _disconnect,
    "conferenceCreated": _conference(ConferenceCreated),
    "conferenceMemberJoin": _conference(MemberJoined),
    "conferenceMemberExit": _conference(MemberLeft),
    "conferenceCompleted": _conference(ConferenceCompleted),
    "conferenceRecordingAvailable": _recording,
}


def parse_voice(body: Any) -> Event:
    """A voice callback body (one JSON object) as an event, routed on `eventType`."""
    fields = _Fields(body, "body")
    kind = fields.text("eventType")
    parser = VOICE_PARSERS.get(kind)
    if parser is None:
        fields.text("eventTime")
        return Unused(key="", time=0.0, kind=kind)
    return parser(fields, kind)


# --- from the bytes of a body -------------------------------------------------------------
#
# The fast path decodes a body straight into typed Structs shaped like Bandwidth's (fields
# confcall does not read are skipped unread) and builds the events from them. Anything it is
# not sure of (a field of another type, a failed check, JSON that msgspec refuses: half a
# UTF-16 pair, NaN) goes the slow path instead: json.loads and the checks above, which give
# the answer and the error message for every body. So the two never disagree; the fast path
# only makes the common, well-formed body cheap.


def loads(raw: bytes) -> Any:
    """`raw` as JSON, with every half a character made whole, or BadEvent saying why not."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        # UnicodeDecodeError is a ValueError; RecursionError is what deep nesting raises
        raise BadEvent(f"body is not JSON: {type(exc).__name__}") from None
    if ((b"\\u" in raw and _HALF_A_CHARACTER.search(raw))
            or (b"\xed" in raw and _HALF_A_CHARACTER_IN_BYTES.search(raw))):
        body = _whole_characters(body)
    return body


# JSON may escape half of a UTF-16 pair ("\ud800", half an emoji); Python reads it into a
# string that cannot be written as UTF-8, which SQLite and every log need.
_HALF_A_CHARACTER = re.compile(rb"\\u[dD][89a-fA-F]")
# The same half may come as bytes (ED A0 80 to ED BF BF): not UTF-8, but Python's json
# reads it all the same (msgspec refuses it, so such a body takes the slow path).
_HALF_A_CHARACTER_IN_BYTES = re.compile(rb"\xed[\xa0-\xbf]")


def _whole_characters(value: Any) -> Any:
    """`value` with every lone surrogate in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_whole_characters(v) for v in value]
    if isinstance(value, dict):
        return {_whole_characters(k): _whole_characters(v) for k, v in value.items()}
    return value


class _WireMessage(msgspec.Struct, gc=False,
                   rename={"sender": "from", "application_id": "applicationId"}):
    id: str | None = None
    time: str | None = None
    sender: str | None = None
    text: str | None = None
    application_id: str | None = None
    media: list[str] | None = None
    tag: str | None = None


class _WireItem(msgspec.Struct, gc=False, rename={"error_code": "errorCode"}):
    type: str | None = None
    to: str | None = None
    time: str | None = None
    description: str | None = None
    error_code: int | None = None
    message: _WireMessage | None = None


class _WireVoice(msgspec.Struct, gc=False, rename={
        "kind": "eventType", "when": "eventTime", "call_id": "callId", "caller": "from",
        "conference_id": "conferenceId"}):
    kind: str | None = None
    when: str | None = None
    call_id: str | None = None
    caller: str | None = None
    to: str | None = None
    conference_id: str | None = None
    name: str | None = None
    tag: str | None = None
    cause: str | None = None


_MESSAGING = msgspec.json.Decoder(list[_WireItem])
_VOICE = msgspec.json.Decoder(_WireVoice)


class _Unsure(Exception):
    """The fast path cannot tell: let the slow path read the body."""


def _given(value: str | None, limit: int | None = 1024) -> str:
    """What `_Fields.text` accepts: a string with something in it, at most `limit` long."""
    if value is None or not value.strip() or (limit is not None and len(value) > limit):
        raise _Unsure
    return value


def _when(value: str | None) -> tuple[str, float]:
    text = _given(value)
    try:
        return text, parse_time(text)
    except BadEvent:
        raise _Unsure from None


def _fast_item(item: _WireItem) -> Event:
    kind = _given(item.type)
    if kind == "message-received":
        message = item.message
        if message is None:
            raise _Unsure
        message_id, line = _given(message.id), _given(item.to)
        media: tuple[str, ...] = ()
        if message.media is not None:
            if len(message.media) > 10 or not all(
                    v.startswith(("https://", "http://")) and len(v) <= 2048
                    for v in message.media):
                raise _Unsure
            media = tuple(message.media)
        return TextReceived(
            key=f"m:{message_id}:{kind}:{line}", time=_when(message.time)[1],
            message_id=message_id, sender=_given(message.sender), line=line,
            text=message.text or "", application_id=_given(message.application_id),
            media=media)
    if kind in MESSAGE_STATUSES:
        message = item.message
        if message is None:
            raise _Unsure
        message_id, recipient = _given(message.id), _given(item.to)
        return TextStatus(
            key=f"m:{message_id}:{kind}:{recipient}", time=_when(item.time)[1],
            message_id=message_id, status=kind, recipient=recipient, tag=message.tag,
            error_code=item.error_code, description=item.description or "")
    return Unused(key="", time=0.0, kind=kind)


def _fast_voice(body: _WireVoice) -> Event:
    kind = _given(body.kind)
    if kind == "initiate":
        call_id = _given(body.call_id)
        when, moment = _when(body.when)
        return CallInitiated(key=f"v:{kind}:{call_id}:{when}", time=moment, call_id=call_id,
                             caller=_given(body.caller), line=_given(body.to))
    if kind == "disconnect":
        call_id = _given(body.call_id)
        when, moment = _when(body.when)
        cause = body.cause or ""
        if len(cause) > 1024:
            raise _Unsure
        return CallDisconnected(key=f"v:{kind}:{call_id}:{when}", time=moment,
                                call_id=call_id, cause=cause)
    cls = _CONFERENCE_KINDS.get(kind)
    if cls is None:
        if kind in VOICE_PARSERS:  # rare (a call RING placed, a recording): the slow path
            raise _Unsure
        _given(body.when)
        return Unused(key="", time=0.0, kind=kind)
    conference_id = _given(body.conference_id)
    when, moment = _when(body.when)
    if cls is MemberJoined or cls is MemberLeft:
        call_id = _given(body.call_id)
        member: type[MemberJoined | MemberLeft] = cls
        return member(key=f"v:{kind}:{conference_id}:{call_id}:{when}", time=moment,
                      bandwidth_id=conference_id, name=_given(body.name), tag=body.tag,
                      call_id=call_id, caller=_given(body.caller))
    return cls(key=f"v:{kind}:{conference_id}::{when}", time=moment,
               bandwidth_id=conference_id, name=_given(body.name), tag=body.tag)


_CONFERENCE_KINDS: dict[str, type[ConferenceEvent]] = {
    "conferenceCreated": ConferenceCreated,
    "conferenceMemberJoin": MemberJoined,
    "conferenceMemberExit": MemberLeft,
    "conferenceCompleted": ConferenceCompleted,
}


def decode_messaging(raw: bytes) -> list[Event | BadEvent]:
    """`parse_messaging` of the JSON body `raw` (BadEvent if it is not JSON)."""
    try:
        items = _MESSAGING.decode(raw)
        if items:
            return [_fast_item(item) for item in items]
    except (msgspec.DecodeError, _Unsure):
        pass
    return parse_messaging(loads(raw))


def decode_voice(raw: bytes) -> Event:
    """`parse_voice` of the JSON body `raw` (BadEvent if it is not JSON)."""
    try:
        return _fast_voice(_VOICE.decode(raw))
    except (msgspec.DecodeError, _Unsure):
        return parse_voice(loads(raw))


# Events confcall raises itself, when the outbox learns something: not claimed (each comes
# from one outbox row, settled once), so their key is empty.


class RecapDue(Event, frozen=True):
    """A conference's wait for Bandwidth's conferenceCompleted ran out, or there was
    nothing on Bandwidth to complete."""

    conference_id: str
    why: str = ""  # said in the log: why confcall closes it rather than Bandwidth


class InviteRefused(Event, frozen=True):
    """Bandwidth refused an invitation for good."""

    conference_id: str
    numbers: tuple[str, ...]
    status: int


class CallRefused(Event, frozen=True):
    """Bandwidth refused for good to place a call (RING)."""

    conference_id: str
    number: str
    detail: str


class CompletionRefused(Event, frozen=True):
    """Bandwidth refused for good to end a conference."""

    conference_id: str
    detail: str
