"""What `status` and `history` show, as plain data: the --json output, and what render.py
draws. Keys here are a documented interface: add, never rename."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar

from confcall.errors import StoreError
from confcall.state import ENDED, Conference, time_on_call
from confcall.store import Reader
from confcall.store.sqlite_reads import cannot_open

R = TypeVar("R")


def _reading(report: Callable[..., R]) -> Callable[..., R]:
    """A database that cannot be read (damaged, locked for too long) is one line, not a
    traceback."""

    @wraps(report)
    def read(store: Reader, *args: Any) -> R:
        try:
            return report(store, *args)
        except Exception as exc:
            # psycopg's errors are told by their module: importing psycopg here would slow
            # every command that never uses PostgreSQL
            if isinstance(exc, sqlite3.DatabaseError):
                raise StoreError(cannot_open(store.where, exc)) from None
            if not type(exc).__module__.startswith("psycopg"):
                raise
            shown = " ".join(str(exc).split())[:300]
            raise StoreError(f"cannot read {store.where}: {shown}") from None

    return read


def iso(moment: float | None) -> str | None:
    """A stored time in ISO 8601 (UTC); None for none, or for one no calendar holds (an
    older confcall stored whatever Bandwidth's callbacks said)."""
    if moment is None:
        return None
    try:
        return datetime.fromtimestamp(moment, tz=UTC).isoformat(timespec="seconds")
    except (OverflowError, ValueError, OSError):
        return None


def _participants(conference: Conference, now: float) -> list[dict[str, Any]]:
    """Each invitee (and the organizer, if they called in), with where they are now."""
    totals = time_on_call(conference) if conference.status == ENDED else {}
    numbers = list(conference.invitees)
    numbers += [m.number for m in conference.members if m.number not in numbers]
    result = []
    for number in numbers:
        calls = [m for m in conference.members if m.number == number]
        open_call = next((m for m in calls if m.left_at is None), None)
        seconds = sum(((m.left_at if m.left_at is not None else now) - m.joined_at)
                      for m in calls)
        if open_call is not None:
            state, since = "on_call", iso(open_call.joined_at)
        elif calls:
            state, since = "left", iso(max(m.left_at or 0.0 for m in calls))
        else:
            state = "never_joined" if conference.status == ENDED else "invited"
            since = None
        result.append({
            "number": number,
            "invited": number in conference.invitees,
            "state": state,
            "since": since,
            "seconds_on_call": round(totals.get(number, seconds)),
        })
    return result


def conference_report(store: Reader, conference: Conference, now: float) -> dict[str, Any]:
    participants = _participants(conference, now)
    deliveries = store.deliveries(conference.id)
    invitation = {d.recipient: d for d in deliveries if d.purpose == "invite"}
    for person in participants:
        sent = invitation.get(person["number"])
        # how often it was tried: with `detail` (the last error), why it is still queued
        person["invitation"] = ({"state": sent.state, "detail": sent.detail,
                                 "attempts": sent.attempts} if sent else None)
    completion = store.completion(conference.id)
    # the closing text's pictures ride on its first forward (a text alone may be one)
    closing = next((r for r in store.outbox(conference.id) if r.purpose == "forward"), None)
    first_join = min((m.joined_at for m in conference.members), default=None)
    end = conference.ended_at if conference.ended_at is not None else now
    return {
        "id": conference.id,
        "organizer": conference.organizer,
        "status": conference.status,
        "started": iso(conference.created_at),
        "ended": iso(conference.ended_at),
        "call_seconds": round(end - first_join) if first_join is not None else 0,
        "closing_text": conference.closing_text,
        "closing_media": list(closing.media) if closing is not None else [],
        "participants": participants,
        "texts": [
            {"id": d.outbox_id, "purpose": d.purpose, "to": d.recipient, "state": d.state,
             "detail": d.detail, "attempts": d.attempts,
             "possible_duplicate": d.possible_duplicate}
            for d in deliveries
        ],
        # ending the call on Bandwidth: "pending" (being tried), "done" or "failed"
        "completion": None if completion is None else {
            "state": completion.status if completion.status != "sent" else "done",
            "detail": completion.last_error or "", "attempts": completion.attempts},
    }


@_reading
def status(store: Reader, now: float) -> dict[str, Any]:
    """The conferences not yet ended; if none, the last that ended."""
    active = [conference_report(store, c, now) for c in store.active_conferences()]
    last = None
    if not active:
        ended = store.ended_conferences(1)
        last = conference_report(store, ended[0], now) if ended else None
    return {"active": active, "last_ended": last, "backlog": store.backlog()}


@_reading
def history(store: Reader, limit: int, now: float) -> list[dict[str, Any]]:
    """Ended conferences, newest first."""
    return [conference_report(store, c, now) for c in store.ended_conferences(limit)]
