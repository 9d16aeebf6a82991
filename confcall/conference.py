"""The conference state machine: (state, event) -> effects. Pure: no I/O, clock or randomness."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: `status` and `history` import this module, and start fast
    from confcall.events import (
        CallDisconnected,
        ConferenceCompleted,
        ConferenceCreated,
        MemberJoined,
        MemberLeft,
        TextReceived,
        TextStatus,
    )

COUNT_LIMIT = 100  # numbers counted in one text; beyond this a refusal says "more than"
GROUP_LIMIT = 10  # Bandwidth: a group message reaches at most 10 participants
TEXT_LIMIT = 2048  # Bandwidth: a message's text is at most 2048 characters
SHOWN_NOT_NUMBERS = 5  # parts of a start text quoted back as "not phone numbers"
RECAP_WAIT = 60.0  # seconds to wait for conferenceCompleted before the recap goes anyway

ACTIVE, ENDING, ENDED = "active", "ending", "ended"


@dataclass(frozen=True)
class Rules:
    """What the state machine needs to know of the configuration."""

    line: str
    organizers: frozenset[str]
    max_invites: int
    region: str


@dataclass(frozen=True)
class Member:
    """One call's time in a conference."""

    call_id: str
    number: str
    joined_at: float
    left_at: float | None = None


@dataclass(frozen=True)
class Conference:
    """A conference. Its id is also its name on Bandwidth and the tag in its BXML."""

    id: str
    organizer: str
    status: str
    invitees: tuple[str, ...]
    created_at: float
    ended_at: float | None = None
    bandwidth_id: str | None = None
    closing_text: str | None = None
    members: tuple[Member, ...] = ()

    def may_join(self, number: str) -> bool:
        return self.status == ACTIVE and (number in self.invitees or number == self.organizer)


# Effects: what the store must write (all in one transaction) for an event.


@dataclass(frozen=True)
class StartConference:
    conference: Conference


@dataclass(frozen=True)
class QueueText:
    to: tuple[str, ...]
    text: str
    purpose: str  # invite, confirm, refuse, forward, recap, notice
    conference_id: str | None = None
    media: tuple[str, ...] = ()  # URLs of pictures to send with it (an MMS)


@dataclass(frozen=True)
class BeginEnding:
    conference_id: str
    closing_text: str


@dataclass(frozen=True)
class QueueCompletion:
    conference_id: str


@dataclass(frozen=True)
class QueueRecapTimer:
    conference_id: str
    due: float


@dataclass(frozen=True)
class RecordBandwidthId:
    conference_id: str
    bandwidth_id: str | None


@dataclass(frozen=True)
class RecordJoin:
    conference_id: str
    call_id: str
    number: str
    at: float


@dataclass(frozen=True)
class RecordLeave:
    """A call left. With its conference known, a leave that overtook its join is kept, so
    the late join does not open a call that has already ended."""

    call_id: str
    at: float
    conference_id: str | None = None
    number: str | None = None


@dataclass(frozen=True)
class FinishConference:
    conference_id: str
    at: float


@dataclass(frozen=True)
class RecordDelivery:
    tag: str | None
    message_id: str
    status: str
    recipient: str
    detail: str


Effect = (
    StartConference | QueueText | BeginEnding | QueueCompletion | QueueRecapTimer
    | RecordBandwidthId | RecordJoin | RecordLeave | FinishConference | RecordDelivery
)

# What a decision did, as a label: the log says it in words, tests and counts read the label.
STARTED, REFUSED, ENDS, FORWARDED = "started", "refused", "ends", "forwarded"
NOT_ORGANIZER, OTHER_LINE, IGNORED = "not an organizer", "another line", "ignored"
RECORDED, JOINED, LEFT, CLOSED = "recorded", "joined", "left", "closed"
TOLD = "told the organizer"


@dataclass(frozen=True)
class Decision:
    """What the state machine decided for one event: what happened (`outcome`, one of the
    labels above; `detail` in words), and the effects to write for it."""

    outcome: str
    effects: list[Effect] = field(default_factory=list)
    detail: str = ""

    def queues(self) -> bool:
        """Whether it gave the outbox something to send."""
        return any(isinstance(e, (QueueText, QueueCompletion, QueueRecapTimer))
                   for e in self.effects)


