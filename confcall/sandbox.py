"""An embedded fake Bandwidth, for running with no account: it takes texts and conference
updates through the same client code as live mode, checks each against Bandwidth's schemas,
sends the callbacks Bandwidth would, and shows what it "sent" at /sandbox/messages."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
from aiohttp import web

from confcall import bxml, payloads, schema, webhooks
from confcall.appkeys import CONFIG, SANDBOX, SESSION
from confcall.auth import authorized, basic_auth
from confcall.config import Config
from confcall.webhooks import SANDBOX_API, Handler

log = logging.getLogger("confcall.sandbox")


@dataclass
class SandboxConference:
    id: str
    name: str
    tag: str | None
    event_url: str
    auth: str | None
    created: str
    completed: str | None = None
    members: dict[str, str] = field(default_factory=dict)  # call id -> caller
    recording: tuple[str, str | None] | None = None  # where to say it is ready, with auth

    def listing(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "createdTime": self.created,
                "completedTime": self.completed, "conferenceEventUrl": self.event_url,
                "conferenceEventMethod": "POST", "tag": self.tag}


Then = Callable[[str], None] | None


def tone(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A real, short audio file (WAV, a 440 Hz tone): what a sandbox recording holds."""
    import io
    import math
    import struct
    import wave

    frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / rate)))
                      for n in range(int(seconds * rate)))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        audio.writeframes(frames)
    return buffer.getvalue()


