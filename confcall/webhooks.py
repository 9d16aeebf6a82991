"""The webhook handlers: body -> events -> conference decisions -> one transaction -> reply."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from confcall import bxml, conference
from confcall.appkeys import CLOCK, CONFIG, OUTBOX, RULES, STORE
from confcall.auth import authorized
from confcall.conference import Conference
from confcall.errors import StoreUnavailable
from confcall.events import (
    BadEvent,
    CallDisconnected,
    CallInitiated,
    ConferenceCompleted,
    ConferenceCreated,
    ConferenceEvent,
    Event,
    MemberJoined,
    MemberLeft,
    TextReceived,
    TextStatus,
    Unused,
    parse_messaging,
    parse_voice,
)
from confcall.phone import for_log

log = logging.getLogger("confcall.webhooks")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 64 * 1024
JSON_TYPES = ("application/json", "text/json", "application/octet-stream")
OK = json.dumps({"ok": True}).encode()


def new_conference_id() -> str:
    return "confcall-" + secrets.token_hex(6)


async def read_json(request: web.Request) -> Any:
    """The request body as JSON, or BadEvent saying why not."""
    if request.content_type not in JSON_TYPES and not request.content_type.endswith("+json"):
        raise web.HTTPUnsupportedMediaType(
            text=json.dumps({"error": f"expected application/json, got {request.content_type}"}),
            content_type="application/json",
        )
    raw = await request.read()
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        # UnicodeDecodeError is a ValueError; RecursionError is what deep nesting raises
        raise BadEvent(f"body is not JSON: {type(exc).__name__}") from None


def _show(request: web.Request, number: str) -> str:
    return for_log(number, request.app[CONFIG].mask_numbers)


# --- messaging ----------------------------------------------------------------------------


async def messaging(request: web.Request) -> web.Response:
    """POST /callbacks/messaging: inbound texts and the status of the texts we sent."""
    events = parse_messaging(await read_json(request))
    now = request.app[CLOCK]()
    if await request.app[STORE].committed(lambda: _take_messaging(request, events, now)):
        request.app[OUTBOX].wake()
    return web.Response(body=OK, content_type="application/json")


def _take_messaging(request: web.Request, events: list[Event], now: float) -> bool:
    """Store the callback's events and what they decide, each once; whether there is
    anything to send."""
    store, rules = request.app[STORE], request.app[RULES]
    to_send = False
    for event in events:
        if isinstance(event, Unused) or not store.claim(event.key, now):
            continue
        if isinstance(event, TextReceived):
            if not store.record_inbound(event.message_id, event.sender, event.line,
                                        event.text, now):
                continue  # a replay from before the claims were pruned
            organizer = event.sender in rules.organizers
            active = store.active_conference(event.sender) if organizer else None
            new_id = new_conference_id() if organizer else ""
            effects = conference.on_text(rules, event, active, new_id, now)
            outcome = (_outcome(effects) if event.line == rules.line
                       else f"sent to {event.line}, not {rules.line}: stored, not answered")
            log.info("text from %s: %s", _show(request, event.sender), outcome)
            store.apply(effects, now, event.application_id)
            to_send = to_send or bool(effects)
        elif isinstance(event, TextStatus):
            store.apply(conference.on_text_status(event), now, None)
    return to_send


def _outcome(effects: list[conference.Effect]) -> str:
    """What an inbound text did, for the log."""
    first = effects[0] if effects else None
    if isinstance(first, conference.StartConference):
        started = first.conference
        return f"started {started.id}, inviting {len(started.invitees)}"
    if isinstance(first, conference.BeginEnding):
        return f"ends {first.conference_id}"
    if isinstance(first, conference.QueueText):
        return "refused, told why"
    return "not an organizer: stored, not answered"


# --- voice --------------------------------------------------------------------------------


def _bxml(document: str) -> web.Response:
    return web.Response(text=document, content_type=bxml.CONTENT_TYPE)


async def initiate(request: web.Request) -> web.Response:
    """POST /callbacks/voice/initiate: an inbound call. Invited callers join; others hear
    one sentence and are hung up on. Reads only: a replay gets the same answer."""
    event = parse_voice(await read_json(request))
    if not isinstance(event, CallInitiated):
        return _bxml(bxml.empty())
    config, rules = request.app[CONFIG], request.app[RULES]
    chosen = conference.answer(rules, event.caller, event.line,
                               request.app[STORE].joinable(event.caller))
    if chosen is None:
        why = "not invited" if event.line == rules.line else f"a call to {event.line}"
        log.info("call %s from %s refused: %s", event.call_id, _show(request, event.caller), why)
        return _bxml(bxml.refuse())
    # At INFO the join is logged once, when Bandwidth reports it; Bandwidth may deliver an
    # initiate more than once, and a caller may hang up before the conference answers.
    log.debug("call %s from %s: answered with %s", event.call_id,
              _show(request, event.caller), chosen.id)
    return _bxml(bxml.join_conference(
        chosen.id, config.callback_url("/callbacks/voice/conference"), chosen.id,
        config.server.callback_auth,
    ))


# The conference and call events, routed by type to the state machine's decision for each.
VoiceDecision = Callable[[Conference | None, Any], list[conference.Effect]]
VOICE_DECISIONS: dict[type[Event], VoiceDecision] = {
    ConferenceCreated: conference.on_conference_created,
    MemberJoined: conference.on_member_joined,
    MemberLeft: conference.on_member_left,
    CallDisconnected: conference.on_disconnect,
    ConferenceCompleted: conference.on_conference_completed,
}


async def voice_event(request: web.Request) -> web.Response:
    """POST /callbacks/voice/conference and /callbacks/voice/status: conference and call
    events. Each is applied once, however often Bandwidth delivers it."""
    event = parse_voice(await read_json(request))
    decide = VOICE_DECISIONS.get(type(event))
    if decide is None:  # unused, or an initiate posted to the wrong route
        return web.Response(status=204)
    now = request.app[CLOCK]()
    if await request.app[STORE].committed(lambda: _take_voice(request, event, decide, now)):
        request.app[OUTBOX].wake()
    return web.Response(status=204)


def _take_voice(request: web.Request, event: Event, decide: VoiceDecision, now: float) -> bool:
    """Store the event and what it decides, once; whether there is anything to send."""
    store = request.app[STORE]
    if not store.claim(event.key, now):
        return False
    found = None
    if isinstance(event, ConferenceEvent):  # our conference id is its tag and name
        found = (store.conference(event.tag) if event.tag else None) or (
            store.conference(event.name))
    effects = decide(found, event)
    store.apply(effects, now, None)
    for effect in effects:
        if isinstance(effect, conference.RecordJoin):
            log.info("%s joined %s (call %s)", _show(request, effect.number),
                     effect.conference_id, effect.call_id)
        elif isinstance(effect, conference.RecordLeave) and effect.conference_id:
            log.info("%s left %s (call %s)", _show(request, effect.number or "?"),
                     effect.conference_id, effect.call_id)
        elif isinstance(effect, conference.FinishConference):
            log.info("%s ended", effect.conference_id)
    return bool(effects)


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: 200 when the database can be written and the outbox is moving, 503
    with the reason when not. For load balancers and `confcall check`. Touches no lock:
    it answers at once whatever another process does to the database."""
    from confcall import __version__

    config, store = request.app[CONFIG], request.app[STORE]
    problem = store.file_problem() or store.problem or request.app[OUTBOX].problem()
    body: dict[str, Any] = {
        "status": "ok" if problem is None else "unavailable",
        "version": __version__,
        "mode": "sandbox" if config.sandbox else "live",
    }
    if problem is not None:
        body["reason"] = problem
    else:
        body["backlog"] = store.backlog()
    return web.json_response(body, status=200 if problem is None else 503)


