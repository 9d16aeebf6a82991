"""The webhook handlers: body -> events -> conference decisions -> one transaction -> reply."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from confcall import bxml, conference, logs
from confcall.appkeys import CLIENT, CLOCK, CONFERENCE_EVENTS_URL, CONFIG, OUTBOX, RULES, STORE
from confcall.auth import authorized
from confcall.conference import Decision
from confcall.config import Config
from confcall.errors import StoreUnavailable
from confcall.events import (
    BadEvent,
    CallAnswered,
    CallInitiated,
    ConferenceCreated,
    Event,
    RecordingAvailable,
    TextReceived,
    check_time,
    decode_messaging,
    decode_voice,
)
from confcall.handle import entry

log = logging.getLogger("confcall.webhooks")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 64 * 1024


class ClientGone(Exception):
    """The caller went away before its request's body arrived: nobody waits for an answer."""
JSON_TYPES = ("application/json", "text/json", "application/octet-stream")
# the Content-Type headers Bandwidth sends, taken as they are (parsing one costs more)
_PLAIN_JSON = frozenset({"application/json", "application/json; charset=utf-8"})
# the sandbox's fake Bandwidth API: it checks Bandwidth's API credentials, as Bandwidth does
SANDBOX_API = ("/sandbox/messaging/", "/sandbox/voice/", "/sandbox/account/")
OK = json.dumps({"ok": True}).encode()
_JSON_HEADERS = {hdrs.CONTENT_TYPE: "application/json"}


def new_conference_id() -> str:
    return "confcall-" + secrets.token_hex(6)


async def read_body(request: web.Request) -> bytes:
    """The request body, once it is known to be JSON (by its content type) and has arrived
    within the body timeout."""
    if (request.headers.get(hdrs.CONTENT_TYPE) not in _PLAIN_JSON
            and request.content_type not in JSON_TYPES
            and not request.content_type.endswith("+json")):
        raise web.HTTPUnsupportedMediaType(
            text=json.dumps({"error": f"expected application/json, got {request.content_type}"}),
            content_type="application/json",
        )
    if request.content.is_eof():  # it came with the headers, as a callback's body does:
        return await request.read()  # nothing to wait for, so no timer to set and cancel
    within = request.app[CONFIG].server.body_timeout
    try:
        async with asyncio.timeout(within):
            return await request.read()
    except TimeoutError:  # a body trickling in a byte at a time holds a connection for ever
        raise web.HTTPRequestTimeout(
            text=json.dumps({"error": f"the body did not arrive within {within:.0f} s"}),
            content_type="application/json", headers={"Connection": "close"}) from None
    except (ConnectionError, aiohttp.ClientError, HttpProcessingError) as exc:
        raise ClientGone(f"{type(exc).__name__}") from None


# --- one event, whole -----------------------------------------------------------------------

MAX_TEXTS_PER_CALLBACK = 10  # inbound texts one callback may act on (each up to ~21 texts out)


async def handle(app: web.Application, event: Event) -> Decision | None:
    """Run `event` through its registry entry in one committed transaction (claim, read,
    decide, apply), then log what it did and wake the outbox if it queued anything. None
    for a replay or an event confcall does not act on."""
    found = entry(event)
    if found is None:
        return None
    store, rules, now = app[STORE], app[RULES], app[CLOCK]()
    # a conference starts only from an organizer's text: no random bytes for the others;
    # a recording gets a link of 128 random bits
    new_id = (new_conference_id() if isinstance(event, TextReceived)
              and event.sender in rules.organizers
              else secrets.token_urlsafe(16) if isinstance(event, RecordingAvailable) else "")
    decision = await store.handle(found, event, rules, now, new_id)
    if decision is None:
        return None
    line = found.line(event, decision)
    if line:
        logs.info(log, line)
    if decision.effects and decision.queues():
        app[OUTBOX].wake()
    return decision


# --- messaging ----------------------------------------------------------------------------


