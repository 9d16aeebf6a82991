"""BXML documents, the answers to Bandwidth's voice callbacks. Pure: builders return strings."""

from __future__ import annotations

from xml.etree import ElementTree

CONTENT_TYPE = "application/xml"
WELCOME = "Welcome. You are joining the conference."
GOODBYE = "The conference has ended. Goodbye."
REFUSAL = "Sorry, this number has no conference to join. Goodbye."


def _document(root: ElementTree.Element) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(
        root, encoding="unicode"
    )


def _speak(parent: ElementTree.Element, sentence: str) -> None:
    ElementTree.SubElement(parent, "SpeakSentence").text = sentence


def join_conference(
    name: str,
    event_url: str,
    tag: str,
    credentials: tuple[str, str] | None = None,
) -> str:
    """Put the caller into conference `name`; when it is ended they hear the goodbye."""
    root = ElementTree.Element("Response")
    _speak(root, WELCOME)
    attributes = {
        "conferenceEventUrl": event_url,
        "conferenceEventMethod": "POST",
        "tag": tag,
    }
    if credentials is not None:
        attributes["username"], attributes["password"] = credentials
    ElementTree.SubElement(root, "Conference", attributes).text = name
    _speak(root, GOODBYE)
    return _document(root)


def refuse() -> str:
    """One sentence, then hang up."""
    root = ElementTree.Element("Response")
    _speak(root, REFUSAL)
    ElementTree.SubElement(root, "Hangup")
    return _document(root)


def empty() -> str:
    """Nothing to do: for voice events confcall does not act on."""
    return _document(ElementTree.Element("Response"))