def invitation(organizer: str, line: str) -> str:
    return (
        f"You have been invited by {organizer} to join a conference. "
        f"Please call {line} to join"
    )


FORWARD_PARTS = 4  # a closing text is forwarded in at most this many messages (8,192 chars)
NOTHING_TO_FORWARD = "Your text had nothing in it to forward."
DEFAULT_CLOSING = "The conference has ended. Thank you for joining."


def _how_to(rules: Rules) -> str:
    return (
        f"Text up to {rules.max_invites} phone numbers separated by spaces, commas or new lines,"
        " e.g. +12015550123, (201) 555-0124"
    )


def on_text(rules: Rules, event: TextReceived, current: Conference | None, now: float,
            new_id: str) -> Decision:
    """An inbound text. Organizers start a conference with a list and end it with the next
    text; texts they send while it is ending (until the recap) go to the same people.
    Anyone else is recorded and not answered, so no text loop with a stranger starts. So is
    a text to another number on the same Bandwidth application."""
    if event.line != rules.line:
        return Decision(OTHER_LINE, detail=f"sent to {event.line}, not {rules.line}: stored,"
                        " not answered")
    if event.sender not in rules.organizers:
        return Decision(NOT_ORGANIZER, detail="not an organizer: stored, not answered")
    if current is not None and current.status == ACTIVE:
        return end(current, event.text, now, event.media)
    if current is not None and current.status == ENDING:
        return Decision(FORWARDED, forward(current, event.text, event.media),
                        f"forwarded to {current.id}, which is ending")
    return start(rules, event, now, new_id)


def start(rules: Rules, event: TextReceived, now: float, new_id: str) -> Decision:
    """A start text: invite every number it holds, or say why not."""
    from confcall.phone import read_numbers  # phonenumbers is slow to import: only if needed

    found = read_numbers(event.text, rules.region, limit=COUNT_LIMIT)
    numbers = tuple(n for n in found.numbers if n not in (rules.line, event.sender))
    notes = []
    if event.sender in found.numbers:
        notes.append(f"You ({event.sender}) are not invited: you can always call in.")
    if rules.line in found.numbers:
        notes.append(f"{rules.line} is this line's number.")

    def refuse(why: str) -> Decision:
        text = " ".join([why, *notes, _how_to(rules) + "."])
        return Decision(REFUSED, [QueueText((event.sender,), text, "refuse")],
                        "refused, told why")

    # a truncated reading is refused whatever it found: the numbers after the stop are unknown
    if found.truncated or len(numbers) > rules.max_invites:
        sent = f"more than {COUNT_LIMIT}" if found.truncated else str(len(numbers))
        return refuse(f"Too many numbers: you sent {sent}, the limit is {rules.max_invites}.")
    if not numbers:
        return refuse("No phone numbers to invite found in your message." if notes
                      else "No phone numbers found in your message.")
    conference = Conference(new_id, event.sender, ACTIVE, numbers, created_at=now)
    effects: list[Effect] = [StartConference(conference)]
    effects += [QueueText((number,), invitation(event.sender, rules.line), "invite", new_id)
                for number in numbers]
    confirmation = f"Conference started. Invited: {', '.join(numbers)}."
    if notes:
        confirmation += " " + " ".join(notes)
    if found.not_numbers:
        shown = list(found.not_numbers[:SHOWN_NOT_NUMBERS])
        if len(found.not_numbers) > SHOWN_NOT_NUMBERS:
            shown.append(f"and {len(found.not_numbers) - SHOWN_NOT_NUMBERS} more")
        confirmation += " Not phone numbers, ignored: " + "; ".join(shown) + "."
    confirmation += (" Your next text ends the call and goes to everyone, as does any text you"
                     " send until the recap.")
    effects.append(QueueText((event.sender,), confirmation, "confirm", new_id))
    return Decision(STARTED, effects, f"started {new_id}, inviting {len(numbers)}")