async def messaging(request: web.Request) -> web.Response:
    """POST /callbacks/messaging: inbound texts and the status of the texts we sent. Each
    event of the array stands alone: one that is not Bandwidth's shape, or that happened
    at an impossible time, is refused without holding up the others. A body whose every
    event is refused is a 400."""
    items = decode_messaging(await read_body(request))
    app = request.app
    now = app[CLOCK]()
    if len(items) == 1:  # nearly every callback: one event, nothing to gather or count
        [item] = items
        if isinstance(item, Event):
            check_time(item, now)  # a BadEvent here is the body's 400, as below
            await handle(app, item)
            return web.Response(body=OK, headers=_JSON_HEADERS)
        raise item
    events: list[Event] = []
    refused: list[str] = []
    texts = 0
    for item in items:
        if isinstance(item, Event):
            try:
                check_time(item, now)
            except BadEvent as exc:
                item = exc
        if isinstance(item, TextReceived):
            texts += 1
            if texts > MAX_TEXTS_PER_CALLBACK:
                item = BadEvent(f"more than {MAX_TEXTS_PER_CALLBACK} texts in one callback")
        if isinstance(item, BadEvent):
            refused.append(str(item))
        else:
            events.append(item)
    if refused and not events:
        raise BadEvent("; ".join(refused[:5]))
    if len(events) == 1:  # no task to make for it
        await handle(app, events[0])
    else:
        await asyncio.gather(*(handle(app, event) for event in events))
    if refused:
        log.warning("POST /callbacks/messaging: refused %d of %d events: %s", len(refused),
                    len(items), "; ".join(refused[:3]))
        return web.json_response({"ok": True, "refused": refused[:20]})
    return web.Response(body=OK, headers=_JSON_HEADERS)


# --- voice --------------------------------------------------------------------------------


_XML_HEADERS = {hdrs.CONTENT_TYPE: f"{bxml.CONTENT_TYPE}; charset=utf-8"}


def _bxml(document: str) -> web.Response:
    return web.Response(body=document.encode(), headers=_XML_HEADERS)


@functools.lru_cache(maxsize=64)
def _join(conference_id: str, event_url: str, credentials: tuple[str, str] | None,
          recorded: bool) -> bytes:
    """The answer that puts a caller into `conference_id`: the same for every call."""
    return bxml.join_conference(conference_id, event_url, conference_id, credentials,
                                recorded).encode()


async def initiate(request: web.Request) -> web.Response:
    """POST /callbacks/voice/initiate: an inbound call. Invited callers join; others hear
    one sentence and are hung up on. Reads only: a replay gets the same answer."""
    event = decode_voice(await read_body(request))
    if not isinstance(event, CallInitiated):
        return _bxml(bxml.empty())
    app = request.app
    config, rules = app[CONFIG], app[RULES]
    chosen = conference.answer(rules, event.caller, event.line,
                               await app[STORE].to_join(event.caller))
    if chosen is None:
        why = "not invited" if event.line == rules.line else f"a call to {event.line}"
        log.info("call %s from %s refused: %s", event.call_id, event.caller, why)
        return _bxml(bxml.refuse())
    # At INFO the join is logged once, when Bandwidth reports it; Bandwidth may deliver an
    # initiate more than once, and a caller may hang up before the conference answers.
    if log.isEnabledFor(logging.DEBUG):
        log.debug("call %s from %s: answered with %s", event.call_id, event.caller, chosen.id)
    return web.Response(body=_join(chosen.id, app[CONFERENCE_EVENTS_URL],
                                   config.server.callback_auth, chosen.recorded),
                        headers=_XML_HEADERS)


async def answered(request: web.Request) -> web.Response:
    """POST /callbacks/voice/answer: someone answered a call RING placed. A person joins
    the conference it was placed for, while that is active; a voicemail hears how to join
    and is hung up on. Reads only, like an inbound call."""
    event = decode_voice(await read_body(request))
    if not isinstance(event, CallAnswered):
        return _bxml(bxml.empty())
    app = request.app
    what, chosen = conference.answer_dialled(event.callee, event.tag, event.machine,
                                             await app[STORE].to_join(event.callee))
    if what == "voicemail":
        log.info("call %s to %s: a voicemail answered", event.call_id, event.callee)
        return _bxml(bxml.voicemail(app[RULES].line))
    if chosen is None:
        return _bxml(bxml.over())
    return web.Response(body=_join(chosen.id, app[CONFERENCE_EVENTS_URL],
                                   app[CONFIG].server.callback_auth, chosen.recorded),
                        headers=_XML_HEADERS)


