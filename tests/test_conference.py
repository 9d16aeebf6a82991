"""The state machine as tables of (state, event) -> effects. No I/O."""

from __future__ import annotations

from dataclasses import replace

import msgspec
import pytest

from confcall import conference as cc
from confcall.conference import (
    BeginEnding,
    FinishConference,
    QueueCompletion,
    QueueRecapTimer,
    QueueText,
    RecordBandwidthId,
    RecordJoin,
    Rules,
    StartConference,
)
from confcall.events import ConferenceCompleted, ConferenceCreated, MemberJoined, TextReceived
from confcall.state import ACTIVE, ENDED, ENDING, Conference, Member

LINE, ORG, A, B, C = "+12015550100", "+12015550101", "+12015550110", "+12015550111", "+12015550112"
RULES = Rules(line=LINE, organizers=frozenset({ORG}), max_invites=3, region="US")
NOW = 1_000_000.0


def text(sender: str, body: str) -> TextReceived:
    return TextReceived(key="k", time=NOW, message_id="m", sender=sender, line=LINE, text=body,
                        application_id="app")


def conf(status: str = ACTIVE, **changes: object) -> Conference:
    base = Conference("confcall-1", ORG, status, (A, B, C), created_at=NOW - 600)
    return replace(base, **changes)  # type: ignore[arg-type]


def created(name: str = "confcall-1") -> ConferenceCreated:
    return ConferenceCreated(key="k", time=NOW, bandwidth_id="conf-9", name=name, tag=name)


def test_start() -> None:
    effects = cc.on_text(RULES, text(ORG, f"{A}, {B} and {LINE} x"), cc.Sender(), NOW,
                         "confcall-new").effects
    assert effects[0] == StartConference(Conference("confcall-new", ORG, ACTIVE, (A, B), NOW))
    assert effects[1:3] == [
        QueueText((A,), cc.invitation(ORG, LINE), "invite", "confcall-new"),
        QueueText((B,), cc.invitation(ORG, LINE), "invite", "confcall-new"),
    ]
    [confirmation] = effects[3:]
    assert isinstance(confirmation, QueueText) and confirmation.purpose == "confirm"
    assert "x" in confirmation.text


@pytest.mark.parametrize(("body", "start"), [
    ("no numbers here", "No phone numbers found"),
    (LINE, f"No phone numbers to invite found in your message. {LINE} is this line's number."),
    (ORG, f"No phone numbers to invite found in your message. You ({ORG}) are not invited"),
    (f"{A} {B} {C} +12015550113", "Too many numbers: you sent 4, the limit is 3"),
    # reading stopped at the count limit: whatever came after is unknown, so nothing starts
    (" ".join([A] * (cc.COUNT_LIMIT + 1)), "Too many numbers: you sent more than 100, the"),
    (" ".join([A] * cc.COUNT_LIMIT + [B] * 50), "Too many numbers: you sent more than 100,"),
    ("+1 555 555 0100, " * (cc.COUNT_LIMIT + 1), "Too many numbers: you sent more than 100"),
])
def test_refusals_create_nothing(body: str, start: str) -> None:
    [reply] = cc.on_text(RULES, text(ORG, body), cc.Sender(), NOW, "id").effects
    assert isinstance(reply, QueueText)
    assert reply.to == (ORG,) and reply.purpose == "refuse"
    assert reply.text.startswith(start)


def test_duplicates_and_the_line_do_not_count_against_the_invites() -> None:
    [start, *_] = cc.on_text(RULES, text(ORG, f"{A} {A} ({LINE[2:5]}) {LINE[5:8]}-{LINE[8:]} "
                                              f"{B} {C} {C}"), cc.Sender(), NOW, "id").effects
    assert start == StartConference(Conference("id", ORG, ACTIVE, (A, B, C), NOW))