def forward(conference: Conference, text: str, media: tuple[str, ...] = ()) -> list[Effect]:
    """The organizer's text to every invitee, unchanged: as few group messages as the group
    limit allows, and a long text in parts of what Bandwidth takes in one message (at most
    FORWARD_PARTS; the organizer is told if more was cut). With nothing to forward, the
    organizer is told so: an empty forward is never silent."""
    parts = [text[i:i + TEXT_LIMIT] for i in range(0, len(text), TEXT_LIMIT)] if (
        text.strip()) else []
    effects: list[Effect] = []
    if not parts and not media:
        return [QueueText((conference.organizer,), NOTHING_TO_FORWARD, "notice", conference.id)]
    cut = len(parts) > FORWARD_PARTS
    parts = parts[:FORWARD_PARTS] or [""]
    for begin in range(0, len(conference.invitees), GROUP_LIMIT):
        group = conference.invitees[begin:begin + GROUP_LIMIT]
        effects += [QueueText(group, part, "forward", conference.id, media if i == 0 else ())
                    for i, part in enumerate(parts)]
    if cut:
        effects.append(QueueText(
            (conference.organizer,),
            f"Your text was longer than {FORWARD_PARTS * TEXT_LIMIT:,} characters: only the "
            f"first {FORWARD_PARTS * TEXT_LIMIT:,} were forwarded.", "notice", conference.id))
    return effects


def end(conference: Conference, closing_text: str, now: float,
        media: tuple[str, ...] = ()) -> Decision:
    """End an active conference: forward the closing text (and any pictures) to every
    invitee, then complete it on Bandwidth."""
    effects: list[Effect] = [BeginEnding(conference.id, closing_text)]
    if closing_text.strip() or media:
        effects += forward(conference, closing_text, media)
    else:  # nothing to forward: the invitees still hear the call is over
        effects += forward(conference, DEFAULT_CLOSING)
        effects.append(QueueText((conference.organizer,),
                                 f'{NOTHING_TO_FORWARD} Everyone got "{DEFAULT_CLOSING}"',
                                 "notice", conference.id))
    if conference.bandwidth_id or conference.members:
        effects.append(QueueCompletion(conference.id))
        effects.append(QueueRecapTimer(conference.id, now + RECAP_WAIT))
    else:
        effects += finish(conference, now)
    return Decision(ENDS, effects, f"ends {conference.id}")


def finish(conference: Conference, now: float) -> list[Effect]:
    """Close a conference that is ending and text its organizer the recap."""
    if conference.status == ENDED:
        return []
    members = tuple(m if m.left_at is not None else replace(m, left_at=now)
                    for m in conference.members)
    closed = replace(conference, status=ENDED, ended_at=now, members=members)
    return [FinishConference(conference.id, now),
            QueueText((conference.organizer,), recap(closed), "recap", conference.id)]


def on_recap_due(conference: Conference | None, now: float, why: str = "") -> Decision:
    """60 s after the end text, or once Bandwidth had nothing to complete: if Bandwidth
    never said the conference completed, close it."""
    if conference is None or conference.status != ENDING:
        return Decision(IGNORED)
    return Decision(CLOSED, finish(conference, now),
                    f"{conference.id} ended" + (f": {why}" if why else ""))


def on_invite_refused(conference: Conference | None, numbers: tuple[str, ...],
                      status: int) -> Decision:
    """Bandwidth refused an invitation for good: tell the organizer, once per refusal."""
    if conference is None:
        return Decision(IGNORED)
    return Decision(TOLD, [QueueText(
        (conference.organizer,),
        f"Could not invite {', '.join(numbers)}: Bandwidth refused the text ({status}).",
        "notice",
        conference.id,
    )])


def on_completion_refused(conference: Conference | None, detail: str) -> Decision:
    """Bandwidth refused for good to end the call: the callers stay on it until they hang
    up. Tell the organizer, once."""
    if conference is None:
        return Decision(IGNORED)
    return Decision(TOLD, [QueueText(
        (conference.organizer,),
        f"The call could not be ended on Bandwidth: {detail}"[:TEXT_LIMIT],
        "notice",
        conference.id,
    )])