async def voice_event(request: web.Request) -> web.Response:
    """POST /callbacks/voice/conference and /callbacks/voice/status: conference and call
    events. Each is applied once, however often Bandwidth delivers it."""
    event = decode_voice(await read_body(request))
    app = request.app
    check_time(event, app[CLOCK]())
    await handle(app, event)  # an initiate posted here is not acted on: no entry
    config = app[CONFIG]
    if (config.recording and isinstance(event, ConferenceCreated)
            and app[STORE].is_active(event.tag or event.name)):
        # from state, not from the claim: a conferenceCreated delivered again (our answer
        # was lost) must start the recording all the same
        return _bxml(bxml.start_recording(app[CONFERENCE_EVENTS_URL],
                                          config.server.callback_auth))
    return web.Response(status=204)


async def recording(request: web.Request) -> web.StreamResponse:
    """GET /recordings/{token}: a recording, streamed from Bandwidth with the API
    credentials (never in memory whole; a Range asked for is passed on). The token is the
    capability: 128 random bits, working until it expires."""
    store, config = request.app[STORE], request.app[CONFIG]
    found = await store.recording(request.match_info["token"])
    now = request.app[CLOCK]()
    if found is None or found.recording.expires_at < now or not found.recording.usable:
        return _error(404, "no such recording, or its link has expired")
    if not found.media_url.startswith(config.bandwidth.voice_api_url.rstrip("/") + "/"):
        # a forged callback must not make this server send its credentials elsewhere
        log.warning("recording %s: media at %s is not Bandwidth's: not fetched",
                    found.recording.recording_id, found.media_url[:80])
        return _error(404, "no such recording")
    client = request.app[CLIENT]
    try:
        async with client.media(found.media_url, request.headers.get("Range")) as upstream:
            if upstream.status not in (200, 206):
                return _error(502, f"Bandwidth answered {upstream.status} for the recording")
            response = web.StreamResponse(status=upstream.status)
            for name in ("Content-Type", "Content-Length", "Content-Range", "Accept-Ranges"):
                if name in upstream.headers:
                    response.headers[name] = upstream.headers[name]
            response.headers["Content-Disposition"] = (
                f'attachment; filename="{found.conference_id}.wav"')
            await response.prepare(request)
            async for chunk in upstream.content.iter_chunked(64 * 1024):
                await response.write(chunk)
            await response.write_eof()
            return response
    except (aiohttp.ClientError, TimeoutError) as exc:
        return _error(502, f"cannot reach Bandwidth for the recording: {type(exc).__name__}")


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: 200 when the database can be written and the outbox is moving, 503
    when not. For load balancers and `confcall check`. Touches no lock: it answers at once
    whatever another process does to the database. Why it is unhealthy, the version and
    the backlog are told only to a caller on this machine (not through a proxy) or one
    with the callback credentials."""
    from confcall import __version__

    config, store = request.app[CONFIG], request.app[STORE]
    problem = store.file_problem() or store.problem or request.app[OUTBOX].problem()
    body: dict[str, Any] = {"status": "ok" if problem is None else "unavailable"}
    if _trusted(request):
        body.update(version=__version__, mode="sandbox" if config.sandbox else "live")
        if problem is not None:
            body["reason"] = problem
        else:
            body["backlog"] = await store.backlog()
    return web.json_response(body, status=200 if problem is None else 503)


def _trusted(request: web.Request) -> bool:
    """A caller on this machine itself, or one with the callback credentials."""
    expected = request.app[CONFIG].server.callback_auth
    if expected is not None and authorized(request.headers.get("Authorization"), expected):
        return True
    if "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
        return False  # a proxy on this machine passes on someone else's request
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


# --- what every route needs: bad input a 4xx, callback credentials ------------------------
#
# One wrapper around each handler (`guard`) rather than a middleware per concern: aiohttp
# calls each middleware through a layer of its own on every request.


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


def _refusal(request: web.Request, exc: Exception) -> web.StreamResponse | None:
    """The answer to a request whose handler raised `exc`: bad input is a 4xx with a short
    JSON error and one log line; nothing is ever a 500. None: let `exc` through (a redirect,
    or an HTTP error that is JSON already)."""
    if isinstance(exc, BadEvent):
        log.warning("%s %s: 400 %s", request.method, request.path, exc)
        return _error(400, str(exc))
    if isinstance(exc, web.HTTPException):
        if exc.status < 400 or exc.content_type == "application/json":
            return None
        log.warning("%s %s: %d %s", request.method, request.path, exc.status, exc.reason)
        return _error(exc.status, exc.reason, **{
            k: v for k, v in exc.headers.items() if k in ("Allow", "WWW-Authenticate")
        })
    if isinstance(exc, StoreUnavailable):  # the store logs this once, not once per webhook
        return _error(503, f"{exc}; retry later")
    if isinstance(exc, ClientGone):
        log.warning("%s %s: the caller went away before its body arrived (%s)",
                    request.method, request.path, exc)
        return _error(400, "the body did not arrive")
    log.error("%s %s: internal error", request.method, request.path, exc_info=exc)
    return _error(503, "internal error; retry later")


def _unauthorized(request: web.Request, config: Config) -> web.Response | None:
    """With callback credentials configured, /callbacks/ and what the sandbox shows at
    /sandbox/ need them (HTTP Basic): the 401 for a request without them, else None."""
    expected = config.server.callback_auth
    if (expected is not None and request.path.startswith(("/callbacks/", "/sandbox/"))
            and not request.path.startswith(SANDBOX_API)
            and not authorized(request.headers.get("Authorization"), expected)):
        log.warning("%s %s: 401 missing or wrong callback credentials",
                    request.method, request.path)
        return _error(401, "callback credentials missing or wrong",
                      **{"WWW-Authenticate": 'Basic realm="confcall"'})
    return None


def guard(handler: Handler, config: Config) -> Handler:
    """`handler` behind the callback credentials of `config` (the app's), its errors
    answered as `_refusal` says."""
    wanted = config.server.callback_auth is not None

    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            refused = _unauthorized(request, config) if wanted else None
            if refused is not None:
                return refused
            return await handler(request)
        except Exception as exc:
            answer = _refusal(request, exc)
            if answer is None:
                raise
            return answer

    guarded.__doc__ = handler.__doc__
    return guarded


async def no_route(request: web.Request) -> web.StreamResponse:
    """Any path and method no other route takes: a 405 naming the methods the path does
    take, else a 404 (JSON, through `guard`, as every other answer)."""
    allowed: set[str] = set()
    mine = request.match_info.route.resource
    for resource in request.app.router.resources():
        if resource is not mine:
            found, methods = await resource.resolve(request)
            if found is None:
                allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


def add_routes(app: web.Application) -> None:
    config = app[CONFIG]
    app[CONFERENCE_EVENTS_URL] = config.callback_url("/callbacks/voice/conference")
    app.router.add_post("/callbacks/messaging", guard(messaging, config))
    app.router.add_post("/callbacks/voice/initiate", guard(initiate, config))
    app.router.add_post("/callbacks/voice/answer", guard(answered, config))
    app.router.add_post("/callbacks/voice/conference", guard(voice_event, config))
    app.router.add_post("/callbacks/voice/status", guard(voice_event, config))
    app.router.add_get("/healthz", guard(healthz, config))
    app.router.add_get("/recordings/{token}", guard(recording, config))


def add_no_route(app: web.Application, config: Config) -> None:
    """The route of last resort of `app` (the app of `config`, or one of its
    sub-applications): add it after every other."""
    # (?s): a path may hold a newline (%0A), which `.` alone does not match
    app.router.add_route("*", "/{tail:(?s:.*)}", guard(no_route, config))
