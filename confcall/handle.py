"""The event registry: for each kind of event, what its decision must read, the pure
decision itself, and the line the log tells of it. Pure: no I/O; a store runs an entry
(claim, read, decide, apply) in one transaction, and the caller logs its line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from confcall import conference as cc
from confcall.conference import Decision, Rules
from confcall.events import (
    CallDisconnected,
    CallRefused,
    CompletionRefused,
    ConferenceCompleted,
    ConferenceCreated,
    Event,
    InviteRefused,
    MemberJoined,
    MemberLeft,
    RecapDue,
    RecordingAvailable,
    TextReceived,
    TextStatus,
)


class Reads(Enum):
    """What a decision needs from the store besides its event."""

    NOTHING = "nothing"
    SENDER = ("a Sender: an organizer's active or ending conference, and who said STOP"
              " (both only for an organizer)")
    NAMED_CONFERENCE = "the conference the event names (its tag, else its name)"
    CONFERENCE = "the conference with the event's conference_id"


Decide = Callable[[Rules, Any, Any, float, str], Decision]


@dataclass(frozen=True)
class Entry:
    reads: Reads
    # (rules, event, what was read: a Conference or None, or a Sender; now, a fresh
    # conference id) -> Decision
    decide: Decide
    line: Callable[[Any, Decision], str | None]  # the INFO line for the log, if any


def _detail(event: Event, decision: Decision) -> str | None:
    return decision.detail or None


def _text(event: TextReceived, decision: Decision) -> str:
    return f"text from {event.sender}: {decision.detail}"


REGISTRY: dict[type[Event], Entry] = {
    TextReceived: Entry(
        Reads.SENDER,
        lambda rules, event, found, now, new_id: cc.on_text(rules, event, found, now, new_id),
        _text),
    TextStatus: Entry(
        Reads.NOTHING, lambda rules, event, found, now, new_id: cc.on_text_status(event),
        _detail),
    ConferenceCreated: Entry(
        Reads.NAMED_CONFERENCE,
        lambda rules, event, found, now, new_id: cc.on_conference_created(found, event),
        _detail),
    MemberJoined: Entry(
        Reads.NAMED_CONFERENCE,
        lambda rules, event, found, now, new_id: cc.on_member_joined(found, event), _detail),
    MemberLeft: Entry(
        Reads.NAMED_CONFERENCE,
        lambda rules, event, found, now, new_id: cc.on_member_left(rules, found, event),
        _detail),
    CallDisconnected: Entry(
        Reads.NOTHING, lambda rules, event, found, now, new_id: cc.on_disconnect(event),
        _detail),
    ConferenceCompleted: Entry(
        Reads.NAMED_CONFERENCE,
        lambda rules, event, found, now, new_id: cc.on_conference_completed(
            found, event, now),
        _detail),
    RecordingAvailable: Entry(
        Reads.NAMED_CONFERENCE,
        lambda rules, event, found, now, new_id: cc.on_recording_available(
            rules, found, event, now, new_id), _detail),
    RecapDue: Entry(
        Reads.CONFERENCE,
        lambda rules, event, found, now, new_id: cc.on_recap_due(found, now, event.why),
        _detail),
    InviteRefused: Entry(
        Reads.CONFERENCE,
        lambda rules, event, found, now, new_id: cc.on_invite_refused(
            found, event.numbers, event.status), _detail),
    CallRefused: Entry(
        Reads.CONFERENCE,
        lambda rules, event, found, now, new_id: cc.on_call_refused(
            found, event.number, event.detail), _detail),
    CompletionRefused: Entry(
        Reads.CONFERENCE,
        lambda rules, event, found, now, new_id: cc.on_completion_refused(found, event.detail),
        _detail),
}


def entry(event: Event) -> Entry | None:
    """How `event` is handled; None for an event confcall does not act on."""
    return REGISTRY.get(type(event))