def ranged(request: web.Request, body: bytes, content_type: str) -> web.Response:
    """`body`, or the one byte range the request asks for (206), as a media server does."""
    asked = request.headers.get("Range", "")
    headers = {"Accept-Ranges": "bytes"}
    if asked.startswith("bytes=") and "," not in asked:
        first, _, last = asked[6:].partition("-")
        try:
            start = int(first) if first else max(0, len(body) - int(last))
            end = min(len(body) - 1, int(last)) if first and last else len(body) - 1
        except ValueError:
            start, end = 0, -1
        if 0 <= start <= end:
            headers["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
            return web.Response(body=body[start:end + 1], status=206,
                                content_type=content_type, headers=headers)
        return web.Response(status=416, headers={"Content-Range": f"bytes */{len(body)}"})
    return web.Response(body=body, content_type=content_type, headers=headers)


def _error(status: int, kind: str, description: str) -> web.Response:
    return web.json_response({"type": kind, "description": description}, status=status)


class Sandbox:
    """What the fake Bandwidth holds: the texts it took and the conferences it runs."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.messages: list[dict[str, Any]] = []
        self.conferences: dict[str, SandboxConference] = {}
        self.calls: dict[str, tuple[str, str]] = {}  # call id -> (caller, line) in a conference
        self.placed: list[dict[str, Any]] = []  # the calls confcall placed (RING)
        self.recordings: dict[str, bytes] = {}  # recording id -> its audio (WAV)
        self._outgoing: asyncio.Queue[tuple[str, Any, str | None, Then]] = asyncio.Queue()

    # --- the callbacks Bandwidth would send, in order, one at a time ---------------------

    def _post(self, url: str, body: Any, auth: str | None, then: Then = None) -> None:
        """Send a callback; `then` acts on what confcall answered (BXML), as Bandwidth
        does with a conference event's answer."""
        self._outgoing.put_nowait((url, body, auth, then))

    def _server_auth(self) -> str | None:
        creds = self.config.server.callback_auth
        return basic_auth(*creds) if creds else None

    async def deliver(self, session: aiohttp.ClientSession) -> None:
        while True:
            url, body, auth, then = await self._outgoing.get()
            try:
                for attempt in range(3):
                    try:
                        async with session.post(
                            url, json=body, headers={"Authorization": auth} if auth else None,
                            timeout=aiohttp.ClientTimeout(total=10),
                        ) as answer:
                            if answer.status < 500:
                                if then is not None and answer.status == 200:
                                    then(await answer.text())
                                break
                    except (TimeoutError, aiohttp.ClientError) as exc:
                        log.warning("sandbox callback to %s failed: %s", url, exc)
                    await asyncio.sleep(0.2 * (attempt + 1))
            finally:
                self._outgoing.task_done()

    async def idle(self) -> None:
        """Wait until every queued callback was delivered."""
        await self._outgoing.join()

    # --- the call engine: what Bandwidth does with the BXML we answer ----------------------

    def call_answered(self, call: dict[str, Any], document: str) -> None:
        """An initiate callback (a call in) or an answer callback (a call confcall placed)
        was answered: act on its <Conference>, if any."""
        found = bxml.conference_verb(document)
        if found is None:
            return
        name, verb = found
        if call.get("eventType") == "answer":  # placed by confcall: the member is the callee
            call = {**call, "from": call["to"], "to": call["from"]}
        running = next((c for c in self.conferences.values()
                        if c.name == name and c.completed is None), None)
        if running is None:
            username, password = verb.get("username"), verb.get("password")
            running = SandboxConference(
                id=payloads.conference_id(), name=name, tag=verb.get("tag"),
                event_url=verb.get("conferenceEventUrl", ""),
                auth=basic_auth(username, password) if username and password else None,
                created=payloads.timestamp(),
            )
            self.conferences[running.id] = running
            self._conference_event(running, "conferenceCreated",
                                   then=partial(self._start_recording, running))
        running.members[call["callId"]] = call["from"]
        self.calls[call["callId"]] = (call["from"], call["to"])
        self._conference_event(running, "conferenceMemberJoin", call["callId"])

    def call_ended(self, call_id: str) -> None:
        """A caller hung up: they leave their conference; the last one out completes it."""
        for running in self.conferences.values():
            if call_id in running.members and running.completed is None:
                self._conference_event(running, "conferenceMemberExit", call_id)
                del running.members[call_id]
                if not running.members:
                    self._complete(running)
        self.calls.pop(call_id, None)

    def _start_recording(self, running: SandboxConference, answer: str) -> None:
        """confcall answered conferenceCreated with <StartRecording>: record it."""
        found = bxml.start_recording_verb(answer)
        if found is not None:
            username, password = found.get("username"), found.get("password")
            running.recording = (found.get("recordingAvailableUrl", ""),
                                 basic_auth(username, password) if username and password
                                 else None)

    def _complete(self, running: SandboxConference) -> None:
        """The conference is over: say so and, if it was recorded, that the recording is
        ready (a real, short audio file)."""
        running.completed = payloads.timestamp()
        self._conference_event(running, "conferenceCompleted")
        if running.recording is None or not running.recording[0]:
            return
        recording_id = payloads.recording_id()
        self.recordings[recording_id] = tone()
        bandwidth = self.config.bandwidth
        media = (f"{bandwidth.voice_api_url}/accounts/{bandwidth.account_id}/conferences/"
                 f"{running.id}/recordings/{recording_id}/media")
        url, auth = running.recording
        self._post(url, payloads.recording_available(
            conference=running.id, name=running.name, tag=running.tag,
            account_id=bandwidth.account_id, recording=recording_id, media_url=media,
            started=running.created, ended=running.completed), auth)

    async def recording_media(self, request: web.Request) -> web.Response:
        """A recording's audio, a Range of it if asked (as Bandwidth serves it)."""
        # one confcall did not see made (`confcall simulate-call --recording`) is made now
        audio = self.recordings.setdefault(request.match_info["recording"], tone())
        return ranged(request, audio, "audio/vnd.wave")

    def _conference_event(self, running: SandboxConference, kind: str,
                          call_id: str | None = None, then: Then = None) -> None:
        if not running.event_url:
            return
        caller, line = self.calls.get(call_id or "", (None, None))
        body = payloads.conference_event(kind, conference=running.id, name=running.name,
                                         tag=running.tag, call=call_id, caller=caller, line=line)
        self._post(running.event_url, body, running.auth, then)

    # --- the API confcall calls ----------------------------------------------------------

    async def create_message(self, request: web.Request) -> web.Response:
        body = await _json(request)
        problems = schema.problems("messageRequest", body) if schema.available() else []
        if problems:
            return web.json_response({"type": "request-validation", "description":
                                      "; ".join(problems)}, status=400)
        message = {
            "id": payloads.message_id(),
            "owner": body["from"],
            "applicationId": body["applicationId"],
            "time": payloads.timestamp(),
            "segmentCount": 1,
            "direction": "out",
            "to": body["to"],
            "from": body["from"],
            "text": body.get("text", ""),
            **({"media": body["media"]} if body.get("media") else {}),
            **({"tag": body["tag"]} if "tag" in body else {}),
        }
        self.messages.append(message)
        url = self.config.callback_url("/callbacks/messaging")
        for recipient in message["to"]:
            self._post(url, payloads.message_status(
                kind="message-delivered", message=message, recipient=recipient,
                description="Message delivered to handset."), self._server_auth())
        return web.json_response(message, status=202)

    async def create_call(self, request: web.Request) -> web.Response:
        """Place a call (RING): the callee answers at once, a person (not a voicemail), and
        confcall's answerUrl is asked what to do, as Bandwidth would after its machine
        detection."""
        body = await _json(request)
        problems = schema.problems("createCall", body)
        if problems:
            return _error(400, "validation", "; ".join(problems))
        call = payloads.call_id()
        bandwidth = self.config.bandwidth
        placed = {
            "applicationId": body["applicationId"], "accountId": bandwidth.account_id,
            "callId": call, "to": body["to"], "from": body["from"],
            "callUrl": f"{bandwidth.voice_api_url}/accounts/{bandwidth.account_id}/calls/{call}",
            "answerUrl": body["answerUrl"], "answerMethod": "POST",
            "disconnectMethod": "POST", "tag": body.get("tag"),
        }
        self.placed.append(placed)
        username, password = body.get("username"), body.get("password")
        auth = basic_auth(username, password) if username and password else None
        self._post(body["answerUrl"], payloads.answer(
            call=call, callee=body["to"], line=body["from"], account_id=bandwidth.account_id,
            application_id=body["applicationId"], voice_api_url=bandwidth.voice_api_url,
            tag=body.get("tag")), auth)
        return web.json_response(placed, status=201)

    async def list_conferences(self, request: web.Request) -> web.Response:
        name = request.query.get("name")
        found = [c.listing() for c in self.conferences.values() if name in (None, c.name)]
        return web.json_response(found)

    async def update_conference(self, request: web.Request) -> web.Response:
        body = await _json(request)
        problems = schema.problems("updateConference", body) if schema.available() else []
        if problems:
            return _error(400, "validation", "; ".join(problems))
        running = self.conferences.get(request.match_info["conference"])
        if running is None or running.completed is not None:
            return _error(404, "validation", "Conference not found")
        if body.get("status") == "completed":
            status_url = self.config.callback_url("/callbacks/voice/status")
            ended = list(running.members)
            for call_id in ended:
                self._conference_event(running, "conferenceMemberExit", call_id)
            running.members.clear()
            self._complete(running)
            # each member hears the goodbye after <Conference>, then hangs up
            for call_id in ended:
                caller, line = self.calls.pop(call_id, ("", ""))
                self._post(status_url, payloads.disconnect(
                    call=call_id, caller=caller, line=line,
                    account_id=self.config.bandwidth.account_id,
                    application_id=self.config.bandwidth.voice_application_id or "",
                    voice_api_url=self.config.bandwidth.voice_api_url,
                ), self._server_auth())
        return web.Response(status=204)

    def describe(self, application_id: str) -> str | None:
        """The account API's XML for one of the two applications, set up for this server
        as `confcall check` expects; None for an unknown id."""
        config = self.config
        user = config.server.callback_username
        creds = f"<UserId>{escape(user)}</UserId>" if user else ""
        if application_id == config.bandwidth.messaging_application_id:
            url = escape(config.callback_url("/callbacks/messaging"))
            inner = (f"<ServiceType>Messaging-V2</ServiceType><AppName>sandbox-messaging</AppName>"
                     f"<InboundCallbackUrl>{url}</InboundCallbackUrl>"
                     f"<OutboundCallbackUrl>{url}</OutboundCallbackUrl>"
                     f"<InboundCallbackCreds>{creds}</InboundCallbackCreds>"
                     f"<OutboundCallbackCreds>{creds}</OutboundCallbackCreds>")
        elif application_id == config.bandwidth.voice_application_id:
            initiate = escape(config.callback_url("/callbacks/voice/initiate"))
            status = escape(config.callback_url("/callbacks/voice/status"))
            inner = (f"<ServiceType>Voice-V2</ServiceType><AppName>sandbox-voice</AppName>"
                     f"<CallInitiatedCallbackUrl>{initiate}</CallInitiatedCallbackUrl>"
                     f"<CallInitiatedMethod>POST</CallInitiatedMethod>"
                     f"<CallStatusCallbackUrl>{status}</CallStatusCallbackUrl>"
                     f"<CallStatusMethod>POST</CallStatusMethod>"
                     f"<CallbackCreds>{creds}</CallbackCreds>")
        else:
            return None
        return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                f"<ApplicationProvisioningResponse><Application><ApplicationId>"
                f"{escape(application_id)}</ApplicationId>{inner}</Application>"
                "</ApplicationProvisioningResponse>")

    async def application(self, request: web.Request) -> web.Response:
        document = self.describe(request.match_info["application"])
        if document is None:
            return web.Response(status=404, content_type="application/xml", text=(
                '<?xml version="1.0" encoding="UTF-8"?><ApplicationProvisioningResponse>'
                "<ResponseStatus><ErrorCode>15501</ErrorCode><Description>Application not found"
                "</Description></ResponseStatus></ApplicationProvisioningResponse>"))
        return web.Response(content_type="application/xml", text=document)

    # --- what a person looks at ----------------------------------------------------------

    async def show_messages(self, request: web.Request) -> web.Response:
        return web.json_response(self.messages)

    async def show_conferences(self, request: web.Request) -> web.Response:
        return web.json_response([
            {**c.listing(), "members": [{"callId": k, "from": v} for k, v in c.members.items()]}
            for c in self.conferences.values()
        ])


