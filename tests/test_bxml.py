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
