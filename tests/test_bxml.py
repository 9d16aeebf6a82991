"""BXML answers: what Bandwidth reads back."""

from __future__ import annotations

from defusedxml import ElementTree

from confcall import bxml


def test_join_puts_the_name_in_the_text_and_says_goodbye_after() -> None:
    document = bxml.join_conference("confcall-ab12", "https://h/callbacks/voice/conference",
                                    "confcall-ab12", ("user", 'p&"<>'))
    assert document.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ElementTree.fromstring(document)
    assert [child.tag for child in root] == ["SpeakSentence", "Conference", "SpeakSentence"]
    verb = root.find("Conference")
    assert verb.text == "confcall-ab12"
    assert verb.attrib == {
        "conferenceEventUrl": "https://h/callbacks/voice/conference",
        "conferenceEventMethod": "POST", "tag": "confcall-ab12",
        "username": "user", "password": 'p&"<>',
    }
    assert root[2].text == bxml.GOODBYE


def test_refuse_speaks_then_hangs_up() -> None:
    root = ElementTree.fromstring(bxml.refuse())
    assert [child.tag for child in root] == ["SpeakSentence", "Hangup"]


def test_empty_is_a_response_with_no_verbs() -> None:
    assert list(ElementTree.fromstring(bxml.empty())) == []


def test_conference_verb_reads_back_what_join_conference_wrote() -> None:
    document = bxml.join_conference("confcall-ab12", "https://h/e", "confcall-ab12", ("u", "p"))
    assert bxml.conference_verb(document) == ("confcall-ab12", {
        "conferenceEventUrl": "https://h/e", "conferenceEventMethod": "POST",
        "tag": "confcall-ab12", "username": "u", "password": "p"})
    assert bxml.conference_verb(bxml.refuse()) is None
    assert bxml.conference_verb("not xml") is None
    bomb = '<!DOCTYPE r [<!ENTITY a "aaaa">]><Response><Conference>&a;</Conference></Response>'
    assert bxml.conference_verb(bomb) is None