def test_the_organizer_and_the_line_are_not_invited_and_the_confirmation_says_so() -> None:
    decision = cc.on_text(RULES, text(ORG, f"{A} {ORG} {LINE}"), cc.Sender(), NOW, "id")
    assert decision.outcome == cc.STARTED
    start, invite, confirmation = decision.effects
    assert isinstance(start, StartConference) and start.conference.invitees == (A,)
    assert isinstance(invite, QueueText) and invite.to == (A,)
    assert isinstance(confirmation, QueueText) and confirmation.purpose == "confirm"
    assert f"You ({ORG}) are not invited: you can always call in." in confirmation.text
    assert f"{LINE} is this line's number." in confirmation.text


def test_texts_while_ending_go_to_the_same_people() -> None:
    decision = cc.on_text(RULES, text(ORG, "notes are in the doc"), cc.Sender(conf(ENDING)), NOW,
                          "id")
    assert decision.outcome == cc.FORWARDED
    assert decision.effects == [QueueText((A, B, C), "notes are in the doc", "forward",
                                          "confcall-1")]


@pytest.mark.parametrize(("ended_ago", "outcome"), [(1, cc.FORWARDED), (cc.FOLLOW_UP, cc.FORWARDED),
                                                  (cc.FOLLOW_UP + 1, cc.REFUSED)])
def test_a_text_without_numbers_soon_after_the_recap_goes_to_the_same_people(
        ended_ago: float, outcome: str) -> None:
    ended = cc.Sender(conf(ENDED, ended_at=NOW - ended_ago))
    decision = cc.on_text(RULES, text(ORG, "notes are in the doc"), ended, NOW, "id")
    assert decision.outcome == outcome
    if outcome == cc.FORWARDED:
        assert decision.effects == [QueueText((A, B, C), "notes are in the doc", "forward",
                                              "confcall-1")]
    with_a_number = cc.on_text(RULES, text(ORG, f"and {A}"), ended, NOW, "id-2")
    assert with_a_number.outcome == cc.STARTED  # a new call, whenever it comes
    for word in ("WHO", "ring"):  # meant for the call, not for everyone
        assert cc.on_text(RULES, text(ORG, word), ended, NOW, "id-3").outcome == cc.REFUSED


def test_what_goes_to_the_call_s_people_after_the_recap_and_what_does_not() -> None:
    ended = cc.Sender(conf(ENDED, ended_at=NOW - 60))

    def decided(body: str, media: tuple[str, ...] = (),
                sender: cc.Sender = ended) -> cc.Decision:
        event = msgspec.structs.replace(text(ORG, body), media=media)
        return cc.on_text(RULES, event, sender, NOW, "id")

    # only this line's number or the organizer's own: nobody to invite, so a follow-up
    assert decided(f"questions? call me at {ORG}").outcome == cc.FORWARDED
    assert decided(f"call in again on {LINE}").outcome == cc.FORWARDED
    # a command with a picture is no command (as during the call): forwarded
    assert decided("WHO", ("https://example.com/p.jpg",)).outcome == cc.FORWARDED
    # more number-like parts than are read: refused, as a start text would be
    many = decided(" ".join(["555-01"] * 150))
    assert many.outcome == cc.REFUSED
    assert "more than 100" in many.effects[0].text  # type: ignore[attr-defined]
    # everyone said STOP: the organizer is told it went to no one
    nobody = decided("notes are in the doc", sender=cc.Sender(
        conf(ENDED, ended_at=NOW - 60), opted_out=frozenset({A, B, C})))
    assert nobody.effects == [QueueText((ORG,), cc.EVERYONE_OPTED_OUT, "notice",
                                        "confcall-1")]


def test_a_completion_dated_ahead_of_the_clock_ends_the_call_now() -> None:
    ahead = ConferenceCompleted(key="k", time=NOW + 3600, bandwidth_id="b", name="confcall-1",
                                tag=None)
    ended = cc.on_conference_completed(conf(ENDING), ahead, NOW)
    assert ended.effects[0] == FinishConference("confcall-1", NOW)


