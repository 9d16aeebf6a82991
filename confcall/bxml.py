"""BXML documents, the answers to Bandwidth's voice callbacks. Pure: builders return strings.

Built from escaped strings rather than an XML tree: these documents are small and fixed in
shape, and answering an inbound call is the hottest path there is."""

from __future__ import annotations

from functools import lru_cache
from xml.sax.saxutils import escape, quoteattr

CONTENT_TYPE = "application/xml"
WELCOME = "Welcome. You are joining the conference."
GOODBYE = "The conference has ended. Goodbye."
RECORDED = "This conference call is recorded."
REFUSAL = "Sorry, this number has no conference to join. Goodbye."
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def _speak(sentence: str) -> str:
    return f"<SpeakSentence>{escape(sentence)}</SpeakSentence>"


def _document(*verbs: str) -> str:
    return f"{_DECLARATION}<Response>{''.join(verbs)}</Response>"


# every call into a conference gets the same answer: build it once per conference
@lru_cache(maxsize=64)
def join_conference(
    name: str,
    event_url: str,
    tag: str,
    credentials: tuple[str, str] | None = None,
    recorded: bool = False,
) -> str:
    """Put the caller into conference `name` (telling them first when it is recorded);
    when it is ended they hear the goodbye."""
    attributes = {
        "conferenceEventUrl": event_url,
        "conferenceEventMethod": "POST",
        "tag": tag,
    }
    if credentials is not None:
        attributes["username"], attributes["password"] = credentials
    shown = "".join(f" {key}={quoteattr(value)}" for key, value in attributes.items())
    conference = f"<Conference{shown}>{escape(name)}</Conference>"
    said = [_speak(RECORDED)] if recorded else []
    return _document(*said, _speak(WELCOME), conference, _speak(GOODBYE))


def start_recording(available_url: str, credentials: tuple[str, str] | None = None) -> str:
    """The answer to a conferenceCreated: record the conference; Bandwidth says when the
    recording is ready at `available_url`."""
    attributes = {"recordingAvailableUrl": available_url, "recordingAvailableMethod": "POST",
                  "fileFormat": "wav"}
    if credentials is not None:
        attributes["username"], attributes["password"] = credentials
    shown = "".join(f" {key}={quoteattr(value)}" for key, value in attributes.items())
    return _document(f"<StartRecording{shown}/>")


REFUSE = _document(_speak(REFUSAL), "<Hangup/>")
OVER = _document(_speak(GOODBYE), "<Hangup/>")


def voicemail(line: str) -> str:
    """For a voicemail that answered a RING: one sentence to leave, then hang up."""
    return _document(_speak(f"You were invited to a conference call. Call {line} to join."),
                     "<Hangup/>")


def over() -> str:
    """A dialled call answered after its conference ended."""
    return OVER
EMPTY = _document()


def conference_verb(document: str) -> tuple[str, dict[str, str]] | None:
    """Read a BXML answer the way Bandwidth would: the name and attributes of the
    <Conference> it puts the caller into, or None. Parsed hardened: it may come from a
    server we did not write."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    try:
        verb = fromstring(document).find("Conference")
    except (ParseError, DefusedXmlException):
        return None
    if verb is None or not verb.text or not verb.text.strip():
        return None
    return verb.text.strip(), dict(verb.attrib)


def start_recording_verb(document: str) -> dict[str, str] | None:
    """The attributes of a BXML answer's <StartRecording>, or None: what Bandwidth acts on
    when a conference event is answered with one."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    try:
        verb = fromstring(document).find("StartRecording")
    except (ParseError, DefusedXmlException):
        return None
    return None if verb is None else dict(verb.attrib)


def refuse() -> str:
    """One sentence, then hang up."""
    return REFUSE


def empty() -> str:
    """Nothing to do: for voice events confcall does not act on."""
    return EMPTY