# --- middlewares --------------------------------------------------------------------------


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bad input is a 4xx with a short JSON error and one log line; nothing is ever a 500."""
    try:
        return await handler(request)
    except BadEvent as exc:
        log.warning("%s %s: 400 %s", request.method, request.path, exc)
        return _error(400, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        log.warning("%s %s: %d %s", request.method, request.path, exc.status, exc.reason)
        return _error(exc.status, exc.reason, **{
            k: v for k, v in exc.headers.items() if k in ("Allow", "WWW-Authenticate")
        })
    except StoreUnavailable as exc:  # the store logs this once, not once per webhook
        return _error(503, f"{exc}; retry later")
    except Exception:
        log.exception("%s %s: internal error", request.method, request.path)
        return _error(503, "internal error; retry later")


@web.middleware
async def callback_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """With callback credentials configured, /callbacks/ needs them (HTTP Basic)."""
    expected = request.app[CONFIG].server.callback_auth
    if (expected is not None and request.path.startswith("/callbacks/")
            and not authorized(request.headers.get("Authorization"), expected)):
        log.warning("%s %s: 401 missing or wrong callback credentials",
                    request.method, request.path)
        return _error(401, "callback credentials missing or wrong",
                      **{"WWW-Authenticate": 'Basic realm="confcall"'})
    return await handler(request)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/callbacks/messaging", messaging)
    app.router.add_post("/callbacks/voice/initiate", initiate)
    app.router.add_post("/callbacks/voice/conference", voice_event)
    app.router.add_post("/callbacks/voice/status", voice_event)
    app.router.add_get("/healthz", healthz)