@pytest.mark.parametrize(("state", "outcome"), [(conf(), cc.ENDS), (conf(ENDING), cc.FORWARDED)])
def test_a_picture_alone_is_forwarded(state: Conference, outcome: str) -> None:
    picture = msgspec.structs.replace(text(ORG, ""),
                                      media=("https://messaging.bandwidth.com/media/p.jpg",))
    decision = cc.on_text(RULES, picture, cc.Sender(state), NOW, "id")
    assert decision.outcome == outcome
    [forward] = [e for e in decision.effects if isinstance(e, QueueText)
                 and e.purpose == "forward"]
    assert (forward.to, forward.text, forward.media) == ((A, B, C), "", picture.media)


def test_an_empty_end_text_is_never_silent() -> None:
    decision = cc.on_text(RULES, text(ORG, "  "), cc.Sender(conf()), NOW, "id")
    sent = [(e.to, e.purpose, e.text) for e in decision.effects if isinstance(e, QueueText)]
    assert ((A, B, C), "forward", cc.DEFAULT_CLOSING) in sent
    assert [t for to, purpose, t in sent if purpose == "notice" and to == (ORG,)] == [
        f'{cc.NOTHING_TO_FORWARD} Everyone got "{cc.DEFAULT_CLOSING}"']
    quiet = cc.on_text(RULES, text(ORG, ""), cc.Sender(conf(ENDING)), NOW, "id")
    assert quiet.effects == [QueueText((ORG,), cc.NOTHING_TO_FORWARD, "notice", "confcall-1")]


def test_a_closing_text_is_forwarded_in_at_most_four_parts_and_the_rest_is_said() -> None:
    effects = cc.end(conf(), "z" * (cc.TEXT_LIMIT * 6), NOW).effects
    parts = [e for e in effects if isinstance(e, QueueText) and e.purpose == "forward"]
    assert len(parts) == cc.FORWARD_PARTS
    [cut] = [e for e in effects if isinstance(e, QueueText) and e.purpose == "notice"]
    assert cut.to == (ORG,) and "only the first 8,192 were forwarded" in cut.text


def test_strangers_get_nothing() -> None:
    decision = cc.on_text(RULES, text(A, f"{B} {C}"), cc.Sender(), NOW, "id")
    assert (decision.outcome, decision.effects) == (cc.NOT_ORGANIZER, [])


@pytest.mark.parametrize(("state", "expected_tail"), [
    # nobody joined and Bandwidth never knew it: nothing to complete, recap at once
    (conf(), [FinishConference("confcall-1", NOW)]),
    # somebody joined: complete on Bandwidth, recap when it says so (or after 60 s)
    (conf(bandwidth_id="conf-9"), [QueueCompletion("confcall-1"),
                                   QueueRecapTimer("confcall-1", NOW + cc.RECAP_WAIT)]),
    (conf(members=(Member("c", A, NOW - 60),)), [QueueCompletion("confcall-1"),
                                                 QueueRecapTimer("confcall-1", NOW + 60)]),
])
def test_end(state: Conference, expected_tail: list[object]) -> None:
    effects = cc.on_text(RULES, text(ORG, "bye"), cc.Sender(state), NOW, "unused").effects
    assert effects[0] == BeginEnding("confcall-1", "bye")
    assert effects[1] == QueueText((A, B, C), "bye", "forward", "confcall-1")
    tail = [e for e in effects[2:] if not (isinstance(e, QueueText) and e.purpose == "recap")]
    assert tail == expected_tail


def test_forward_is_split_into_groups_of_ten() -> None:
    many = tuple(f"+1201555{i:04d}" for i in range(120, 145))
    effects = cc.end(conf(invitees=many), "bye", NOW).effects
    groups = [e.to for e in effects if isinstance(e, QueueText) and e.purpose == "forward"]
    assert groups == [many[:10], many[10:20], many[20:]]


@pytest.mark.parametrize(("state", "expected"), [
    (None, []),
    (conf(), [RecordBandwidthId("confcall-1", "conf-9")]),
    (conf(ENDED), [RecordBandwidthId("confcall-1", "conf-9"), QueueCompletion("confcall-1")]),
])
def test_conference_created(state: Conference | None, expected: list[object]) -> None:
    assert cc.on_conference_created(state, created()).effects == expected