async def _json(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except ValueError:
        raise web.HTTPBadRequest(text='{"type": "validation", "description": "not JSON"}',
                                 content_type="application/json") from None


@web.middleware
async def call_engine(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Plays Bandwidth's part after a voice callback: acts on the BXML the server answered
    an initiate with, and on a disconnect for a call that was in a conference."""
    response = await handler(request)
    if request.method != "POST" or response.status >= 300:
        return response
    if request.path in ("/callbacks/voice/initiate", "/callbacks/voice/answer") and isinstance(
            response, web.Response):
        call = await _json(request)
        if response.text and isinstance(call, dict) and call.get("eventType") in (
                "initiate", "answer"):
            request.app[SANDBOX].call_answered(call, response.text)
    elif request.path == "/callbacks/voice/status":
        call = await _json(request)
        if isinstance(call, dict) and call.get("eventType") == "disconnect":
            request.app[SANDBOX].call_ended(str(call.get("callId")))
    return response


def install(app: web.Application) -> None:
    """Mount the sandbox at /sandbox on `app` and run its callback sender with it."""
    if not schema.available():
        log.info("the sandbox does not check requests against Bandwidth's schemas: "
                 "%s to have it check them", schema.INSTALL_HINT)
    config = app[CONFIG]
    sandbox = Sandbox(config)
    app[SANDBOX] = sandbox
    bandwidth = config.bandwidth
    api_credentials = (bandwidth.username, bandwidth.password)

    @web.middleware
    async def api_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        """The fake API takes requests with the API credentials only, as Bandwidth does."""
        if request.path.startswith(SANDBOX_API) and not authorized(
                request.headers.get("Authorization"), api_credentials):
            return _error(401, "authentication", "Unauthorized")
        return await handler(request)

    sub = web.Application(middlewares=[api_auth])

    def route(method: str, path: str, handler: Handler) -> None:
        # behind the callback credentials and answering errors as every route of the app
        sub.router.add_route(method, path, webhooks.guard(handler, config))

    account = "{account}"
    route("POST", f"/messaging/api/v2/users/{account}/messages", sandbox.create_message)
    route("GET", f"/voice/api/v2/accounts/{account}/conferences", sandbox.list_conferences)
    route("POST", f"/voice/api/v2/accounts/{account}/calls", sandbox.create_call)
    route("GET", f"/voice/api/v2/accounts/{account}/conferences/{{conference}}"
          "/recordings/{recording}/media", sandbox.recording_media)
    route("POST", f"/voice/api/v2/accounts/{account}/conferences/{{conference}}",
          sandbox.update_conference)
    route("GET", f"/account/api/accounts/{account}/applications/{{application}}",
          sandbox.application)
    route("GET", "/messages", sandbox.show_messages)
    route("GET", "/conferences", sandbox.show_conferences)
    webhooks.add_no_route(sub, config)
    app.add_subapp("/sandbox", sub)

    async def sender(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(sandbox.deliver(app[SESSION]), name="confcall-sandbox")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(sender)
