"""A fake Bandwidth API for tests: a real aiohttp server that speaks Bandwidth's wire format,
rejects any request whose body breaks Bandwidth's OpenAPI schema, records what it accepted,
and misbehaves on request (status codes, Retry-After, slowness, dropped connections)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from confcall import schema
from confcall.sandbox import ranged, tone

FIXTURES = Path(__file__).parent / "fixtures" / "bandwidth"

# aiohttp 3.14 wants typed request keys; older releases take plain strings
ARRIVED: Any = web.RequestKey("arrived", float) if hasattr(web, "RequestKey") else "arrived"

ACCOUNT_ID = "9900000"
USERNAME = "api-user-7f2c"
PASSWORD = "api-secret-91d4e6"


def fixture(name: str) -> Any:
    """One of Bandwidth's example payloads (copied from shared/bandwidth/examples)."""
    return json.loads((FIXTURES / name).read_text())


@dataclass
class Fault:
    """How the next matching requests fail."""

    route: str  # "messages", "conference", "lookup", "application", "applications",
    # "application-update", or "*"
    times: int
    status: int = 503
    retry_after: str | None = None
    delay: float = 0.0
    drop: bool = False
    body: str | None = None  # answer this instead of Bandwidth's error body
    content_type: str = "application/json"
    hang: bool = False  # send the status line and headers, then never finish the body
    location: str | None = None  # a redirect's target (a path on this server)