def on_conference_created(conference: Conference | None, event: ConferenceCreated) -> Decision:
    if conference is None:
        return Decision(IGNORED)
    effects: list[Effect] = [RecordBandwidthId(conference.id, event.bandwidth_id)]
    if conference.status == ENDED:
        # a call answered just before the end text reached Bandwidth after it: end what it
        # started, or the caller waits alone in a conference nobody will join
        effects.append(QueueCompletion(conference.id))
    return Decision(RECORDED, effects)


def on_member_joined(conference: Conference | None, event: MemberJoined) -> Decision:
    if conference is None or conference.status == ENDED:
        return Decision(IGNORED)
    return Decision(JOINED, [RecordJoin(conference.id, event.call_id, event.caller, event.time)],
                    f"{event.caller} joined {conference.id} (call {event.call_id})")


def on_member_left(conference: Conference | None, event: MemberLeft) -> Decision:
    if conference is None:
        return Decision(IGNORED)
    if conference.status == ENDED and all(m.call_id != event.call_id
                                          for m in conference.members):
        return Decision(IGNORED)  # a stray leave must not add a caller to a finished record
    return Decision(LEFT, [RecordLeave(event.call_id, event.time, conference.id, event.caller)],
                    f"{event.caller} left {conference.id} (call {event.call_id})")


def on_disconnect(event: CallDisconnected) -> Decision:
    """A call ended: it has left whatever conference it was in (disconnect events carry
    only the call, so which conference is not known here)."""
    return Decision(RECORDED, [RecordLeave(event.call_id, event.time)])


def on_conference_completed(conference: Conference | None,
                            event: ConferenceCompleted) -> Decision:
    """Bandwidth's conference is gone. Ours ends only if its organizer asked; otherwise the
    last caller hung up, and the next caller starts a new Bandwidth conference of that name."""
    if conference is None:
        return Decision(IGNORED)
    if conference.status == ENDING:
        return Decision(CLOSED, finish(conference, event.time), f"{conference.id} ended")
    if conference.status == ACTIVE:
        return Decision(RECORDED, [RecordBandwidthId(conference.id, None)])
    return Decision(IGNORED)


def on_text_status(event: TextStatus) -> Decision:
    detail = event.description
    if event.error_code is not None:
        detail = f"{event.error_code}: {detail}" if detail else str(event.error_code)
    return Decision(RECORDED, [RecordDelivery(event.tag, event.message_id, event.status,
                                              event.recipient, detail)])


def answer(rules: Rules, caller: str, line: str,
           conferences: list[Conference]) -> Conference | None:
    """The conference a call to `line` joins; None to refuse it (a call to another number
    on the same Bandwidth application is not ours to answer with a conference)."""
    return choose(conferences, caller) if line == rules.line else None


def choose(conferences: list[Conference], caller: str) -> Conference | None:
    """The conference a caller joins: the newest active one that invited them."""
    joinable = [c for c in conferences if c.may_join(caller)]
    return max(joinable, key=lambda c: c.created_at, default=None)


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def time_on_call(conference: Conference) -> dict[str, float]:
    """Seconds each number spent on the call, over all of its calls."""
    totals: dict[str, float] = {}
    end_time = conference.ended_at
    for member in conference.members:
        left = member.left_at if member.left_at is not None else end_time
        if left is None:
            continue
        totals[member.number] = totals.get(member.number, 0.0) + max(0.0, left - member.joined_at)
    return totals


def recap(conference: Conference) -> str:
    """The organizer's record of an ended conference, as one text."""
    if not conference.members:
        return f"Conference ended. Nobody joined. Invited: {', '.join(conference.invitees)}."
    first = min(m.joined_at for m in conference.members)
    last = max((m.left_at or first) for m in conference.members)
    ran = format_duration(max(last, conference.ended_at or last) - first)
    totals = time_on_call(conference)
    joined = ", ".join(f"{number} ({format_duration(spent)})" for number, spent in totals.items())
    never = [n for n in conference.invitees if n not in totals]
    text = f"Conference ended after {ran}. Joined: {joined}."
    text += f" Never joined: {', '.join(never)}." if never else " Everyone joined."
    return text