def test_joins_to_ended_conferences_are_ignored() -> None:
    join = MemberJoined(key="k", time=NOW, bandwidth_id="b", name="confcall-1", tag=None,
                        call_id="c", caller=A)
    assert cc.on_member_joined(conf(ENDED), join).effects == []
    assert cc.on_member_joined(conf(ENDING), join).effects == [
        RecordJoin("confcall-1", "c", A, NOW)]


def test_completed_ends_only_what_the_organizer_ended() -> None:
    done = ConferenceCompleted(key="k", time=NOW, bandwidth_id="b", name="confcall-1", tag=None)
    # everyone hung up on their own: the conference stays open for callers to return
    assert cc.on_conference_completed(conf(ACTIVE), done, NOW).effects == [
        RecordBandwidthId("confcall-1", None)]
    ending = cc.on_conference_completed(conf(ENDING), done, NOW)
    assert ending.outcome == cc.CLOSED
    assert ending.effects[0] == FinishConference("confcall-1", NOW)
    assert cc.on_conference_completed(conf(ENDED), done, NOW).effects == []
    assert cc.on_recap_due(conf(ENDED), NOW).effects == []
    assert cc.on_recap_due(conf(ENDING), NOW).effects[0] == FinishConference("confcall-1", NOW)


def test_choose_the_newest_conference_that_invited_the_caller() -> None:
    old = conf(created_at=1.0)
    new = replace(conf(created_at=2.0), id="confcall-2")
    ended = replace(conf(ENDED, created_at=3.0), id="confcall-3")
    assert cc.choose([old, new, ended], A) is new
    assert cc.choose([old, new], ORG) is new  # the organizer may join their own
    assert cc.choose([old, new], "+12015550199") is None


def test_recap() -> None:
    members = (Member("c1", A, NOW, NOW + 300), Member("c2", A, NOW + 400, NOW + 500),
               Member("c3", B, NOW + 60, NOW + 3700))
    ended = conf(ENDED, members=members, ended_at=NOW + 3700)
    assert cc.recap(ended) == (f"Conference ended after 1h 01m. Joined: {A} (6m 40s), "
                               f"{B} (1h 00m). Never joined: {C}.")
    assert cc.recap(conf(ENDED, ended_at=NOW)).startswith("Conference ended. Nobody joined.")


def test_a_closing_text_longer_than_bandwidth_takes_goes_in_parts() -> None:
    closing = "x" * 2048 + "y" * 100
    effects = cc.end(conf(), closing, NOW).effects
    parts = [e.text for e in effects if isinstance(e, QueueText) and e.purpose == "forward"]
    assert parts == ["x" * 2048, "y" * 100]
    assert "".join(parts) == closing


def test_the_confirmation_quotes_at_most_five_stray_parts() -> None:
    body = f"{A}, " + ", ".join(f"word{i}" for i in range(40))
    effects = cc.on_text(RULES, text(ORG, body), cc.Sender(), NOW, "id").effects
    [confirmation] = [e for e in effects if isinstance(e, QueueText) and e.purpose == "confirm"]
    assert "word4; and 35 more." in confirmation.text
    assert "word5" not in confirmation.text


def test_texts_and_calls_to_another_number_are_not_ours() -> None:
    other = TextReceived(key="k", time=NOW, message_id="m", sender=ORG, line="+12015550150",
                         text=f"{A} {B}", application_id="app")
    decision = cc.on_text(RULES, other, cc.Sender(), NOW, "id")
    assert (decision.outcome, decision.effects) == (cc.OTHER_LINE, [])
    assert cc.answer(RULES, A, "+12015550150", [conf()]) is None
    assert cc.answer(RULES, A, LINE, [conf()]) == conf()


def test_a_forward_leaves_out_who_said_stop() -> None:
    effects = cc.end(conf(), "bye", NOW, opted_out=frozenset({B})).effects
    [forward] = [e for e in effects if isinstance(e, QueueText) and e.purpose == "forward"]
    assert forward.to == (A, C)