@dataclass
class FakeBandwidth:
    account_id: str = ACCOUNT_ID
    username: str = USERNAME
    password: str = PASSWORD
    texts: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # when each of `texts` arrived
    completed: list[str] = field(default_factory=list)
    completed_at: list[float] = field(default_factory=list)  # when each of `completed` arrived
    lookups: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    refuse_numbers: set[str] = field(default_factory=set)
    conferences: list[dict[str, Any]] = field(default_factory=list)
    placed: list[dict[str, Any]] = field(default_factory=list)  # createCall bodies (RING)
    call_arrivals: list[float] = field(default_factory=list)  # when each of `placed` came
    recordings: dict[str, bytes] = field(default_factory=dict)  # recording id -> audio
    media_requests: list[str] = field(default_factory=list)  # the Range of each media GET
    applications: dict[str, str] = field(default_factory=dict)
    # account API writes (`confcall setup`): (application id, body) of each PUT, as sent
    application_updates: list[tuple[str, str]] = field(default_factory=list)
    requests: int = 0
    hung: int = 0  # requests taken and never finished (`hang` faults)
    redirected: int = 0  # GETs that followed a redirect to /elsewhere
    server: TestServer | None = None
    # checks each request against Bandwidth's schema; a benchmark timing when requests
    # arrive turns it off, so that checking one does not delay the next one's arrival
    validate: bool = True

    # --- set-up ---------------------------------------------------------------------------

    def fail(self, route: str, times: int, status: int = 503, *, retry_after: str | None = None,
             delay: float = 0.0, drop: bool = False, body: str | None = None,
             content_type: str = "application/json", hang: bool = False,
             location: str | None = None) -> None:
        """The next `times` requests to `route` fail so: `status` with Bandwidth's error body
        (or `body`), after `delay` seconds; `drop` closes the connection instead; `hang`
        accepts (sends the status line) and never finishes the body; a status below 400
        with no `body` lets the request through after the delay."""
        self.faults.append(Fault(route, times, status, retry_after, delay, drop, body,
                                 content_type, hang, location))

    def running_conference(self, name: str) -> str:
        """Bandwidth has a conference of this name running; returns its id."""
        listed = fixture("voice-response.listConferences.json")[0]
        conference_id = f"conf-{uuid.uuid4()}"
        listed.update(id=conference_id, name=name, completedTime=None)
        self.conferences.append(listed)
        return conference_id

    @property
    def base(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def urls(self) -> dict[str, str]:
        return {
            "bandwidth.messaging_api_url": f"{self.base}/api/v2",
            "bandwidth.voice_api_url": f"{self.base}/voice/api/v2",
            "bandwidth.account_api_url": f"{self.base}/account/api",
        }

    def texts_to(self, number: str) -> list[dict[str, Any]]:
        return [t for t in self.texts if number in t["to"]]

    # --- the server -----------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate])
        acct = "{account}"
        app.router.add_post(f"/api/v2/users/{acct}/messages", self._messages, name="messages")
        app.router.add_get(f"/voice/api/v2/accounts/{acct}/conferences", self._lookup,
                           name="lookup")
        app.router.add_post(f"/voice/api/v2/accounts/{acct}/conferences/{{id}}",
                            self._conference, name="conference")
        app.router.add_post(f"/voice/api/v2/accounts/{acct}/calls", self._calls, name="calls")
        app.router.add_get(f"/voice/api/v2/accounts/{acct}/conferences/{{id}}/recordings/"
                           "{recording}/media", self._media, name="media")
        app.router.add_get(f"/account/api/accounts/{acct}/applications/{{id}}",
                           self._application, name="application")
        # where a redirect from the messaging API leads: answers any GET with a message
        app.router.add_get("/elsewhere/{tail:.*}", self._elsewhere, name="elsewhere")
        self._add_application_writes(app)
        return app

    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests += 1
        request[ARRIVED] = time.monotonic()
        if request.match_info.route.name == "elsewhere":
            return await handler(request)
        credentials = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {credentials}":
            return web.json_response(fixture("error.unauthorized.json"), status=401)
        if request.match_info.get("account") != self.account_id:
            return web.json_response(fixture("error.unauthorized.json"), status=403)
        route = request.match_info.route.name or ""
        for fault in self.faults:
            if fault.times > 0 and fault.route in (route, "*"):
                fault.times -= 1
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.drop:
                    assert request.transport is not None
                    request.transport.close()
                    return web.Response(status=500)
                if fault.hang:
                    return await self._hang(request, fault.status)
                if fault.location is not None:
                    raise web.HTTPFound(fault.location) if fault.status == 302 else (
                        web.HTTPMovedPermanently(fault.location))
                if fault.body is not None:
                    return web.Response(text=fault.body, status=fault.status,
                                        content_type=fault.content_type)
                if fault.status < 400:
                    break
                body = fixture("error.tooManyRequests.json" if fault.status == 429
                               else "error.internalServerError.json")
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
                return web.json_response(body, status=fault.status, headers=headers)
        return await handler(request)

    async def _hang(self, request: web.Request, status: int) -> web.StreamResponse:
        """Take the request, send the status line, then let the body never end."""
        await request.read()
        self.hung += 1
        answer = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
        answer.content_length = 1000
        await answer.prepare(request)
        await answer.write(b'{"id": ')
        await asyncio.sleep(3600)
        return answer

    async def _elsewhere(self, request: web.Request) -> web.Response:
        self.redirected += 1
        answer = fixture("messaging-response.createMessage.json")
        answer["id"] = f"elsewhere-{uuid.uuid4().hex[:12]}"
        return web.json_response(answer)

    def _check(self, name: str, body: Any, path: str) -> list[str]:
        if not self.validate:
            return []
        problems = schema.problems(name, body)
        if problems:
            self.rejected.append(f"{path}: {problems}")
        return problems

    async def _messages(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self._check("messageRequest", body, request.path):
            return web.json_response({"type": "request-validation",
                                      "description": "invalid request"}, status=400)
        refused = [n for n in body["to"] if n in self.refuse_numbers]
        if refused:
            return web.json_response({
                "type": "request-validation",
                "description": f"'{refused[0]}' must be replaced with a valid E164 number",
            }, status=400)
        self.texts.append(body)
        self.arrivals.append(request[ARRIVED])
        answer = fixture("messaging-response.createMessage.json")
        answer.update(id=f"{uuid.uuid4().hex[:20]}", owner=body["from"], to=body["to"],
                      applicationId=body["applicationId"], text=body.get("text", ""),
                      tag=body.get("tag", ""), direction="out")
        answer.pop("media", None)
        answer.pop("expiration", None)
        return web.json_response(answer, status=202)

    async def _calls(self, request: web.Request) -> web.Response:
        """createCall: recorded, answered with Bandwidth's createCallResponse."""
        body = await request.json()
        if self._check("createCall", body, request.path):
            return web.json_response(fixture("error.voiceInternalServerError.json"), status=400)
        self.placed.append(body)
        self.call_arrivals.append(request[ARRIVED])
        call_id = f"c-{uuid.uuid4()}"
        answer = {"applicationId": body["applicationId"], "accountId": self.account_id,
                  "callId": call_id, "to": body["to"], "from": body["from"],
                  "callUrl": f"{self.base}/voice/api/v2/accounts/{self.account_id}/calls/"
                             f"{call_id}",
                  "answerUrl": body["answerUrl"], "answerMethod": "POST",
                  "disconnectMethod": "POST", "tag": body.get("tag")}
        problems = schema.problems("createCallResponse", answer)
        assert not problems, problems
        return web.json_response(answer, status=201)

    def recording_url(self, conference_id: str, recording_id: str) -> str:
        """Where Bandwidth keeps a recording's media (served by this fake)."""
        self.recordings.setdefault(recording_id, tone())
        return (f"{self.base}/voice/api/v2/accounts/{self.account_id}/conferences/"
                f"{conference_id}/recordings/{recording_id}/media")

    async def _media(self, request: web.Request) -> web.Response:
        self.media_requests.append(request.headers.get("Range", ""))
        audio = self.recordings.get(request.match_info["recording"])
        if audio is None:
            return web.json_response(fixture("error.voiceNotFoundError.json"), status=404)
        return ranged(request, audio, "audio/vnd.wave")

    async def _lookup(self, request: web.Request) -> web.Response:
        name = request.query.get("name", "")
        self.lookups.append(name)
        return web.json_response([c for c in self.conferences if c["name"] == name])

    async def _conference(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self._check("updateConference", body, request.path):
            return web.json_response(fixture("error.voiceInternalServerError.json"), status=400)
        conference_id = request.match_info["id"]
        known = [c for c in self.conferences if c["id"] == conference_id]
        if known and known[0]["completedTime"]:
            return web.json_response(fixture("error.voiceNotFoundError.json"), status=404)
        if body.get("status") == "completed":
            self.completed.append(conference_id)
            self.completed_at.append(request[ARRIVED])
            for c in known:
                c["completedTime"] = "2026-01-01T00:00:00.000Z"
        return web.Response(status=204)

    async def _application(self, request: web.Request) -> web.Response:
        text = self.applications.get(request.match_info["id"])
        if text is None:
            return web.Response(status=404, content_type="application/xml", text=(
                "<ApplicationProvisioningResponse><ResponseStatus><ErrorCode>15501</ErrorCode>"
                "<Description>Application not found</Description></ResponseStatus>"
                "</ApplicationProvisioningResponse>"))
        return web.Response(text=text, content_type="application/xml")

    # --- account API: listing and updating applications (`confcall setup`) ---------------
    # As Bandwidth documents them: GET …/applications answers every application in an
    # <ApplicationList>; PUT …/applications/{id} takes an <Application> document that
    # replaces ALL the application's settings, answers 200 with the application as stored,
    # and later reads never show a <Password>.

    def _add_application_writes(self, app: web.Application) -> None:
        acct = "{account}"
        app.router.add_get(f"/account/api/accounts/{acct}/applications",
                           self._list_applications, name="applications")
        app.router.add_put(f"/account/api/accounts/{acct}/applications/{{id}}",
                           self._update_application, name="application-update")

    async def _list_applications(self, request: web.Request) -> web.Response:
        items = "".join(_application_element(document)
                        for document in self.applications.values())
        return web.Response(content_type="application/xml", text=(
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f"<ApplicationProvisioningResponse>\n    <ApplicationList>{items}\n"
            "    </ApplicationList>\n</ApplicationProvisioningResponse>\n"))

    def _refuse(self, request: web.Request, problem: str) -> web.Response:
        self.rejected.append(f"{request.method} {request.path}: {problem}")
        return web.Response(status=400, content_type="application/xml", text=(
            "<ApplicationProvisioningResponse><ResponseStatus><ErrorCode>12345</ErrorCode>"
            f"<Description>{problem}</Description></ResponseStatus>"
            "</ApplicationProvisioningResponse>"))

    async def _update_application(self, request: web.Request) -> web.Response:
        from defusedxml import DefusedXmlException
        from defusedxml.ElementTree import ParseError, fromstring

        application_id = request.match_info["id"]
        current = self.applications.get(application_id)
        if current is None:
            return await self._application(request)  # the same 404
        body = await request.text()
        self.application_updates.append((application_id, body))
        if request.content_type != "application/xml":
            return self._refuse(request, f"Content-Type {request.content_type}")
        try:
            root = fromstring(body, forbid_dtd=True)
        except (ParseError, DefusedXmlException) as exc:
            return self._refuse(request, f"not XML: {exc}")
        if root.tag != "Application":
            return self._refuse(request, f"root element <{root.tag}>, not <Application>")
        service_type = fromstring(current).findtext("Application/ServiceType")
        if root.findtext("ServiceType") not in (None, service_type):
            return self._refuse(request, "ServiceType cannot change")
        needed = ("AppName", "InboundCallbackUrl" if service_type == "Messaging-V2"
                  else "CallInitiatedCallbackUrl")
        missing = [name for name in needed if not root.findtext(name)]
        if missing:
            return self._refuse(request, f"{missing[0]} is mandatory")
        stored = re.sub(r"\s*<Password>.*?</Password>", "", body, flags=re.S)
        self.applications[application_id] = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f"<ApplicationProvisioningResponse>\n    {stored}\n"
            "</ApplicationProvisioningResponse>\n")
        return web.Response(text=self.applications[application_id],
                            content_type="application/xml")


def _application_element(document: str) -> str:
    """The <Application> element of an account API answer, as text."""
    found = re.search(r"<Application>.*</Application>", document, re.S)
    assert found is not None, document
    return "\n        " + found.group(0)
