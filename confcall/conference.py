"""The conference state machine: (state, event) -> effects. Pure: no I/O, clock or randomness."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from confcall.state import (
    ACTIVE,
    ENDED,
    ENDING,
    Conference,
    Recording,
    format_duration,
    time_on_call,
)

if TYPE_CHECKING:  # annotations only: the events and msgspec load when a server needs them
    from confcall.events import (
        CallDisconnected,
        ConferenceCompleted,
        ConferenceCreated,
        MemberJoined,
        MemberLeft,
        RecordingAvailable,
        TextReceived,
        TextStatus,
    )
    from confcall.phone import ReadNumbers

COUNT_LIMIT = 100  # numbers counted in one text; beyond this a refusal says "more than"
GROUP_LIMIT = 10  # Bandwidth: a group message reaches at most 10 participants
TEXT_LIMIT = 2048  # Bandwidth: a message's text is at most 2048 characters
SHOWN_NOT_NUMBERS = 5  # parts of a start text quoted back as "not phone numbers"
RECAP_WAIT = 60.0  # seconds to wait for conferenceCompleted before the recap goes anyway
# After the recap, an organizer's text with no phone number in it still goes to the people
# of the call just ended, for this long: a second "notes are in the doc" a moment after the
# end text must not be refused as a start text (Bandwidth completes a conference, and the
# recap goes, within a second or two of the end text).
FOLLOW_UP = 300.0


@dataclass(frozen=True)
class Rules:
    """What the state machine needs to know of the configuration."""

    line: str
    organizers: frozenset[str]
    max_invites: int
    region: str
    end_when_organizer_leaves: bool = False
    recording: bool = False  # record every conference (recording.enabled)
    public_url: str = ""  # where recording links point
    link_days: int = 30  # how long a recording's link works


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
class QueueCall:
    """Call `number` into the conference (RING)."""

    conference_id: str
    number: str


@dataclass(frozen=True)
class AddInvitees:
    """More numbers invited to an active conference (ADD)."""

    conference_id: str
    numbers: tuple[str, ...]


@dataclass(frozen=True)
class RecordRecording:
    conference_id: str
    bandwidth_id: str
    recording: Recording
    media_url: str
    at: float


@dataclass(frozen=True)
class OptOut:
    """The number said STOP: this line never texts it again, until it says START."""

    number: str
    at: float


@dataclass(frozen=True)
class OptIn:
    number: str


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
    | OptOut | OptIn | AddInvitees | QueueCall | RecordRecording
)

# What a decision did, as a label: the log says it in words, tests and counts read the label.
STARTED, REFUSED, ENDS, FORWARDED = "started", "refused", "ends", "forwarded"
NOT_ORGANIZER, OTHER_LINE, IGNORED = "not an organizer", "another line", "ignored"
RECORDED, JOINED, LEFT, CLOSED = "recorded", "joined", "left", "closed"
TOLD = "told the organizer"
OPTED_OUT, OPTED_IN, HELPED = "opted out", "opted in", "helped"
ADDED, ANSWERED = "added", "answered"

# An organizer's text that is one of these alone (any case; ADD and RING with their
# argument) is a command, not the end of the call; one alone in the FOLLOW_UP after the
# recap is not forwarded to the call's people either (it was meant for the call; HELP is
# answered before, as a keyword).
COMMAND_WORDS = frozenset({"WHO", "ADD", "RING"})
COMMANDS_LINE = "Reply WHO, ADD numbers, RING or HELP; any other text ends the call"
COMMANDS_HELP = ("WHO: who is on the call, who left, who never joined.\n"
                 "ADD numbers: invite more people.\n"
                 "RING: call everyone invited who is not on the call (RING +1… calls one).\n"
                 "STOP or END: end the call with a goodbye to everyone.\n"
                 "Any other text ends the call and goes to everyone.")

# Messaging compliance: a text that is one of these words alone (any case) opts its
# sender out of texts from this line, back in, or asks what the line is.
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})


@dataclass(frozen=True)
class Sender:
    """What a text's decision reads besides the text: the sender's conference that has not
    ended, else the one that ended within FOLLOW_UP (an organizer's only), and which
    numbers said STOP (read for organizers only: their texts invite and forward)."""

    conference: Conference | None = None
    opted_out: frozenset[str] = frozenset()


# what is read for a text from someone who is not an organizer: nothing. Made once: a
# frozen dataclass is dear to make (some 5k instructions), and such texts need no other.
NOTHING_READ = Sender()


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
EVERYONE_OPTED_OUT = ("Everyone invited has opted out of texts from this line: your text "
                      "went to no one.")
DEFAULT_CLOSING = "The conference has ended. Thank you for joining."


def _how_to(rules: Rules) -> str:
    return (
        f"Text up to {rules.max_invites} phone numbers separated by spaces, commas or new lines,"
        " e.g. +12015550123, (201) 555-0124"
    )


def keyword(text: str) -> str:
    """The one word `text` is, in capitals; "" when it is more (or less) than a word."""
    word = text.strip()
    return word.upper() if word and len(word) <= 12 and word.isalpha() else ""


def on_text(rules: Rules, event: TextReceived, sender: Sender, now: float,
            new_id: str) -> Decision:
    """An inbound text. Organizers start a conference with a list and end it with the next
    text; texts they send while it is ending (until the recap) go to the same people, as
    do texts with no phone number in them for FOLLOW_UP after it.
    Anyone may opt out of this line's texts (STOP), back in (START), or ask what it is
    (HELP); anything else from someone who is not an organizer is recorded and not
    answered, so no text loop with a stranger starts. So is a text to another number on
    the same Bandwidth application."""
    if event.line != rules.line:
        return Decision(OTHER_LINE, detail=f"sent to {event.line}, not {rules.line}: stored,"
                        " not answered")
    word = keyword(event.text)
    current = sender.conference
    if event.sender not in rules.organizers:
        return _compliance(rules, event.sender, word, now)
    if current is not None and current.status == ACTIVE:
        if word in STOP_WORDS:  # ends the call; the keyword is not forwarded
            return end(current, DEFAULT_CLOSING, now, opted_out=sender.opted_out)
        if not event.media:
            answered = command(rules, current, event.text, now, sender.opted_out)
            if answered is not None:
                return answered
        return end(current, event.text, now, event.media, sender.opted_out)
    if current is not None and current.status == ENDING:
        return Decision(FORWARDED, forward(current, event.text, event.media, sender.opted_out),
                        f"forwarded to {current.id}, which is ending")
    if word in STOP_WORDS | START_WORDS | HELP_WORDS:  # organizers cannot be opted out
        return Decision(HELPED, [QueueText((event.sender,), organizer_help(rules), "help")],
                        "an organizer's keyword: told how to start")
    from confcall.phone import read_numbers  # phonenumbers is slow to import: only if needed

    found = read_numbers(event.text, rules.region, limit=COUNT_LIMIT)
    if (current is not None and current.status == ENDED and current.ended_at is not None
            and now - current.ended_at <= FOLLOW_UP and not found.truncated
            and (event.media or word not in COMMAND_WORDS)
            and all(n in (rules.line, event.sender) for n in found.numbers)):
        # no number to invite in it: not a start text, but more for the call's people
        return Decision(FORWARDED, forward(current, event.text, event.media, sender.opted_out),
                        f"forwarded to {current.id}, which ended "
                        f"{format_duration(now - current.ended_at)} ago")
    return start(rules, event, now, new_id, found, sender.opted_out)


def command(rules: Rules, conference: Conference, text: str, now: float,
            opted_out: frozenset[str] = frozenset()) -> Decision | None:
    """An organizer's command to their active conference, answered; None when `text` is
    not exactly one (then it ends the call)."""
    name, _, argument = text.strip().partition(" ")
    name, argument = name.upper(), argument.strip()
    organizer = conference.organizer
    if name == "WHO" and not argument:
        return Decision(ANSWERED, [QueueText((organizer,), who(conference, now), "who",
                                             conference.id)], "asked who is on the call")
    if name == "HELP" and not argument:
        return Decision(ANSWERED, [QueueText((organizer,), COMMANDS_HELP, "help",
                                             conference.id)], "asked for the commands")
    if name == "ADD" and argument:
        return add(rules, conference, argument, opted_out)
    if name == "RING":
        return ring(rules, conference, argument)
    return None


def who(conference: Conference, now: float) -> str:
    """Who is on the call (and for how long), who left, who never joined."""
    open_calls = {m.number: m for m in conference.members if m.left_at is None}
    called = {m.number for m in conference.members}
    people = [*conference.invitees, *(n for n in dict.fromkeys(
        m.number for m in conference.members) if n not in conference.invitees)]
    on = [f"{n} ({format_duration(now - open_calls[n].joined_at)})"
          for n in people if n in open_calls]
    left = [n for n in people if n in called and n not in open_calls]
    never = [n for n in conference.invitees if n not in called]
    parts = [f"On the call: {', '.join(on)}." if on else "Nobody is on the call."]
    if left:
        parts.append(f"Left: {', '.join(left)}.")
    if never:
        parts.append(f"Never joined: {', '.join(never)}.")
    return " ".join(parts)


CALL_LIMIT = 20  # Bandwidth: at most 20 calls in one conference


def ring(rules: Rules, conference: Conference, text: str) -> Decision | None:
    """RING: call every invitee who is not on the call now; RING +1…: that one. None when
    what follows RING is not one number (then it is a closing text)."""
    on_call = {m.number for m in conference.members if m.left_at is None}
    organizer = conference.organizer
    if text:
        from confcall.phone import read_numbers

        found = read_numbers(text, rules.region, limit=2)
        if len(found.numbers) != 1 or found.not_numbers:
            return None
        [number] = found.numbers
        if number not in conference.invitees:
            return Decision(REFUSED, [QueueText(
                (organizer,), f"{number} is not invited: ADD {number} first, then RING it.",
                "refuse", conference.id)], "RING refused: not invited")
        targets = [number] if number not in on_call else []
    else:
        targets = [n for n in conference.invitees if n not in on_call]
    room = CALL_LIMIT - len(on_call)
    if not targets:
        return Decision(ANSWERED, [QueueText((organizer,), "Everyone you would ring is on the "
                                             "call already.", "confirm", conference.id)],
                        "RING: nobody to call")
    called, skipped = targets[:room], targets[room:]
    text = f"Ringing {', '.join(called)}."
    if skipped:
        text += f" Not {', '.join(skipped)}: a conference holds {CALL_LIMIT} calls."
    effects: list[Effect] = [QueueCall(conference.id, n) for n in called]
    effects.append(QueueText((organizer,), text, "confirm", conference.id))
    return Decision(ANSWERED, effects, f"ringing {len(called)} for {conference.id}")


def add(rules: Rules, conference: Conference, text: str,
        opted_out: frozenset[str] = frozenset()) -> Decision | None:
    """ADD numbers: invite them too (read as a start text's; at most max_invites in
    all). None when `text` is not only numbers: then it is a closing text."""
    from confcall.phone import read_numbers

    found = read_numbers(text, rules.region, limit=COUNT_LIMIT)
    if not found.numbers or found.not_numbers or found.truncated:
        return None
    skipped = {rules.line, conference.organizer, *conference.invitees}
    new = tuple(n for n in found.numbers if n not in skipped and n not in opted_out)
    notes = []
    stopped = [n for n in found.numbers if n in opted_out]
    if stopped:
        notes.append(f"{', '.join(stopped)} opted out of texts from this line: not invited.")
    already = [n for n in found.numbers if n in conference.invitees]
    if already:
        notes.append(f"Already invited: {', '.join(already)}.")
    organizer = conference.organizer
    if len(conference.invitees) + len(new) > rules.max_invites:
        text = (f"Too many: that makes {len(conference.invitees) + len(new)} invited, the "
                f"limit is {rules.max_invites}. Nobody was added.")
        return Decision(REFUSED, [QueueText((organizer,), text, "refuse", conference.id)],
                        "ADD refused: too many")
    if not new:
        text = " ".join(notes) or "Nobody new to invite."
        return Decision(ANSWERED, [QueueText((organizer,), text, "confirm", conference.id)],
                        "ADD: nobody new")
    effects: list[Effect] = [AddInvitees(conference.id, new)]
    effects += [QueueText((n,), invitation(organizer, rules.line), "invite", conference.id)
                for n in new]
    effects.append(QueueText((organizer,), " ".join([f"Added: {', '.join(new)}.", *notes]),
                             "confirm", conference.id))
    return Decision(ADDED, effects, f"added {len(new)} to {conference.id}")


def _compliance(rules: Rules, number: str, word: str, now: float) -> Decision:
    """What a text from someone who is not an organizer does: STOP, START and HELP are
    answered once each (carriers require it); anything else is not answered."""
    if word in STOP_WORDS:
        return Decision(OPTED_OUT, [OptOut(number, now), QueueText(
            (number,), f"You will get no more texts from {rules.line}. Reply START to get "
            "them again.", "optout")], "opted out of texts")
    if word in START_WORDS:
        return Decision(OPTED_IN, [OptIn(number), QueueText(
            (number,), f"You will get texts from {rules.line} again: invitations to "
            "conference calls. Reply STOP to stop them.", "optin")], "opted back in")
    if word in HELP_WORDS:
        return Decision(HELPED, [QueueText((number,), line_help(rules), "help")],
                        "asked for help")
    return Decision(NOT_ORGANIZER, detail="not an organizer: stored, not answered")


def line_help(rules: Rules) -> str:
    return (f"{rules.line} is a conference line: it texts you when someone invites you to a "
            "conference call, which you join by calling it. Reply STOP to stop these texts, "
            "START to get them again.")


def organizer_help(rules: Rules) -> str:
    return (f"You organize conference calls on {rules.line}: text it the phone numbers to "
            "invite; your next text ends the call and goes to everyone. Organizers' texts "
            "cannot be stopped.")


def start(rules: Rules, event: TextReceived, now: float, new_id: str, found: ReadNumbers,
          opted_out: frozenset[str] = frozenset()) -> Decision:
    """A start text, whose numbers `found` were read from it: invite every one, or say why
    not."""
    numbers = tuple(n for n in found.numbers
                    if n not in (rules.line, event.sender) and n not in opted_out)
    notes = []
    if event.sender in found.numbers:
        notes.append(f"You ({event.sender}) are not invited: you can always call in.")
    if rules.line in found.numbers:
        notes.append(f"{rules.line} is this line's number.")
    stopped = [n for n in found.numbers if n in opted_out]
    if stopped:
        notes.append(f"{', '.join(stopped)} {'has' if len(stopped) == 1 else 'have'} opted "
                     "out of texts from this line: not invited.")

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
    conference = Conference(new_id, event.sender, ACTIVE, numbers, created_at=now,
                            recorded=rules.recording)
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
    confirmation += (f" {COMMANDS_LINE} and goes to everyone, as does any text you send"
                     " until the recap.")
    effects.append(QueueText((event.sender,), confirmation, "confirm", new_id))
    return Decision(STARTED, effects, f"started {new_id}, inviting {len(numbers)}")


def forward(conference: Conference, text: str, media: tuple[str, ...] = (),
            opted_out: frozenset[str] = frozenset()) -> list[Effect]:
    """The organizer's text to every invitee (but those who said STOP since), unchanged: as
    few group messages as the group limit allows, and a long text in parts of what
    Bandwidth takes in one message (at most FORWARD_PARTS; the organizer is told if more
    was cut). With nothing to forward, the organizer is told so: never silent."""
    parts = [text[i:i + TEXT_LIMIT] for i in range(0, len(text), TEXT_LIMIT)] if (
        text.strip()) else []
    effects: list[Effect] = []
    if not parts and not media:
        return [QueueText((conference.organizer,), NOTHING_TO_FORWARD, "notice", conference.id)]
    cut = len(parts) > FORWARD_PARTS
    parts = parts[:FORWARD_PARTS] or [""]
    invitees = tuple(n for n in conference.invitees if n not in opted_out)
    if not invitees:
        return [QueueText((conference.organizer,), EVERYONE_OPTED_OUT, "notice", conference.id)]
    for begin in range(0, len(invitees), GROUP_LIMIT):
        group = invitees[begin:begin + GROUP_LIMIT]
        effects += [QueueText(group, part, "forward", conference.id, media if i == 0 else ())
                    for i, part in enumerate(parts)]
    if cut:
        effects.append(QueueText(
            (conference.organizer,),
            f"Your text was longer than {FORWARD_PARTS * TEXT_LIMIT:,} characters: only the "
            f"first {FORWARD_PARTS * TEXT_LIMIT:,} were forwarded.", "notice", conference.id))
    return effects


def end(conference: Conference, closing_text: str, now: float,
        media: tuple[str, ...] = (), opted_out: frozenset[str] = frozenset()) -> Decision:
    """End an active conference: forward the closing text (and any pictures) to every
    invitee, then complete it on Bandwidth."""
    effects: list[Effect] = [BeginEnding(conference.id, closing_text)]
    if closing_text.strip() or media:
        effects += forward(conference, closing_text, media, opted_out)
    else:  # nothing to forward: the invitees still hear the call is over
        effects += forward(conference, DEFAULT_CLOSING, opted_out=opted_out)
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
            QueueText((conference.organizer,), recap(closed) + FOLLOW_UP_SAID, "recap",
                      conference.id)]


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


def on_call_refused(conference: Conference | None, number: str, detail: str) -> Decision:
    """A RING that Bandwidth would not place: tell the organizer, once."""
    if conference is None:
        return Decision(IGNORED)
    return Decision(TOLD, [QueueText((conference.organizer,),
                                     f"Could not ring {number}: {detail}"[:TEXT_LIMIT],
                                     "notice", conference.id)])


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


def on_member_left(rules: Rules, conference: Conference | None,
                   event: MemberLeft) -> Decision:
    """A caller left. With `end_when_organizer_leaves`, the organizer hanging up ends the
    call as if they had texted the default closing text."""
    if conference is None:
        return Decision(IGNORED)
    if conference.status == ENDED and all(m.call_id != event.call_id
                                          for m in conference.members):
        return Decision(IGNORED)  # a stray leave must not add a caller to a finished record
    left = RecordLeave(event.call_id, event.time, conference.id, event.caller)
    detail = f"{event.caller} left {conference.id} (call {event.call_id})"
    if (rules.end_when_organizer_leaves and conference.status == ACTIVE
            and event.caller == conference.organizer):
        ending = end(conference, DEFAULT_CLOSING, event.time)
        return Decision(ENDS, [left, *ending.effects],
                        f"{detail}: the organizer left, so it ends")
    return Decision(LEFT, [left], detail)


def on_disconnect(event: CallDisconnected) -> Decision:
    """A call ended: it has left whatever conference it was in (disconnect events carry
    only the call, so which conference is not known here)."""
    return Decision(RECORDED, [RecordLeave(event.call_id, event.time)])


def on_conference_completed(conference: Conference | None, event: ConferenceCompleted,
                            now: float) -> Decision:
    """Bandwidth's conference is gone. Ours ends only if its organizer asked; otherwise the
    last caller hung up, and the next caller starts a new Bandwidth conference of that name.
    It ended when Bandwidth says, but never later than now: a clock of Bandwidth's that runs
    ahead must not stretch the FOLLOW_UP after it."""
    if conference is None:
        return Decision(IGNORED)
    if conference.status == ENDING:
        return Decision(CLOSED, finish(conference, min(event.time, now)),
                        f"{conference.id} ended")
    if conference.status == ACTIVE:
        return Decision(RECORDED, [RecordBandwidthId(conference.id, None)])
    return Decision(IGNORED)


def on_recording_available(rules: Rules, conference: Conference | None,
                           event: RecordingAvailable, now: float, token: str) -> Decision:
    """Bandwidth has a recording of the conference: keep it, with a link that works for
    `link_days`. Once the recap has gone, the organizer gets the link in a text of its
    own; before, the recap carries it."""
    if conference is None:
        return Decision(IGNORED)
    link = f"{rules.public_url.rstrip('/')}/recordings/{token}"
    recording = Recording(event.recording_id, event.status, link,
                          now + rules.link_days * 86400, event.duration)
    effects: list[Effect] = [RecordRecording(conference.id, event.bandwidth_id, recording,
                                             event.media_url, now)]
    if conference.status == ENDED:
        said = (f"The recording of your conference: {link} (the link works for "
                f"{rules.link_days} days)." if recording.usable
                else "The recording of your conference failed on Bandwidth.")
        effects.append(QueueText((conference.organizer,), said, "recording", conference.id))
    return Decision(RECORDED, effects, f"a recording of {conference.id}: {event.status}")


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


def answer_dialled(callee: str, tag: str | None, machine: str,
                   conferences: list[Conference]) -> tuple[str, Conference | None]:
    """What a call RING placed does once answered: "join" its conference (named by the
    call's tag) while it is active; "voicemail" when a machine answered (it must not be put
    into the conference); else "over"."""
    if machine == "answering-machine":
        return "voicemail", None
    chosen = next((c for c in conferences if c.id == tag and c.may_join(callee)), None)
    return ("join", chosen) if chosen is not None else ("over", None)


def choose(conferences: list[Conference], caller: str) -> Conference | None:
    """The conference a caller joins: the newest active one that invited them."""
    joinable = [c for c in conferences if c.may_join(caller)]
    return max(joinable, key=lambda c: c.created_at, default=None)


def recap(conference: Conference) -> str:
    """The organizer's record of an ended conference, as one text."""
    if not conference.members:
        return (f"Conference ended. Nobody joined. Invited: {', '.join(conference.invitees)}."
                + ("" if not conference.recordings else recordings_said(conference)))
    first = min(m.joined_at for m in conference.members)
    last = max((m.left_at or first) for m in conference.members)
    ran = format_duration(max(last, conference.ended_at or last) - first)
    totals = time_on_call(conference)
    joined = ", ".join(f"{number} ({format_duration(spent)})" for number, spent in totals.items())
    never = [n for n in conference.invitees if n not in totals]
    text = f"Conference ended after {ran}. Joined: {joined}."
    text += f" Never joined: {', '.join(never)}." if never else " Everyone joined."
    return text + recordings_said(conference)


FOLLOW_UP_SAID = (f" For {FOLLOW_UP / 60:.0f} minutes, a text from you with no phone number"
                  " still goes to everyone invited.")


def recordings_said(conference: Conference) -> str:
    """What the recap says of the conference's recordings: their links, or that one
    follows (a recording becomes available a while after the call ends)."""
    usable = [r for r in conference.recordings if r.usable]
    if usable:
        return " Recording: " + ", ".join(r.link for r in usable) + "."
    if conference.recordings:
        return " The recording failed."
    return " The recording follows when Bandwidth has it." if conference.recorded else ""
