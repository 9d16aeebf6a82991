"""Posting Bandwidth-shaped callbacks to a running confcall server, as Bandwidth would."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import aiohttp

from confcall import bxml, payloads
from confcall.auth import basic_auth
from confcall.config import Config
from confcall.errors import ConfcallError

TIMEOUT = aiohttp.ClientTimeout(total=15)


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    content_type: str


@dataclass(frozen=True)
class CallOutcome:
    """What a simulated call got: the BXML answer and what it means."""

    call_id: str
    answer: Answer
    conference: str | None  # the conference joined, or None when refused
    hung_up: bool


class Poster:
    """Posts callbacks to one server, with the callback credentials when configured."""

    def __init__(self, session: aiohttp.ClientSession, config: Config, url: str) -> None:
        self.session = session
        self.config = config
        self.url = url.rstrip("/")
        auth = config.server.callback_auth
        self.headers = {"Authorization": basic_auth(*auth)} if auth else {}

    async def post(self, path: str, body: Any) -> Answer:
        try:
            async with self.session.post(self.url + path, json=body, headers=self.headers,
                                         timeout=TIMEOUT) as response:
                answer = Answer(response.status, await response.text(), response.content_type)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ConfcallError(
                f"cannot reach {self.url} — is `confcall serve` running? ({type(exc).__name__})"
            ) from None
        if answer.status == 401:
            raise ConfcallError(
                f"{self.url} refused the callback credentials (401): set "
                "server.callback_username and server.callback_password as the server has them")
        return answer

    async def mode(self) -> str:
        """"sandbox" or "live", from the server's /healthz."""
        try:
            async with self.session.get(self.url + "/healthz", headers=self.headers,
                                        timeout=TIMEOUT) as response:
                health = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ConfcallError(
                f"cannot reach {self.url} — is `confcall serve` running? ({type(exc).__name__})"
            ) from None
        return str(health.get("mode", "live")) if isinstance(health, dict) else "live"

    async def text(self, sender: str, line: str, text: str) -> Answer:
        body = payloads.message_received(
            sender=sender, line=line, text=text,
            application_id=self.config.bandwidth.messaging_application_id or "simulated")
        return await self.post("/callbacks/messaging", body)

    async def call(self, caller: str, line: str, *, hangup: bool = False,
                   dialled_for: str | None = None, machine: str = "human") -> CallOutcome:
        """An inbound call; or, with `dialled_for` (a conference), `caller` answering a call
        RING placed for it (`machine`: what Bandwidth's machine detection found). Against a
        live server this also posts the conference events Bandwidth would send; a sandbox
        server's own fake Bandwidth sends those itself."""
        bandwidth = self.config.bandwidth
        call = payloads.call_id()
        ids = {"call": call, "caller": caller, "line": line,
               "account_id": bandwidth.account_id,
               "application_id": bandwidth.voice_application_id or "simulated",
               "voice_api_url": bandwidth.voice_api_url}
        if dialled_for is None:
            answer = await self.post("/callbacks/voice/initiate", payloads.initiate(**ids))
        else:
            answer = await self.post("/callbacks/voice/answer", payloads.answer(
                call=call, callee=caller, line=line, account_id=bandwidth.account_id,
                application_id=ids["application_id"], voice_api_url=bandwidth.voice_api_url,
                tag=dialled_for, machine=machine))
        if answer.status != 200:
            return CallOutcome(call, answer, None, False)
        conference = joined_conference(answer.body)
        plays_bandwidth = conference is not None and await self.mode() != "sandbox"
        if plays_bandwidth:
            assert conference is not None
            await self.post("/callbacks/voice/conference", payloads.conference_event(
                "conferenceMemberJoin", conference=f"conf-simulated-{conference}",
                name=conference, tag=conference, call=call, caller=caller, line=line))
        if hangup:
            if plays_bandwidth:
                assert conference is not None
                await self.post("/callbacks/voice/conference", payloads.conference_event(
                    "conferenceMemberExit", conference=f"conf-simulated-{conference}",
                    name=conference, tag=conference, call=call, caller=caller, line=line))
            await self.post("/callbacks/voice/status", payloads.disconnect(**ids))
        return CallOutcome(call, answer, conference, hangup)


async def recording(poster: Poster, conference: str) -> Answer:
    """Bandwidth saying a recording of `conference` is ready (conferenceRecordingAvailable);
    its media is on the configured voice API (a sandbox serves a short tone there)."""
    bandwidth = poster.config.bandwidth
    recording_id = payloads.recording_id()
    bandwidth_id = f"conf-simulated-{conference}"
    media = (f"{bandwidth.voice_api_url}/accounts/{bandwidth.account_id}/conferences/"
             f"{bandwidth_id}/recordings/{recording_id}/media")
    return await poster.post("/callbacks/voice/conference", payloads.recording_available(
        conference=bandwidth_id, name=conference, tag=conference,
        account_id=bandwidth.account_id, recording=recording_id, media_url=media,
        started=payloads.timestamp(), ended=None))


def joined_conference(document: str) -> str | None:
    """The conference a BXML answer puts the caller into, if any."""
    found = bxml.conference_verb(document)
    return found[0] if found is not None else None


def pretty_xml(document: str, width: int = 78) -> str:
    """BXML indented for a person to read: one verb a line, and a verb too wide for
    `width` with one attribute a line."""
    from xml.sax.saxutils import escape, quoteattr

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    try:
        root = fromstring(document)
    except (ParseError, DefusedXmlException):  # not XML, or hostile: show it as it came
        return document
    lines = [f"<{root.tag}>"]
    for verb in root:
        attributes = [f"{name}={quoteattr(value)}" for name, value in verb.attrib.items()]
        closing = f">{escape(verb.text)}</{verb.tag}>" if verb.text else "/>"
        line = "  <" + " ".join([verb.tag, *attributes]) + closing
        if len(line) > width and attributes:
            line = "\n".join([f"  <{verb.tag}", *(f"    {a}" for a in attributes)]) + closing
        lines.append(line)
    lines.append(f"</{root.tag}>")
    return "\n".join(lines)


def answer_json(answer: Answer) -> Any:
    try:
        return json.loads(answer.body)
    except ValueError:
        return answer.body


_PASSWORD_ATTRIBUTE = re.compile(r"""(\spassword\s*=\s*)(?:"[^"]*"|'[^']*')""")


def masked(document: str) -> str:
    """A BXML answer with the value of every password attribute (the callback credentials
    Bandwidth is to send with conference events) replaced by ***."""
    return _PASSWORD_ATTRIBUTE.sub(r'\1"***"', document)
